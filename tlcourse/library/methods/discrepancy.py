"""Adaptation by a discrepancy between the domains: a statistic of the features (DAN), or two classifiers (MCD).

* **DAN** (Long et al., "Learning Transferable Features with Deep Adaptation Networks", ICML 2015):
  source cross-entropy plus the multi-kernel MMD between the source and target features. Where DANN
  asks a learned domain classifier whether the two feature distributions differ, DAN measures it with
  a fixed kernel two-sample statistic: no adversary, no saddle point, one loss to descend.
* **MCD** (Saito et al., "Maximum Classifier Discrepancy for Unsupervised Domain Adaptation", CVPR
  2018): two label predictors on one feature extractor. DANN aligns the two domains as wholes, blind
  to the classes; MCD uses the classifiers themselves to find the target images that lie where the
  source gave no evidence (the two heads, both right on the source, disagree there), and moves the
  features until the heads agree on them, i.e. until those images fall on the source's side of the
  decision boundaries.

Their losses are shared blocks: `tlcourse.library.modules.mk_mmd_linear` and
`tlcourse.library.modules.classifier_discrepancy`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from tlcourse.library.methods.base import Method
from tlcourse.library.models import FeatureClassifier
from tlcourse.library.modules import (
    annealed_lr,
    classifier_discrepancy,
    dann_lambda,
    mk_mmd_linear,
    scaled_bandwidths,
)

MMDEstimate = Callable[[torch.Tensor, torch.Tensor, Sequence[float]], torch.Tensor]


class DAN(Method):
    """Deep adaptation network: ``L = CE(G_y(G_f(x_s)), y_s) + lambda_p * MK-MMD^2(G_f(x_s), G_f(x_t))``.

    The MK-MMD is estimated on each batch in linear time (`mk_mmd_linear`, the paper's estimate), with
    Gaussian kernels whose sigmas are ``bandwidth_multipliers`` times the batch's root mean squared
    distance (`scaled_bandwidths`), equal weights. The paper adapts the last three layers of AlexNet;
    here the one feature layer ``G_f(x)`` (``(B, num_features)``) that every method of the course shares.

    Schedules, driven by the ``progress`` argument p in [0, 1], as in `tlcourse.library.methods.DANN`:
      * ``lambda_p = mmd_weight * (2 / (1 + exp(-gamma p)) - 1)`` (`dann_lambda`), when ``schedule_weight``;
      * ``lr_p = lr / (1 + 10 p) ** 0.75`` (`annealed_lr`), when ``anneal_lr``.

    Args:
        model: the classifier, split into ``features`` (``G_f``) and ``head`` (``G_y``).
        lr: Adam's initial learning rate.
        mmd_weight: the final weight of the MMD term; 0 is source-only training.
        bandwidth_multipliers: the kernels' sigmas, relative to the batch's scale.
        gamma, schedule_weight, anneal_lr: the schedules above.
        estimate: ``(source, target, bandwidths) -> MMD^2``; the default is the linear-time
            `mk_mmd_linear`; `tlcourse.library.metrics.mk_mmd2_unbiased` is the quadratic one.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        mmd_weight: float = 1.0,
        bandwidth_multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        gamma: float = 10.0,
        schedule_weight: bool = True,
        anneal_lr: bool = True,
        estimate: MMDEstimate = mk_mmd_linear,
    ) -> None:
        super().__init__(model, lr)
        if mmd_weight < 0:
            raise ValueError(f"mmd_weight must be >= 0, got {mmd_weight}")
        if not bandwidth_multipliers or min(bandwidth_multipliers) <= 0:
            raise ValueError(f"bandwidth_multipliers must be positive, got {list(bandwidth_multipliers)}")
        self.mmd_weight, self.gamma = float(mmd_weight), float(gamma)
        self.multipliers = tuple(float(m) for m in bandwidth_multipliers)
        self.schedule_weight, self.anneal_lr, self.estimate = schedule_weight, anneal_lr, estimate
        self.make_optimizer()

    def weight(self, progress: float) -> float:
        """The MMD term's weight ``lambda_p`` at training progress p."""
        return self.mmd_weight * (dann_lambda(progress, self.gamma) if self.schedule_weight else 1.0)

    def update(self, source_x, source_y, target_x, progress):
        if self.anneal_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = annealed_lr(progress, self.lr)
        # Each domain in its own pass, as in DANN: batch norms (if any) see one domain at a time.
        source_features = self.model.features(source_x)  # (B, d)
        target_features = self.model.features(target_x)  # (B', d)
        class_loss = F.cross_entropy(self.model.head(source_features), source_y)
        bandwidths = scaled_bandwidths(source_features, target_features, self.multipliers)
        mmd = self.estimate(source_features, target_features, bandwidths)
        weight = self.weight(progress)
        self.step(class_loss + weight * mmd)
        return {"class_loss": class_loss.item(), "mmd": mmd.item(), "mmd_weight": weight}


