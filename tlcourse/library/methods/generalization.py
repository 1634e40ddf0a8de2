"""Domain generalization: train on several (or one) source domains, test on a domain never seen.

Unlike domain adaptation, no target image is available while training. The methods here follow
DomainBed's contract (Gulrajani & Lopez-Paz, ICLR 2021): each step gets **one labelled minibatch per
training domain**, ``update(minibatches, progress) -> dict of losses``, and ``predict(x)`` classifies.
`tlcourse.library.train.fit_domains` runs any of them; `tlcourse.library.train.leave_one_domain_out`
holds out each domain in turn. The penalties and the colour randomisation are shared building blocks
(`tlcourse.library.modules`).

Multi-source methods:

* `ERM`: pool the domains and minimise the average cross-entropy (Vapnik's empirical risk).
* `DomainAdversarial`: DANN with a **K-way** domain classifier over the K sources behind a gradient
  reversal (Ganin et al., JMLR 2016; DomainBed's DANN).
* `CORAL`: align the second-order statistics of every pair of domains' features (`coral_loss`; Sun &
  Saenko, ECCV-W 2016).
* `InterDomainMixup`: train on convex mixtures of two domains' images and labels (Yan et al., 2020;
  DomainBed's Mixup).
* `IRM`: invariant risk minimisation, the IRMv1 penalty (Arjovsky et al., 2019).

Single-source methods make **new domains** from the one they have:

* `AugmentedERM` with `randomize_domain`: random colours (`random_colour_domain`), photo textures,
  rotations and noise;
* `AdversarialAugmentation`: images pushed by gradient ascent towards where the model errs, kept close
  in feature space (Volpi et al., NeurIPS 2018; M-ADA, Qiao et al., CVPR 2020, adds a meta-learning
  step that we leave out).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch.nn import functional as F

from tlcourse.library.data import Domain, photo_blend, rotate_images
from tlcourse.library.methods.base import MultiDomainMethod
from tlcourse.library.models import FeatureClassifier
from tlcourse.library.modules import (
    GradientReversal,
    MultiDomainDiscriminator,
    coral_loss,
    dann_lambda,
    irm_penalty,
    random_colour_domain,
)


class ERM(MultiDomainMethod):
    """Empirical risk minimisation: cross-entropy over all domains' images pooled together."""

    def __init__(self, model: FeatureClassifier, lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        super().__init__(model, lr)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)

    def update(self, minibatches, progress):
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        loss = F.cross_entropy(self.model(x), y)
        self.step(loss)
        return {"loss": loss.item()}


class DomainAdversarial(MultiDomainMethod):
    """DANN over K source domains: features from which a K-way domain classifier cannot tell the domain.

        ``L = CE(G_y(G_f(x)), y) + CE(G_d(R_lambda(G_f(x))), domain(x))``

    The gradient reversal ``R_lambda`` makes the feature extractor *ascend* the domain loss while the
    domain classifier descends it; ``lambda`` follows DANN's schedule `dann_lambda` up to ``lambda_max``.

    Args:
        num_domains: K, the number of training domains (minibatches per step).
    """

    def __init__(self, model: FeatureClassifier, num_domains: int, lr: float = 1e-3, lambda_max: float = 0.1) -> None:
        super().__init__(model, lr)
        self.discriminator = MultiDomainDiscriminator(model.num_features, num_domains)
        self.grl = GradientReversal(0.0)
        self.lambda_max = float(lambda_max)
        self.make_optimizer()

    def update(self, minibatches, progress):
        self.grl.lambda_ = self.lambda_max * dann_lambda(progress)
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        domain = torch.cat([torch.full((len(b),), k, device=x.device) for k, (b, _) in enumerate(minibatches)])
        features = self.model.features(x)
        class_loss = F.cross_entropy(self.model.head(features), y)
        domain_logits = self.discriminator(self.grl(features))
        domain_loss = F.cross_entropy(domain_logits, domain)
        self.step(class_loss + domain_loss)
        return {
            "class_loss": class_loss.item(),
            "domain_loss": domain_loss.item(),
            "domain_acc": (domain_logits.argmax(1) == domain).float().mean().item(),
        }


