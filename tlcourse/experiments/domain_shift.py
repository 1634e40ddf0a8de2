"""Chapter 1: how far accuracy falls when the test domain moves, and how far the domains are apart.

A LeNet trained on Fashion-MNIST is tested on the same test images seen through five seeded covariate
shifts (the MNIST-M photo blend first), on a label-shifted resample, and under a concept shift. For each
covariate shift, the distance between source and target features is measured twice: the unbiased MMD
and the proxy A-distance.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from tlcourse.experiments.registry import register, seed_row
from tlcourse.experiments.results import ExperimentResult
from tlcourse.library.data import Domain, load_fashion_mnist, make_target, one_class_prior, resample_to_prior
from tlcourse.library.metrics import median_bandwidth, mmd2_unbiased, proxy_a_distance
from tlcourse.library.models import FeatureClassifier, build_classifier
from tlcourse.library.train import evaluate, extract_features, fit

#: The covariate shifts of the chapter, in the order the table shows them.
COVARIATE_SHIFTS = ("photo_blend", "rotate", "colour", "invert", "noise")

SHIRT = 6  # Fashion-MNIST's hardest class
PULLOVER, COAT = 2, 4


@dataclass(frozen=True)
class DomainShiftConfig:
    """The chapter's budget, sized for a short run on a 2-core CPU (``docs/decisions/domain-shift.md``)."""

    n_train: int = 10_000  # source training images
    n_test: int = 2_000  # source test images; every target is made from these same images
    epochs: int = 6  # training epochs of the source model
    lr: float = 1e-3  # Adam's learning rate
    batch_size: int = 64  # images per step
    n_distance: int = 500  # images per domain for the MMD and the proxy A-distance
    arch: str = "lenet"  # the source model (`tlcourse.library.models.build_classifier`)


def notebook_config() -> DomainShiftConfig:
    """The notebook's budget: the command line's, at which the expected ranges were measured."""
    return DomainShiftConfig()


def make_domain_shift_task(
    seed: int, config: DomainShiftConfig = DomainShiftConfig()
) -> tuple[Domain, Domain, dict[str, Domain]]:
    """Source train and test sets (RGB Fashion-MNIST), and the covariate-shifted targets of the test set.

    The targets hold the same images and labels as the source test set: only the image style moves,
    so any fall in accuracy is the shift's doing.
    """
    source_train = load_fashion_mnist("train").take(config.n_train, seed=seed).to_rgb()
    source_test = load_fashion_mnist("test").take(config.n_test, seed=seed).to_rgb()
    targets = {name: make_target(source_test, name, seed=seed) for name in COVARIATE_SHIFTS}
    return source_train, source_test, targets


def label_shift_target(source_test: Domain, seed: int, weight: float = 0.5) -> Domain:
    """Label shift: the same kind of images, but half of them are now shirts (p(y) moves, p(x|y) stays)."""
    prior = one_class_prior(source_test.num_classes, SHIRT, weight)
    # As many images as the shirts allow without drawing any image twice.
    n = min(len(source_test) // 2, int(source_test.class_counts()[SHIRT] / weight))
    return resample_to_prior(source_test, prior, n=n, seed=seed)


def concept_shift_target(source_test: Domain) -> Domain:
    """Concept shift: the same images, but the target calls pullovers "Coat" and coats "Pullover" (p(y|x) moves)."""
    y = source_test.y.clone()
    y[source_test.y == PULLOVER], y[source_test.y == COAT] = COAT, PULLOVER
    return Domain("concept_shift", source_test.x, y, source_test.classes)


def domain_distance(
    model: FeatureClassifier, source: Domain, target: Domain, *, n: int, seed: int, bandwidth: float | None = None
) -> dict[str, float]:
    """MMD² and proxy A-distance between the model's features of ``n`` source and ``n`` target images."""
    fs = extract_features(model, source.take(min(n, len(source)), seed=seed).x)
    ft = extract_features(model, target.take(min(n, len(target)), seed=seed + 1).x)
    bandwidth = bandwidth if bandwidth is not None else median_bandwidth(fs, fs)
    return {
        "mmd": float(mmd2_unbiased(fs, ft, bandwidth=bandwidth)),
        "pad": proxy_a_distance(fs, ft, seed=seed),
    }


@register("domain-shift")
def run_domain_shift(seed: int = 0, config: DomainShiftConfig | None = None, progress: bool = True) -> ExperimentResult:
    """Train on the source, then measure accuracy and domain distance on every target."""
    config = config or DomainShiftConfig()
    start = time.perf_counter()
    seed_row(seed)
    source_train, source_test, targets = make_domain_shift_task(seed, config)
    model = build_classifier(config.arch, num_classes=source_train.num_classes)
    history = fit(
        model,
        source_train,
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        seed=seed,
        progress=progress,
        desc="source model",
    )

    source_acc = evaluate(model, source_test)
    results: dict[str, float] = {"source": source_acc}
    table: list[tuple[str, dict[str, float | str]]] = [
        ("source (fashion-mnist)", {"accuracy %": 100 * source_acc, "drop": 0.0, "MMD²": 0.0, "PAD": ""})
    ]
    # One bandwidth for every target, so that their MMDs can be compared with each other.
    fs = extract_features(model, source_test.take(min(config.n_distance, len(source_test)), seed=seed).x)
    bandwidth = median_bandwidth(fs, fs)
    for name, target in targets.items():
        acc = evaluate(model, target)
        dist = domain_distance(model, source_test, target, n=config.n_distance, seed=seed, bandwidth=bandwidth)
        results[name] = acc
        results[f"mmd_{name}"] = dist["mmd"]
        results[f"pad_{name}"] = dist["pad"]
        table.append(
            (name, {"accuracy %": 100 * acc, "drop": 100 * (source_acc - acc), "MMD²": dist["mmd"], "PAD": dist["pad"]})
        )

    for name, target in [
        ("label_shift", label_shift_target(source_test, seed)),
        ("concept_shift", concept_shift_target(source_test)),
    ]:
        acc = evaluate(model, target)
        results[name] = acc
        table.append((name, {"accuracy %": 100 * acc, "drop": 100 * (source_acc - acc), "MMD²": "", "PAD": ""}))

    return ExperimentResult(
        experiment="domain-shift",
        seed=seed,
        results=results,
        seconds=time.perf_counter() - start,
        table=table,
        details={"model": model, "history": history, "config": asdict(config), "targets": targets},
    )
