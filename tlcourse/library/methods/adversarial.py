"""Domain-adversarial training of neural networks (DANN; Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016).

Three players share one network:

* the **feature extractor** ``G_f`` (parameters ``theta_f``) maps an image to a feature vector;
* the **label predictor** ``G_y`` (``theta_y``) classifies source features, with loss ``L_y``;
* the **domain classifier** ``G_d`` (``theta_d``) tells source features from target features, with
  loss ``L_d``.

DANN looks for the saddle point of ``E(theta_f, theta_y, theta_d) = L_y - lambda L_d``: the label predictor
and the domain classifier minimise their own losses, while the feature extractor minimises
``L_y - lambda L_d``, i.e. it learns features that are good for the labels *and* that the domain
classifier cannot tell apart. One backward pass does all three updates when a **gradient reversal
layer** sits between the features and the domain classifier: the identity on the way forward, a
multiplication by ``-lambda`` on the way back (`tlcourse.library.modules.reversal`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from tlcourse.library.methods.base import Method
from tlcourse.library.models import FeatureClassifier
from tlcourse.library.modules import (
    DomainDiscriminator,
    GradientReversal,
    annealed_lr,
    dann_lambda,
    domain_labels,
    gradient_reversal,
)


def dann_losses(
    model: FeatureClassifier,
    discriminator: torch.nn.Module,
    source_x: torch.Tensor,
    source_y: torch.Tensor,
    target_x: torch.Tensor,
    lambda_: float,
) -> dict:
    """DANN's two losses on one batch of labelled source and unlabelled target images.

    The class loss is the cross-entropy of ``model.head`` on the source features; the domain loss, the binary
    cross-entropy of ``discriminator`` on the features of both batches (source first, labelled 1; target, 0)
    seen **through the gradient reversal** ``gradient_reversal(features, lambda_)``. So the backward pass of
    ``class_loss + domain_loss`` trains the discriminator to tell the domains apart and the features to
    hide them. Nothing is stepped here: the caller adds the losses (and whatever else it trains for) and
    steps its optimizer.

    Returns:
        ``{"class_loss", "domain_loss"}`` (0-dim tensors that keep their gradients), ``"domain_acc"`` (a
        float: the fraction of the batch whose domain the discriminator got right, logit > 0 meaning
        source), and, for methods that add losses on them (`tlcourse.library.methods.boundary`),
        ``"source_logits"`` (``(B_s, K)``) and ``"target_features"`` (``(B_t, d)``, before the reversal).
    """
    # Each domain goes through the network in its own batch, so that batch-norm layers (if any)
    # normalise it with its own statistics: an alignment of first and second moments for free.
    source_features = model.features(source_x)  # (B_s, d)
    target_features = model.features(target_x)  # (B_t, d)
    source_logits = model.head(source_features)
    class_loss = F.cross_entropy(source_logits, source_y)
    features = torch.cat([source_features, target_features])
    domain_logits = discriminator(gradient_reversal(features, lambda_))  # (B_s + B_t,)
    labels = domain_labels(len(source_x), len(target_x), features.device)
    domain_loss = F.binary_cross_entropy_with_logits(domain_logits, labels)
    domain_acc = ((domain_logits > 0).float() == labels).float().mean().item()
    return {
        "class_loss": class_loss,
        "domain_loss": domain_loss,
        "domain_acc": domain_acc,
        "source_logits": source_logits,
        "target_features": target_features,
    }


class DANN(Method):
    """Domain-adversarial training: source cross-entropy plus a domain classifier behind a gradient reversal.

    Each step (``update``) takes ``B`` labelled source and ``B`` unlabelled target images (half source,
    half target, as in the paper) and minimises

        ``L = CE(G_y(G_f(x_s)), y_s) + BCE(G_d(R_lambda(G_f([x_s; x_t]))), [1; 0])``

    in one backward pass. Because of the reversal ``R_lambda``, the domain classifier descends ``L_d``
    while the feature extractor descends ``L_y - lambda L_d``. (The paper writes ``L_y - lambda L_d``
    for the domain classifier's objective too, so its gradient is scaled by lambda; here, as in most
    implementations, the domain classifier learns at full rate from the first step.)

    Schedules, driven by the ``progress`` argument p in [0, 1]:
      * ``lambda_p = lambda_max * (2 / (1 + exp(-gamma p)) - 1)`` (`dann_lambda`);
      * ``lr_p = lr / (1 + 10 p) ** 0.75`` (`annealed_lr`), when ``anneal_lr``.

    Args:
        model: the classifier, split into ``features`` (``G_f``) and ``head`` (``G_y``).
        lr: the initial learning rate ``mu_0``.
        lambda_max: the final adaptation factor (1 in the paper); 0 turns DANN into source-only training.
        gamma: the steepness of the lambda schedule (10 in the paper).
        schedule_lambda: if False, lambda is ``lambda_max`` from the first step.
        anneal_lr: apply the paper's learning-rate annealing.
        discriminator_hidden: the domain classifier's hidden widths (``(100,)``: the paper's MNIST one).
        optimizer: ``"adam"`` (the course default: fast on small budgets) or ``"sgd"`` (the paper's:
            momentum 0.9).
        betas: Adam's ``(beta1, beta2)``. A smaller ``beta1`` (0.5, as GANs use) keeps less of the
            gradient of steps ago, which in an adversarial game may point the other way by now.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        lambda_max: float = 1.0,
        gamma: float = 10.0,
        schedule_lambda: bool = True,
        anneal_lr: bool = True,
        discriminator_hidden: Sequence[int] = (100,),
        optimizer: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__(model, lr)
        if lambda_max < 0:
            raise ValueError(f"lambda_max must be >= 0, got {lambda_max}")
        self.discriminator = DomainDiscriminator(model.num_features, discriminator_hidden)
        self.grl = GradientReversal(0.0)
        self.lambda_max, self.gamma = float(lambda_max), float(gamma)
        self.schedule_lambda, self.anneal_lr = schedule_lambda, anneal_lr
        if optimizer == "adam":
            self.make_optimizer()
            for group in self.optimizer.param_groups:
                group["betas"] = tuple(betas)
        elif optimizer == "sgd":
            params = [p for p in self.parameters() if p.requires_grad]
            self.optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
        else:
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")

    def schedule(self, progress: float) -> None:
        """Set the reversal's lambda and the learning rate for training progress p in [0, 1]."""
        factor = dann_lambda(progress, self.gamma) if self.schedule_lambda else 1.0
        self.grl.lambda_ = self.lambda_max * factor
        lr = annealed_lr(progress, self.lr) if self.anneal_lr else self.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def adversarial_losses(
        self, source_x: torch.Tensor, source_y: torch.Tensor, target_x: torch.Tensor, target_logits: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float], tuple[torch.Tensor, torch.Tensor | None]]:
        """The two DANN losses of one batch (`dann_losses`, with this method's networks and lambda), and the
        class logits for subclasses.

        Args:
            target_logits: also run the label predictor on the target features (for losses on the
                target's predictions, such as its entropy). Plain DANN does not: the target's features
                only meet the domain classifier, so the label predictor's batch norm never sees them.

        Returns:
            ``(class_loss, domain_loss, stats, (source_logits, target_logits or None))``; ``stats``
            holds the domain classifier's accuracy on this batch.
        """
        losses = dann_losses(self.model, self.discriminator, source_x, source_y, target_x, self.grl.lambda_)
        return (
            losses["class_loss"],
            losses["domain_loss"],
            {"domain_acc": losses["domain_acc"]},
            (losses["source_logits"], self.model.head(losses["target_features"]) if target_logits else None),
        )

    def update(self, source_x, source_y, target_x, progress):
        self.schedule(progress)
        class_loss, domain_loss, stats, _ = self.adversarial_losses(source_x, source_y, target_x)
        self.step(class_loss + domain_loss)
        return {"class_loss": class_loss.item(), "domain_loss": domain_loss.item(), **stats, "lambda": self.grl.lambda_}
