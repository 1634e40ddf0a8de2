"""Keeping target points away from the decision boundary: entropy minimisation, VADA and DIRT-T.

The cluster assumption: if the target data form clusters, a good classifier's boundary passes between
them, not through them. DANN aligns the two feature distributions but says nothing about where the
boundary goes in the target; these methods push it out of the dense target regions.

* **Entropy minimisation** (Grandvalet & Bengio, 2005): make the classifier confident on target points,
  ``min E_t[H(p(y|x))]``.
* **VADA** (Shu et al., ICLR 2018): DANN + target entropy + virtual adversarial training (VAT; Miyato
  et al., 2018), which makes the classifier locally Lipschitz, so that confidence cannot come from a
  boundary that merely skirts the points.
* **DIRT-T** (same paper): start from VADA, forget the source, and refine on the target alone with the
  same two terms, staying close to a slowly updated teacher (natural-gradient steps).
* **FixMatch consistency** (Sohn et al., NeurIPS 2020; for domain adaptation, AdaMatch, Berthelot et
  al., ICLR 2022): where the network is confident on a clean target image, that prediction becomes a
  label for a strongly augmented copy. VAT asks for the same answer under the worst *small*
  perturbation; this asks for it under a *large*, meaningful one, chosen from what we believe the
  label does not depend on.
* **Self-training with FixMatch** (`FixMatch`): the same consistency without a domain classifier, as a
  second phase (like DIRT-T's) after source-only training on augmented source images: the source
  model's confident target predictions become labels, and the boundary moves out of the target's
  dense regions one confident point at a time.

The losses they are made of (`entropy_loss`, `virtual_adversarial_loss`, `confident_consistency_loss`)
and the strong augmentation (`colour_and_shift`) are shared building blocks, in `tlcourse.library.modules`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

from tlcourse.library.methods.adversarial import DANN
from tlcourse.library.methods.base import Method
from tlcourse.library.models import FeatureClassifier
from tlcourse.library.modules import (
    colour_and_shift,
    confident_consistency_loss,
    dann_lambda,
    entropy_loss,
    virtual_adversarial_loss,
)


class EntropyMinimization(DANN):
    """DANN plus target entropy minimisation: ``L = L_y + L_d(through the reversal) + w_ent * E_t[H(p(y|x_t))]``.

    With ``lambda_max=0`` the domain classifier gets no say in the features, and this is plain source
    training plus target entropy (Grandvalet & Bengio, 2005). The entropy weight follows the same
    schedule as lambda (``w_ent * lambda_p / lambda_max``), so early random features are not locked
    into confident mistakes.

    Args:
        entropy_weight: ``w_ent``, the weight of the target entropy.
        schedule_entropy: ramp ``w_ent`` up with `dann_lambda`; if False, it is constant.
        The other arguments are `DANN`'s.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        entropy_weight: float = 0.1,
        schedule_entropy: bool = True,
        **dann_kwargs,
    ) -> None:
        super().__init__(model, lr, **dann_kwargs)
        self.entropy_weight, self.schedule_entropy = float(entropy_weight), schedule_entropy

    def entropy_factor(self, progress: float) -> float:
        return self.entropy_weight * (dann_lambda(progress, self.gamma) if self.schedule_entropy else 1.0)

    def update(self, source_x, source_y, target_x, progress):
        self.schedule(progress)
        class_loss, domain_loss, stats, (_, target_logits) = self.adversarial_losses(
            source_x, source_y, target_x, target_logits=True
        )
        ent = entropy_loss(target_logits)
        self.step(class_loss + domain_loss + self.entropy_factor(progress) * ent)
        return {
            "class_loss": class_loss.item(),
            "domain_loss": domain_loss.item(),
            "entropy": ent.item(),
            **stats,
            "lambda": self.grl.lambda_,
        }