class CORAL(MultiDomainMethod):
    """Cross-entropy plus ``weight`` times the mean `coral_loss` over every pair of training domains.

        ``L = mean_k CE_k + weight * mean_{i < j} coral_loss(G_f(x_i), G_f(x_j))``

    (DomainBed's CORAL also matches the feature means; Deep CORAL, and this class, match covariances.)
    ``distance`` replaces `coral_loss` (e.g. by your own, or by an MMD).
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        weight: float = 1000.0,
        distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(model, lr)
        self.weight = float(weight)
        self.distance = distance or coral_loss
        self.make_optimizer()

    def update(self, minibatches, progress):
        features = [self.model.features(x) for x, _ in minibatches]
        class_loss = torch.stack(
            [F.cross_entropy(self.model.head(f), y) for f, (_, y) in zip(features, minibatches)]
        ).mean()
        pairs = list(itertools.combinations(features, 2))
        penalty = torch.stack([self.distance(a, b) for a, b in pairs]).mean() if pairs else class_loss.new_zeros(())
        self.step(class_loss + self.weight * penalty)
        return {"class_loss": class_loss.item(), "coral": penalty.item()}


class InterDomainMixup(MultiDomainMethod):
    """Mixup across domains: for a random pairing of domains i, j and ``lam ~ Beta(alpha, alpha)``,

        ``L = lam CE(f(lam x_i + (1 - lam) x_j), y_i) + (1 - lam) CE(f(...), y_j)``

    so the model also sees the images *between* domains (Yan et al., 2020; DomainBed's Mixup).
    """

    def __init__(self, model: FeatureClassifier, lr: float = 1e-3, alpha: float = 0.2) -> None:
        super().__init__(model, lr)
        self.alpha = float(alpha)
        self.make_optimizer()

    def update(self, minibatches, progress):
        beta = torch.distributions.Beta(self.alpha, self.alpha)
        order = torch.randperm(len(minibatches)).tolist()  # pair domain k with domain order[k]
        losses = []
        for (xi, yi), (xj, yj) in zip(minibatches, [minibatches[k] for k in order]):
            n = min(len(xi), len(xj))
            lam = beta.sample().item()
            logits = self.model(lam * xi[:n] + (1 - lam) * xj[:n])
            losses.append(lam * F.cross_entropy(logits, yi[:n]) + (1 - lam) * F.cross_entropy(logits, yj[:n]))
        loss = torch.stack(losses).mean()
        self.step(loss)
        return {"loss": loss.item()}


class IRM(MultiDomainMethod):
    """Invariant risk minimisation (IRMv1): ``L = mean_k CE_k + lambda * mean_k irm_penalty_k``.

    As in the paper's ColoredMNIST code: ``lambda = 1`` for the first ``anneal_steps`` updates, then
    ``penalty_weight``; the optimizer is reset at the switch (Adam's statistics were for the small
    penalty), and the whole loss, with its L2 term ``weight_decay * ||theta||^2``, is divided by
    ``lambda`` so that the step size stays sane. (Adam's own weight decay would not be divided, and would
    then shrink the network to the constant predictor, which has no penalty.)
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        penalty_weight: float = 1e4,
        anneal_steps: int = 100,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(model, lr)
        self.penalty_weight, self.anneal_steps = float(penalty_weight), int(anneal_steps)
        self.weight_decay = float(weight_decay)
        self.steps = 0
        self._reset_optimizer()

    def _reset_optimizer(self) -> None:
        self.optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)

    def update(self, minibatches, progress):
        if self.steps == self.anneal_steps:
            self._reset_optimizer()
        weight = self.penalty_weight if self.steps >= self.anneal_steps else 1.0
        risks, penalties = [], []
        for x, y in minibatches:
            logits = self.model(x)
            risks.append(F.cross_entropy(logits, y))
            penalties.append(irm_penalty(logits, y))
        risk, penalty = torch.stack(risks).mean(), torch.stack(penalties).mean()
        l2 = sum(p.pow(2).sum() for p in self.model.parameters())
        loss = (risk + self.weight_decay * l2 + weight * penalty) / max(weight, 1.0)
        self.step(loss)
        self.steps += 1
        return {"risk": risk.item(), "penalty": penalty.item()}


