"""Chapter 4a: label shift. Estimate the target's class proportions without target labels, then correct.

One LeNet is trained on (nearly) balanced Fashion-MNIST per seed; everything after that is cheap and
reuses its outputs. Targets are drawn from the Fashion-MNIST test set with priors from Dirichlet(alpha)
(alpha = 0.1, 1, 10) and with one class up-weighted to half of the images. For each target, the
importance weights ``w = q / p`` are estimated by BBSE (hard and soft) and by EM (raw, temperature
scaled, BCTS calibrated); the source posteriors are then re-weighted, and the head is retrained with
importance-weighted cross-entropy. Calibration and the confusion matrix use a labelled *source*
validation split only; no target label is used except to score.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from tlcourse.experiments.expected import autograding
from tlcourse.experiments.registry import register, seed_row
from tlcourse.experiments.results import ExperimentResult
from tlcourse.library.data import Domain, dirichlet_prior, load_fashion_mnist, one_class_prior, resample_to_prior
from tlcourse.library.methods.label_shift import (
    em_prior_adjustment,
    estimate_label_shift_bbse,
    fit_bcts,
    fit_temperature,
    importance_weighted_cross_entropy,
    reweight_posteriors,
    source_prior,
    true_weights,
    weight_squared_error,
)
from tlcourse.library.models import build_classifier
from tlcourse.library.train import extract_features, fit, predict

#: The estimators of the chapter, in table order.
ESTIMATORS = ("bbse", "bbse_soft", "em", "em_ts", "em_calibrated")
SHIFTS = ("alpha0.1", "alpha1", "alpha10", "one_class")


@dataclass(frozen=True)
class LabelShiftConfig:
    """The chapter's budget: one source model per seed, then many cheap targets (``docs/decisions/label-shift.md``)."""

    n_train: int = 10_000  # balanced-ish source training images
    n_val: int = 2_000  # labelled source validation: confusion matrix and calibration
    n_target: int = 1_000  # images per target draw
    draws: int = 10  # target priors per shift setting
    epochs: int = 5  # training epochs of the source model
    lr: float = 1e-3  # Adam's learning rate (source model and head retraining)
    batch_size: int = 64  # images per step of the source model
    retrain_epochs: int = 3  # importance-weighted retraining of the head (features frozen)
    arch: str = "lenet"  # the source model (`tlcourse.library.models.build_classifier`)


#: The budget notebooks use while nbgrader grades; its ranges are ``[label-shift.grading_ranges]``.
GRADING_CONFIG = LabelShiftConfig(n_train=3_000, n_val=1_000, epochs=2, draws=5)


def notebook_config() -> LabelShiftConfig:
    """The notebook's budget: `GRADING_CONFIG` while nbgrader grades, else the command line's."""
    return GRADING_CONFIG if autograding() else LabelShiftConfig()


def target_priors(num_classes: int, seed: int, draws: int) -> dict[str, list[Tensor]]:
    """The chapter's shifts: ``draws`` priors from Dirichlet(0.1), (1), (10), and one class at 0.5."""
    priors = {
        f"alpha{a:g}": [dirichlet_prior(num_classes, a, seed=1000 * seed + 100 * i + d) for d in range(draws)]
        for i, a in enumerate((0.1, 1.0, 10.0))
    }
    priors["one_class"] = [one_class_prior(num_classes, (seed + d) % num_classes, 0.5) for d in range(draws)]
    return priors


def target_indices(labels: Tensor, classes: tuple[str, ...], prior: Tensor, n: int, seed: int) -> Tensor:
    """Positions of ``n`` images of a pool with these ``labels`` whose classes follow ``prior``.

    `resample_to_prior` draws images; here the "images" are the positions themselves, so the source
    model's outputs on the whole pool are computed once and every target just indexes them.
    """
    positions = Domain("pool", torch.arange(len(labels), dtype=torch.float32).view(-1, 1, 1, 1), labels, classes)
    return resample_to_prior(positions, prior, n=n, seed=seed).x.flatten().long()


def retrain_head(
    model, features: Tensor, labels: Tensor, weights: Tensor, *, epochs: int, lr: float, batch_size: int, seed: int
) -> torch.nn.Module:
    """A copy of the model's head trained further on source features with importance-weighted CE."""
    head = copy.deepcopy(model.head)
    fit(
        head,
        (features, labels),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        loss_fn=importance_weighted_cross_entropy(weights),
        device=features.device,
        seed=seed,
        progress=False,
    )
    return head.eval()


def estimate_weights(
    val_logits: Tensor, val_labels: Tensor, target_logits: Tensor, p: Tensor, calibrations: dict
) -> dict[str, Tensor]:
    """Importance weights ``(K,)`` from every estimator of the chapter, for one target."""
    raw_val, raw_target = val_logits.double().softmax(1), target_logits.double().softmax(1)
    weights = {
        "bbse": estimate_label_shift_bbse(raw_val, val_labels, raw_target),
        "bbse_soft": estimate_label_shift_bbse(raw_val, val_labels, raw_target, soft=True),
        "em": em_prior_adjustment(raw_target, p)[0] / p,
        "em_ts": em_prior_adjustment(calibrations["ts"](target_logits), p)[0] / p,
        "em_calibrated": em_prior_adjustment(calibrations["bcts"](target_logits), p)[0] / p,
    }
    return weights


