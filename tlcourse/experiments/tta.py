"""Chapter 4c: test-time adaptation (TTA) on the shifted domains of chapter 1.

A batch-norm CNN is trained on Fashion-MNIST once per seed. At test time each shifted domain (the
chapter-1 targets, made from the same source test images) arrives as a stream of small unlabelled
batches; each batch is classified by the source model as it is, after batch-norm adaptation, and by
TENT (online and episodic). The hyperparameters (batch size, learning rate, one step) are TENT's
defaults, fixed before looking at any target: no target label is used except to score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from tlcourse.experiments.expected import autograding
from tlcourse.experiments.registry import register, seed_row
from tlcourse.experiments.results import ExperimentResult
from tlcourse.library.data import load_fashion_mnist, make_target
from tlcourse.library.methods.tta import Tent, bn_adapted, predict_stream
from tlcourse.library.models import build_classifier
from tlcourse.library.train import fit

#: The chapter-1 covariate shifts.
SHIFTS = ("photo_blend", "rotate", "colour", "invert", "noise")


@dataclass(frozen=True)
class TTAConfig:
    """The chapter's budget; TENT's hyperparameters are the paper's (``docs/decisions/test-time-adaptation.md``)."""

    n_train: int = 6_000  # source training images (the batch-norm CNN is slower per image than a LeNet)
    n_test: int = 2_000  # source test images; every shifted domain is made from these same images
    epochs: int = 2  # training epochs of the source model
    lr: float = 1e-3  # Adam's learning rate of the source model
    batch_size: int = 64  # images per training step
    test_batch: int = 128  # the size of each unlabelled target batch at test time
    tent_lr: float = 1e-3  # TENT's learning rate (Adam, one step per batch)
    arch: str = "bn_cnn"  # a network with batch norm, which every method here adapts


#: The label-shift notebook's budget for its test-time demo, and the smaller one while nbgrader grades.
NOTEBOOK_CONFIG = TTAConfig(n_train=2_500, n_test=1_000, epochs=2)
GRADING_CONFIG = TTAConfig(n_train=1_500, n_test=1_000, epochs=1)


def notebook_config() -> TTAConfig:
    """`GRADING_CONFIG` while nbgrader grades, else `NOTEBOOK_CONFIG`."""
    return GRADING_CONFIG if autograding() else NOTEBOOK_CONFIG


#: ``{row: factory(source model, config) -> adapter}``; an adapter maps each target batch to logits
#: (`predict_stream`). ``source_only`` is the source model as it is.
METHODS: dict[str, Callable] = {
    "source_only": lambda model, config: model,
    "bn_adapt": lambda model, config: bn_adapted(model),
    "tent": lambda model, config: Tent(model, lr=config.tent_lr),
    "tent_episodic": lambda model, config: Tent(model, lr=config.tent_lr, episodic=True),
}


def adapt_and_score(model, target, config: TTAConfig) -> dict[str, float]:
    """Accuracy of each test-time method on one target domain, fed in batches of ``config.test_batch``."""
    model.eval()
    adapters = {name: make(model, config) for name, make in METHODS.items()}  # each from the same source model
    scores = {}
    for name, adapter in adapters.items():
        logits = predict_stream(adapter, target.x, config.test_batch)
        scores[name] = (logits.argmax(1) == target.y).float().mean().item()
    return scores


@register("test-time")
def run_test_time(seed: int = 0, config: TTAConfig | None = None, progress: bool = True) -> ExperimentResult:
    """Train the source model once, then score every method of `METHODS` on the source and each shift."""
    config = config or TTAConfig()
    start = time.perf_counter()
    seed_row(seed)
    train = load_fashion_mnist("train").take(config.n_train, seed=seed).to_rgb()
    test = load_fashion_mnist("test").take(config.n_test, seed=seed).to_rgb()
    model = build_classifier(config.arch, num_classes=train.num_classes)
    history = fit(
        model,
        train,
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        seed=seed,
        progress=progress,
        desc="source model",
    )

    per_shift = {"source": adapt_and_score(model, test, config)}
    for shift in SHIFTS:
        per_shift[shift] = adapt_and_score(model, make_target(test, shift, seed=seed), config)

    results: dict[str, float] = {}
    for method in METHODS:  # the headline: mean accuracy over the five shifted domains
        results[method] = sum(per_shift[s][method] for s in SHIFTS) / len(SHIFTS)
    for shift, scores in per_shift.items():
        results.update({f"{method}_{shift}": scores[method] for method in METHODS})
    table = [(shift, {f"{m} %": 100 * scores[m] for m in METHODS}) for shift, scores in per_shift.items()]
    table.append(("mean of the 5 shifts", {f"{m} %": 100 * results[m] for m in METHODS}))
    return ExperimentResult(
        experiment="test-time",
        seed=seed,
        results=results,
        seconds=time.perf_counter() - start,
        table=table,
        details={"model": model, "history": history, "config": asdict(config), "per_shift": per_shift},
    )