class VADA(EntropyMinimization):
    """Virtual adversarial domain adaptation (Shu et al., ICLR 2018, eq. 6).

    ``L = L_y + L_d(through the reversal) + lambda_s VAT(x_s) + lambda_t (H(x_t) + VAT(x_t))``, where
    ``H`` is the target entropy and ``VAT`` the virtual adversarial loss (`virtual_adversarial_loss`).

    Args:
        source_vat: ``lambda_s``, the weight of VAT on the source.
        target_weight: ``lambda_t``, the weight of target entropy and target VAT together.
        radius: the VAT radius (L2, pixel units).
        The other arguments are `DANN`'s. ``lambda_t`` follows the lambda schedule (see
        `EntropyMinimization`).
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        target_weight: float = 0.1,
        source_vat: float = 1.0,
        radius: float = 1.0,
        schedule_entropy: bool = True,
        **dann_kwargs,
    ) -> None:
        super().__init__(model, lr, entropy_weight=target_weight, schedule_entropy=schedule_entropy, **dann_kwargs)
        self.source_vat, self.radius = float(source_vat), float(radius)

    def update(self, source_x, source_y, target_x, progress):
        self.schedule(progress)
        class_loss, domain_loss, stats, (_, target_logits) = self.adversarial_losses(
            source_x, source_y, target_x, target_logits=True
        )
        ent = entropy_loss(target_logits)
        vat_t = virtual_adversarial_loss(self.model, target_x, radius=self.radius)
        loss = class_loss + domain_loss + self.entropy_factor(progress) * (ent + vat_t)
        stats["vat_target"] = vat_t.item()
        if self.source_vat > 0:
            vat_s = virtual_adversarial_loss(self.model, source_x, radius=self.radius)
            loss = loss + self.source_vat * vat_s
            stats["vat_source"] = vat_s.item()
        self.step(loss)
        return {
            "class_loss": class_loss.item(),
            "domain_loss": domain_loss.item(),
            "entropy": ent.item(),
            **stats,
            "lambda": self.grl.lambda_,
        }


class DIRTT(Method):
    """Decision-boundary iterative refinement training with a teacher (DIRT-T; Shu et al., ICLR 2018, eq. 7-8).

    Starts from a trained (VADA) classifier and refines it **on the target alone**:

        ``min_theta  lambda_t (H(x_t) + VAT(x_t)) + beta * KL(p_teacher(y|x_t) || p_theta(y|x_t))``

    The KL term keeps each step small in prediction space (an approximate natural-gradient step); every
    ``teacher_every`` steps the teacher becomes a copy of the student. The source batch is not used.

    Args:
        model: the classifier to refine (it is trained in place; a copy is the first teacher).
        target_weight: ``lambda_t``; beta: the teacher's weight; radius: the VAT radius.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        target_weight: float = 1.0,
        beta: float = 1.0,
        radius: float = 1.0,
        teacher_every: int = 100,
    ) -> None:
        super().__init__(model, lr)
        self.target_weight, self.beta, self.radius = float(target_weight), float(beta), float(radius)
        self.teacher_every = int(teacher_every)
        self.teacher = copy.deepcopy(model).requires_grad_(False)
        self.steps = 0
        self.make_optimizer()

    def update(self, source_x, source_y, target_x, progress):
        if self.steps and self.steps % self.teacher_every == 0:
            self.teacher.load_state_dict(self.model.state_dict())
        self.steps += 1
        logits = self.model(target_x)
        with torch.no_grad():
            p_teacher = F.softmax(self.teacher(target_x), dim=1)
        ent = entropy_loss(logits)
        vat = virtual_adversarial_loss(self.model, target_x, radius=self.radius)
        kl = F.kl_div(F.log_softmax(logits, dim=1), p_teacher, reduction="batchmean")
        self.step(self.target_weight * (ent + vat) + self.beta * kl)
        return {"entropy": ent.item(), "vat_target": vat.item(), "teacher_kl": kl.item()}