@dataclass
class LabelShiftSetup:
    """What every estimator needs, computed once per seed: the source model and its outputs.

    Attributes:
        model, history: the source LeNet and its training history.
        train, val: the source training split and the labelled source validation split.
        pool: the Fashion-MNIST test set that every target is drawn from.
        p: the source class prior ``(K,)``.
        val_logits ``(n_val, K)``, pool_logits ``(N_pool, K)``, pool_features, train_features: outputs.
        calibrations: ``{"ts": temperature scaling, "bcts": BCTS}``, fitted on the validation split.
    """

    model: torch.nn.Module
    history: object
    train: Domain
    val: Domain
    pool: Domain
    p: Tensor
    val_logits: Tensor
    pool_logits: Tensor
    pool_features: Tensor
    train_features: Tensor
    calibrations: dict


def prepare_label_shift(seed: int, config: LabelShiftConfig, progress: bool = True) -> LabelShiftSetup:
    """Train the source model (the only expensive step) and compute every output the chapter reuses."""
    seed_row(seed)
    source = load_fashion_mnist("train").take(config.n_train + config.n_val, seed=seed).to_rgb()
    train, val = source.split(config.n_train / (config.n_train + config.n_val), seed=seed)
    pool = load_fashion_mnist("test").to_rgb()
    model = build_classifier(config.arch, num_classes=source.num_classes)
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
    model.eval()
    val_logits, pool_features = predict(model, val.x), extract_features(model, pool.x)
    with torch.no_grad():
        pool_logits = model.head(pool_features)
    calibrations = {"ts": fit_temperature(val_logits, val.y), "bcts": fit_bcts(val_logits, val.y)}
    return LabelShiftSetup(
        model,
        history,
        train,
        val,
        pool,
        source_prior(train.y, train.num_classes),
        val_logits,
        pool_logits,
        pool_features,
        extract_features(model, train.x),
        calibrations,
    )


@register("label-shift")
def run_label_shift(seed: int = 0, config: LabelShiftConfig | None = None, progress: bool = True) -> ExperimentResult:
    config = config or LabelShiftConfig()
    start = time.perf_counter()
    setup = prepare_label_shift(seed, config, progress)
    model, history, train, val, pool, p = setup.model, setup.history, setup.train, setup.val, setup.pool, setup.p
    val_logits, pool_logits, pool_features = setup.val_logits, setup.pool_logits, setup.pool_features
    train_features, calibrations = setup.train_features, setup.calibrations

    per_shift: dict[str, dict[str, list[float]]] = {}
    for shift, priors in target_priors(pool.num_classes, seed, config.draws).items():
        scores: dict[str, list[float]] = {}
        for d, q in enumerate(priors):
            idx = target_indices(pool.y, pool.classes, q, config.n_target, seed=1000 * seed + d)
            logits, labels = pool_logits[idx], pool.y[idx]
            w_true = true_weights(q, p)
            calibrated = calibrations["bcts"](logits)

            def record(name: str, probs: Tensor, labels: Tensor = labels, scores: dict = scores) -> None:
                scores.setdefault(name, []).append((probs.argmax(1) == labels).double().mean().item())

            record("unadapted", logits)
            record("oracle", reweight_posteriors(calibrated, w_true))
            for name, w in estimate_weights(val_logits, val.y, logits, p, calibrations).items():
                record(name, reweight_posteriors(calibrated, w))
                scores.setdefault(f"{name}_weight_mse", []).append(weight_squared_error(w, w_true))
                if name == "em_calibrated" and shift == "alpha0.1":
                    head = retrain_head(
                        model,
                        train_features,
                        train.y,
                        w,
                        epochs=config.retrain_epochs,
                        lr=config.lr,
                        batch_size=256,
                        seed=seed + d,
                    )
                    with torch.no_grad():
                        record("iw_retrain", head(pool_features[idx]))
        per_shift[shift] = {k: v for k, v in scores.items()}

    mean = {shift: {k: sum(v) / len(v) for k, v in s.items()} for shift, s in per_shift.items()}
    main = mean["alpha0.1"]
    results: dict[str, float] = {name: main[name] for name in ("unadapted", *ESTIMATORS, "iw_retrain", "oracle")}
    results.update({f"{name}_weight_mse": main[f"{name}_weight_mse"] for name in ESTIMATORS})
    for shift in SHIFTS[1:]:
        results.update({f"{name}_{shift}": mean[shift][name] for name in ("unadapted", "bbse", "em_calibrated")})

    table: list[tuple[str, dict[str, float | str]]] = []
    for name in ("unadapted", *ESTIMATORS, "iw_retrain", "oracle"):
        row: dict[str, float | str] = {f"{s} acc %": 100 * mean[s][name] if name in mean[s] else "" for s in SHIFTS}
        row["gain α=0.1"] = 100 * (main[name] - main["unadapted"])
        row["weight MSE α=0.1"] = main.get(f"{name}_weight_mse", "")
        table.append((name, row))
    return ExperimentResult(
        experiment="label-shift",
        seed=seed,
        results=results,
        seconds=time.perf_counter() - start,
        table=table,
        details={
            "model": model,
            "history": history,
            "config": asdict(config),
            "per_shift": per_shift,
            "calibrations": calibrations,
            "source_prior": p,
        },
    )