def fresh_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every layer's parameters drawn afresh (``reset_parameters``)."""
    twin = copy.deepcopy(module)
    for layer in twin.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return twin


class MCD(Method):
    """Maximum classifier discrepancy (Saito et al., CVPR 2018): three steps per batch.

    A feature extractor ``G`` and two label predictors ``F1`` (the model's ``head``) and ``F2`` (a
    freshly initialised copy of it, `fresh_copy`), with ``d`` = `classifier_discrepancy`:

      * **A**: ``G, F1, F2`` minimise the source loss ``L_s = CE(F1(G(x_s)), y_s) + CE(F2(G(x_s)), y_s)``;
      * **B**: ``F1, F2`` (``G`` fixed) minimise ``L_s - d(F1(G(x_t)), F2(G(x_t)))``: stay right on
        the source while disagreeing as much as possible on the target;
      * **C**: ``G`` (the heads fixed), ``num_k`` times: minimise ``d(F1(G(x_t)), F2(G(x_t)))``.

    B and C are the two players of ``min_G max_{F1, F2} d``; A keeps both heads good classifiers, so
    that their disagreement means something. Two Adam optimizers, one for ``G`` and one for the heads
    (as in the paper's code). `predict` is the ensemble ``(F1 + F2) / 2`` of the two heads' logits; a
    head alone is ``method.model`` (``F1``) or ``method.model.head`` replaced by ``method.head2``.

    Args:
        model: the classifier; its ``features`` are ``G``, its ``head`` is ``F1``.
        lr: both optimizers' learning rate.
        num_k: the number of step-C updates per batch (the paper's code: 4 on the digits).
    """

    def __init__(self, model: FeatureClassifier, lr: float = 1e-3, num_k: int = 4) -> None:
        super().__init__(model, lr)
        if num_k < 1:
            raise ValueError(f"num_k must be at least 1, got {num_k}")
        self.num_k = int(num_k)
        self.head2 = fresh_copy(model.head)
        self.extractor_optimizer = torch.optim.Adam(model.features.parameters(), lr=lr)
        heads = [*model.head.parameters(), *self.head2.parameters()]
        self.heads_optimizer = torch.optim.Adam(heads, lr=lr)

    def both_heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two heads' logits ``(N, K)`` each, on feature vectors ``(N, d)``."""
        return self.model.head(features), self.head2(features)

    def source_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits1, logits2 = self.both_heads(features)
        return F.cross_entropy(logits1, labels) + F.cross_entropy(logits2, labels)

    def take(self, loss: torch.Tensor, *optimizers: torch.optim.Optimizer) -> None:
        """Backpropagate ``loss`` and step only ``optimizers``: the others' parameters stay where they are."""
        self.extractor_optimizer.zero_grad(set_to_none=True)
        self.heads_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()

    def step_a(self, source_x: torch.Tensor, source_y: torch.Tensor) -> torch.Tensor:
        """Step A: ``G, F1, F2`` take one step on the source loss; returns that loss (both heads' sum)."""
        loss = self.source_loss(self.model.features(source_x), source_y)
        self.take(loss, self.extractor_optimizer, self.heads_optimizer)
        return loss

    def step_b(self, source_x: torch.Tensor, source_y: torch.Tensor, target_x: torch.Tensor) -> torch.Tensor:
        """Step B: ``F1, F2`` take one step on ``L_s - d`` (``G`` fixed); returns the target discrepancy ``d``."""
        with torch.no_grad():  # the features are constants here: no graph into G
            source_features, target_features = self.model.features(source_x), self.model.features(target_x)
        discrepancy = classifier_discrepancy(*self.both_heads(target_features))
        self.take(self.source_loss(source_features, source_y) - discrepancy, self.heads_optimizer)
        return discrepancy

    def step_c(self, target_x: torch.Tensor) -> torch.Tensor:
        """Step C, once: ``G`` takes one step on the target discrepancy (the heads fixed); returns it."""
        discrepancy = classifier_discrepancy(*self.both_heads(self.model.features(target_x)))
        self.take(discrepancy, self.extractor_optimizer)
        return discrepancy

    def update(self, source_x, source_y, target_x, progress):
        loss_a = self.step_a(source_x, source_y)
        discrepancy_b = self.step_b(source_x, source_y, target_x)
        for _ in range(self.num_k):
            discrepancy_c = self.step_c(target_x)
        return {
            "class_loss": loss_a.item() / 2,
            "discrepancy_heads": discrepancy_b.item(),
            "discrepancy_features": discrepancy_c.item(),
        }

    def heads(self) -> tuple[nn.Module, nn.Module]:
        """The two classifiers ``F1(G(x))`` and ``F2(G(x))`` as models of their own (they share ``G``)."""
        return nn.Sequential(self.model.features, self.model.head), nn.Sequential(self.model.features, self.head2)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The ensemble's logits ``(N, K)``: the mean of the two heads' logits (the paper's code adds them)."""
        logits1, logits2 = self.both_heads(self.model.features(x))
        return (logits1 + logits2) / 2