def _probability(threshold: float) -> float:
    """A confidence threshold, checked: FixMatch's methods refuse one outside [0, 1]."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a probability, got {threshold}")
    return float(threshold)


class FixMatchDANN(DANN):
    """DANN plus FixMatch consistency on the target (Sohn et al., NeurIPS 2020; AdaMatch, ICLR 2022).

    ``L = L_y + L_d(through the reversal) + w_p * confident_consistency_loss(G(x_t), G(augment(x_t)))``

    The clean target batch goes through the network in its own pass (as in `DANN`), and its
    confident predictions label a strongly augmented copy of the same batch (a third pass). The
    weight ``w_p`` follows the lambda schedule (``w * lambda_p / lambda_max``, as in
    `EntropyMinimization`): early predictions are not yet worth copying.

    Args:
        threshold: the confidence a target prediction needs to become a label (FixMatch's 0.95).
        consistency_weight: ``w``, FixMatch's ``lambda_u`` (1).
        augment: the strong augmentation, ``augment(x) -> x'`` (`colour_and_shift`).
        The other arguments are `DANN`'s.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        threshold: float = 0.95,
        consistency_weight: float = 1.0,
        augment: Callable[[torch.Tensor], torch.Tensor] = colour_and_shift,
        **dann_kwargs,
    ) -> None:
        super().__init__(model, lr, **dann_kwargs)
        self.threshold, self.consistency_weight, self.augment = (
            _probability(threshold),
            float(consistency_weight),
            augment,
        )

    def update(self, source_x, source_y, target_x, progress):
        self.schedule(progress)
        class_loss, domain_loss, stats, (_, target_logits) = self.adversarial_losses(
            source_x, source_y, target_x, target_logits=True
        )
        consistency, mask_rate = confident_consistency_loss(
            target_logits, self.model(self.augment(target_x)), self.threshold
        )
        weight = self.consistency_weight * dann_lambda(progress, self.gamma)
        self.step(class_loss + domain_loss + weight * consistency)
        return {
            "class_loss": class_loss.item(),
            "domain_loss": domain_loss.item(),
            "consistency": consistency.item(),
            "confident": mask_rate.item(),
            **stats,
            "lambda": self.grl.lambda_,
        }


class FixMatch(Method):
    """Self-training with FixMatch consistency (Sohn et al., NeurIPS 2020), with labelled source images:

        ``L = CE(G(a(x_s)), y_s) + w * confident_consistency_loss(G(x_t), G(a(x_t)))``

    Each of the three batches (source, clean target, augmented target) goes through the network in its
    own pass, so batch norm normalises each with its own statistics. There is no domain classifier:
    the target is reached through the model's own confident predictions, so start from a model that
    is already good on the target (the ``self_training`` row of `tlcourse.experiments.dann` refines the
    ``source_augment`` model, as DIRT-T refines VADA's).

    Args:
        threshold: the confidence a target prediction needs to become a label (FixMatch's 0.95).
        consistency_weight: ``w``, FixMatch's ``lambda_u`` (1), constant: the start is already trained.
        augment: ``a``, the strong augmentation (`colour_and_shift`), applied to the source batch too
            (``augment_source=True``), so the labelled images teach the same invariance.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        threshold: float = 0.95,
        consistency_weight: float = 1.0,
        augment: Callable[[torch.Tensor], torch.Tensor] = colour_and_shift,
        augment_source: bool = True,
    ) -> None:
        super().__init__(model, lr)
        self.threshold, self.consistency_weight = _probability(threshold), float(consistency_weight)
        self.augment, self.augment_source = augment, bool(augment_source)
        self.make_optimizer()

    def update(self, source_x, source_y, target_x, progress):
        class_loss = F.cross_entropy(self.model(self.augment(source_x) if self.augment_source else source_x), source_y)
        with torch.no_grad():  # the clean pass only makes pseudo-labels (and batch-norm statistics)
            clean_logits = self.model(target_x)
        consistency, mask_rate = confident_consistency_loss(
            clean_logits, self.model(self.augment(target_x)), self.threshold
        )
        self.step(class_loss + self.consistency_weight * consistency)
        return {"class_loss": class_loss.item(), "consistency": consistency.item(), "confident": mask_rate.item()}


__all__: Sequence[str] = ["DIRTT", "VADA", "EntropyMinimization", "FixMatch", "FixMatchDANN"]
