"""Domain generalization: train on several (or one) source domains, test on a domain never seen.

Unlike domain adaptation, no target image is available while training. The methods here follow
DomainBed's contract (Gulrajani & Lopez-Paz, ICLR 2021): each step gets **one labelled minibatch per
training domain**, ``update(minibatches, progress) -> dict of losses``, and ``predict(x)`` classifies.
`fit_domains` runs any of them; `leave_one_domain_out` holds out each domain in turn.

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

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from tlcourse.library.data import Domain, photo_blend, rotate_images
from tlcourse.library.methods.base import Method
from tlcourse.library.methods.dann import GradientReversal, dann_lambda
from tlcourse.library.models import FeatureClassifier
from tlcourse.library.train import History, choose_device, evaluate, iterate_minibatches

Minibatches = Sequence[tuple[torch.Tensor, torch.Tensor]]
T = TypeVar("T")


# ------------------------------------------------------------------------------------------------ CORAL
def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL's distance between the feature covariances of two samples (Sun & Saenko, 2016, eq. 1):

        ``L = ||C_S - C_T||_F^2 / (4 d^2)``,  with  ``C = (X - mean(X))^T (X - mean(X)) / (n - 1)``

    the unbiased covariance of each sample's ``d`` features.

    Args:
        source: ``(n_s, d)`` features, n_s >= 2; target: ``(n_t, d)`` features, n_t >= 2.

    Returns:
        0-dim tensor, differentiable in both inputs; 0 for identical samples.
    """
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"coral_loss needs two (n, d) feature matrices with the same d, got "
                         f"{tuple(source.shape)} and {tuple(target.shape)}.")
    if len(source) < 2 or len(target) < 2:
        raise ValueError(f"coral_loss needs at least 2 samples per set, got {len(source)} and {len(target)}.")
    d = source.shape[1]

    def covariance(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(0, keepdim=True)
        return centred.T @ centred / (len(x) - 1)

    return (covariance(source) - covariance(target)).pow(2).sum() / (4 * d * d)


# ----------------------------------------------------------------------------------- the method contract
class MultiDomainMethod(Method):
    """A domain-generalization method: `update` takes one ``(x, y)`` minibatch per training domain."""

    def update(self, minibatches: Minibatches, progress: float) -> dict[str, float]:  # type: ignore[override]
        """One step on ``[(x_1, y_1), ..., (x_K, y_K)]``, one labelled minibatch per training domain.

        ``progress`` is the fraction of training done, in [0, 1], for schedules.
        """
        raise NotImplementedError


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


class MultiDomainDiscriminator(nn.Sequential):
    """A K-way domain classifier: features ``(N, d)`` -> domain logits ``(N, K)`` (fc -> ReLU -> fc)."""

    def __init__(self, num_features: int, num_domains: int, hidden: int = 100) -> None:
        super().__init__(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, num_domains))


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
        return {"class_loss": class_loss.item(), "domain_loss": domain_loss.item(),
                "domain_acc": (domain_logits.argmax(1) == domain).float().mean().item()}


class CORAL(MultiDomainMethod):
    """Cross-entropy plus ``weight`` times the mean `coral_loss` over every pair of training domains.

        ``L = mean_k CE_k + weight * mean_{i < j} coral_loss(G_f(x_i), G_f(x_j))``

    (DomainBed's CORAL also matches the feature means; Deep CORAL, and this class, match covariances.)
    ``distance`` replaces `coral_loss` (e.g. by your own, or by an MMD).
    """

    def __init__(self, model: FeatureClassifier, lr: float = 1e-3, weight: float = 1000.0,
                 distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__(model, lr)
        self.weight = float(weight)
        self.distance = distance or coral_loss
        self.make_optimizer()

    def update(self, minibatches, progress):
        features = [self.model.features(x) for x, _ in minibatches]
        class_loss = torch.stack([F.cross_entropy(self.model.head(f), y)
                                  for f, (_, y) in zip(features, minibatches)]).mean()
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


def irm_penalty(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """IRMv1's penalty for one domain: ``|| d/dw CE(w * logits, y) at w = 1 ||^2`` (Arjovsky et al., eq. 4).

    It is zero when scaling the classifier would not lower this domain's risk: the classifier is then
    optimal on top of the features for this domain.
    """
    scale = torch.ones((), device=logits.device, requires_grad=True)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits * scale, y), [scale], create_graph=True)
    return grad.pow(2)