# ----------------------------------------------------------------------------- new domains from one domain
def randomize_domain(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    max_degrees: float = 75.0,
    p_texture: float = 0.3,
    noise_std: float = 0.15,
    colour: Callable[[torch.Tensor, torch.Generator], torch.Tensor] = random_colour_domain,
) -> torch.Tensor:
    """Domain randomisation: random rotation, then random colours (``colour``), a random photo texture for
    a share ``p_texture`` of the images (the MNIST-M blend) and Gaussian noise of a random strength.

    Args:
        x: ``(N, C, H, W)`` images in [0, 1] (on the CPU or any device).
        generator: a CPU generator; every random choice comes from it.
        colour: the colour randomiser, ``colour(x, generator) -> (N, 3, H, W)``.

    Returns:
        ``(N, 3, H, W)`` images in [0, 1], on the device of ``x``.
    """
    n = len(x)
    device = x.device
    x = x.cpu()
    angles = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * max_degrees
    x = rotate_images(x, angles)
    x = colour(x, generator)
    textured = torch.rand(n, generator=generator) < p_texture
    if textured.any():
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        sub = Domain("batch", x[textured], torch.zeros(int(textured.sum()), dtype=torch.long), ("?",))
        x[textured] = photo_blend(sub, seed=seed).x
    strength = torch.rand(n, 1, 1, 1, generator=generator) * noise_std
    x = x + strength * torch.randn(x.shape, generator=generator)
    return x.clamp(0.0, 1.0).to(device)


class AugmentedERM(MultiDomainMethod):
    """ERM on augmented copies of each batch: ``augment(x, generator)`` invents a new domain each step.

    A share ``fraction`` of each batch is augmented, the rest kept, so the source domain itself stays learnt.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] = randomize_domain,
        lr: float = 1e-3,
        seed: int = 0,
        fraction: float = 0.5,
    ) -> None:
        super().__init__(model, lr)
        self.augment = augment
        self.fraction = float(fraction)
        self.generator = torch.Generator().manual_seed(seed)
        self.make_optimizer()

    def update(self, minibatches, progress):
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        cut = round(self.fraction * len(x))
        x = torch.cat([self.augment(x[:cut], self.generator).to(x), x[cut:].expand(-1, 3, -1, -1)])
        loss = F.cross_entropy(self.model(x), y)
        self.step(loss)
        return {"loss": loss.item()}


class AdversarialAugmentation(MultiDomainMethod):
    """Adversarial data augmentation (Volpi et al., 2018), the core of M-ADA (Qiao et al., 2020).

    Every step also trains on "fictitious domain" images found by ``ascent_steps`` steps of gradient
    *ascent* on

        ``CE(f(x_adv), y) - gamma * || G_f(x_adv) - G_f(x) ||^2``

    from ``x`` (pixels kept in [0, 1]): images on which the model errs, yet whose features stay near
    the originals' (so they remain images of the same class). M-ADA adds a meta-learning step and an
    auto-encoder term, which we leave out.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        lr: float = 1e-3,
        gamma: float = 1.0,
        ascent_steps: int = 3,
        ascent_lr: float = 1.0,
    ) -> None:
        super().__init__(model, lr)
        self.gamma, self.ascent_steps, self.ascent_lr = float(gamma), int(ascent_steps), float(ascent_lr)
        self.make_optimizer()

    def fictitious(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Images pushed towards higher loss with a feature-distance brake (no gradient to the model)."""
        with torch.no_grad():
            anchor = self.model.features(x)
        x_adv = x.detach().clone().requires_grad_(True)
        for _ in range(self.ascent_steps):
            features = self.model.features(x_adv)
            objective = (
                F.cross_entropy(self.model.head(features), y)
                - self.gamma * (features - anchor).pow(2).sum(1).mean() / features.shape[1]
            )
            (grad,) = torch.autograd.grad(objective, [x_adv])
            # Normalised ascent step per image: each image moves the same distance.
            step = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            x_adv = (x_adv + self.ascent_lr * step).clamp(0.0, 1.0).detach().requires_grad_(True)
        return x_adv.detach()

    def update(self, minibatches, progress):
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        x_adv = self.fictitious(x, y)
        loss = F.cross_entropy(self.model(torch.cat([x, x_adv])), torch.cat([y, y]))
        self.step(loss)
        return {"loss": loss.item()}