class IRM(MultiDomainMethod):
    """Invariant risk minimisation (IRMv1): ``L = mean_k CE_k + lambda * mean_k irm_penalty_k``.

    As in the paper's ColoredMNIST code: ``lambda = 1`` for the first ``anneal_steps`` updates, then
    ``penalty_weight``; the optimizer is reset at the switch (Adam's statistics were for the small
    penalty), and the whole loss, with its L2 term ``weight_decay * ||theta||^2``, is divided by
    ``lambda`` so that the step size stays sane. (Adam's own weight decay would not be divided, and would
    then shrink the network to the constant predictor, which has no penalty.)
    """

    def __init__(self, model: FeatureClassifier, lr: float = 1e-3, penalty_weight: float = 1e4,
                 anneal_steps: int = 100, weight_decay: float = 0.0) -> None:
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
def random_colour_domain(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Paint every image with its own random foreground and background colour: a new domain per batch.

        ``gray = mean over channels of x``;  ``fg, bg ~ U[0, 1]^3`` per image;
        ``out = bg + (fg - bg) * gray``

    A dark foreground on a bright background is an inversion, so colour *and* contrast polarity vary.

    Args:
        x: ``(N, C, H, W)`` images in [0, 1].
        generator: draws ``fg`` then ``bg``, each ``torch.rand(N, 3, 1, 1, generator=generator)``.

    Returns:
        ``(N, 3, H, W)`` images in [0, 1].
    """
    n = len(x)
    gray = x.mean(1, keepdim=True)  # (N, 1, H, W)
    fg = torch.rand(n, 3, 1, 1, generator=generator).to(x)
    bg = torch.rand(n, 3, 1, 1, generator=generator).to(x)
    return bg + (fg - bg) * gray


def randomize_domain(x: torch.Tensor, generator: torch.Generator, *, max_degrees: float = 75.0,
                     p_texture: float = 0.3, noise_std: float = 0.15,
                     colour: Callable[[torch.Tensor, torch.Generator], torch.Tensor] = random_colour_domain) -> torch.Tensor:
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

    def __init__(self, model: FeatureClassifier, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] = randomize_domain,
                 lr: float = 1e-3, seed: int = 0, fraction: float = 0.5) -> None:
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

    def __init__(self, model: FeatureClassifier, lr: float = 1e-3, gamma: float = 1.0,
                 ascent_steps: int = 3, ascent_lr: float = 1.0) -> None:
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
            objective = (F.cross_entropy(self.model.head(features), y)
                         - self.gamma * (features - anchor).pow(2).sum(1).mean() / features.shape[1])
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


# ---------------------------------------------------------------------------------------- the loops
def fit_domains(
    method: MultiDomainMethod,
    domains: Mapping[str, Domain] | Sequence[Domain],
    *,
    epochs: int = 3,
    batch_size: int = 32,
    val: Domain | None = None,
    monitor: Mapping[str, Domain] | None = None,
    select: bool = False,
    device: torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train a `MultiDomainMethod` with one minibatch of ``batch_size`` from every domain per step.

    An epoch is as many steps as the *smallest* domain has full minibatches (a domain smaller than
    ``batch_size`` gives its whole self each step); each domain's order is reshuffled when it runs out.

    Args:
        domains: the training domains (K of them: K minibatches per step).
        val: a labelled validation set *from the training domains* (training-domain validation);
            ``val_acc`` is recorded after each epoch.
        monitor: ``{name: Domain}`` evaluated after each epoch too (``{name}_acc``), e.g. the held-out
            domain's oracle split. They are only looked at, never trained on, and never chosen by
            unless the caller says it is an oracle.
        select: keep the parameters of the epoch with the best ``val_acc`` (later epoch on ties)
            instead of the last; ``history.best_epoch`` tells which.
        seed: seeds every domain's batch order.
    """
    domains = list(domains.values()) if isinstance(domains, Mapping) else list(domains)
    if not domains:
        raise ValueError("fit_domains needs at least one training domain.")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if select and val is None:
        raise ValueError("select=True chooses the epoch by training-domain validation: pass val=...")
    device = device or choose_device()
    method.to(device)
    generator = torch.Generator().manual_seed(seed)

    def batches(domain: Domain) -> Iterator[torch.Tensor]:
        size = min(batch_size, len(domain))
        while True:
            for idx in iterate_minibatches(len(domain), size, shuffle=True, generator=generator):
                if len(idx) == size:
                    yield idx

    streams = [batches(d) for d in domains]
    steps_per_epoch = max(1, min(len(d) for d in domains) // batch_size)
    total = epochs * steps_per_epoch
    history = History()
    best_acc, best_state = -1.0, None
    step = 0
    for epoch in tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False):
        method.train()
        sums: dict[str, float] = {}
        for _ in range(steps_per_epoch):
            minibatches = []
            for domain, stream in zip(domains, streams):
                idx = next(stream)
                minibatches.append((domain.x[idx].to(device), domain.y[idx].to(device)))
            for k, v in method.update(minibatches, step / total).items():
                sums[k] = sums.get(k, 0.0) + v
            step += 1
        record = {"epoch": epoch, **{k: v / steps_per_epoch for k, v in sums.items()}}
        if val is not None:
            record["val_acc"] = evaluate(method, val, device=device)
        for name, domain in (monitor or {}).items():
            record[f"{name}_acc"] = evaluate(method, domain, device=device)
        history.append(**record)
        if select and record["val_acc"] >= best_acc:
            best_acc, best_state, history.best_epoch = record["val_acc"], copy.deepcopy(method.state_dict()), epoch
    if best_state is not None:
        method.load_state_dict(best_state)
    return history


def leave_one_domain_out(domains: Mapping[str, Domain],
                         train_and_test: Callable[[dict[str, Domain], Domain], T]) -> dict[str, T]:
    """Hold out each domain in turn: train on all the others, test on it.

    Args:
        domains: ``{name: Domain}``, at least two.
        train_and_test: ``train_and_test(training_domains, held_out)`` trains a fresh model on
            ``training_domains`` (a ``{name: Domain}`` dict without the held-out one, in the original
            order) and returns its result on ``held_out`` (an accuracy, or a dict of numbers).

    Returns:
        ``{held-out name: result}``, in the order of ``domains``.
    """
    if len(domains) < 2:
        raise ValueError(f"leave-one-domain-out needs at least two domains, got {len(domains)}.")
    results = {}
    for held_out in domains:
        training = {name: domain for name, domain in domains.items() if name != held_out}
        results[held_out] = train_and_test(training, domains[held_out])
    return results


def split_domains(domains: Mapping[str, Domain], val_fraction: float, seed: int) -> tuple[dict[str, Domain], Domain]:
    """Split every domain into training and validation parts; the validation parts are pooled.

    Returns:
        ``({name: training part}, pooled validation Domain)``: the data for training-domain validation.
    """
    train, vals = {}, []
    for i, (name, domain) in enumerate(domains.items()):
        val, rest = domain.split(val_fraction, seed=seed + i)
        train[name] = rest
        vals.append(val)
    first = vals[0]
    pooled = Domain("val", torch.cat([v.x for v in vals]), torch.cat([v.y for v in vals]), first.classes)
    return train, pooled


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (for tables)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def describe(method: Any) -> str:
    """A method's class name and its scalar hyperparameters, for tables and logs."""
    names = ("lr", "weight", "lambda_max", "alpha", "penalty_weight", "anneal_steps", "gamma", "ascent_steps")
    params = {n: getattr(method, n) for n in names if hasattr(method, n)}
    return f"{type(method).__name__}({', '.join(f'{k}={v:g}' for k, v in params.items())})"
