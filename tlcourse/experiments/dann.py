"""Chapter 3: domain-adversarial training (DANN), and keeping target points away from the boundary.

The DANN paper's Table 1 on our offline data, for two task pairs:

* ``photo-blend`` (default): Fashion-MNIST -> its MNIST-M-style photo blend, the MNIST -> MNIST-M recipe;
* ``font-digits``: digits rendered from fonts -> the UCI handwritten digits, the Syn Numbers analog.

``reproduce dann-long`` runs the paper's three rows on the photo blend at 35 times the budget (`long_config`).

Rows: ``source_only`` (train on the source), ``dann``, ``target_only`` (an **oracle** trained on target
labels: the ceiling, not a method), then the boundary methods ``entropy_min`` (DANN + target entropy),
``vada`` (DANN + target entropy + VAT), ``dirt_t`` (VADA refined on the target with a teacher) and
``fixmatch`` (DANN + FixMatch consistency: confident target predictions label recoloured copies), and
a control that adapts nothing: ``source_augment``, source only trained on recoloured source images
(the same augmentation, `tlcourse.library.modules.colour_and_shift`), which shows what that prior
about the shift is worth without any target image; and ``self_training``, which starts from that
control's model and self-trains on the target with FixMatch consistency (`FixMatch`), as DIRT-T
refines VADA: what the unlabelled target adds to the prior. Two more ways to align: ``mcd`` (maximum
classifier discrepancy: two heads that disagree on the target, features that make them agree) and
``dan`` (source cross-entropy plus chapter 1's MMD, multi-kernel and in linear time, on the features).

Selection: every number comes from a **fixed budget** (`DANNConfig`, the papers' hyperparameters),
the last epoch's model; no epoch, checkpoint or hyperparameter is chosen with target labels, with two
stated exceptions: the augmentation of ``fixmatch`` was picked among three, and the two-phase design
of ``self_training`` among three ways to add FixMatch to the recoloured source, on development seed 100,
reading its target labels; the calibration seeds were never used to choose. The source validation
accuracy is reported next to each row. What was tried, and why each value was chosen:
``docs/decisions/dann.md``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from tlcourse.experiments.expected import profile
from tlcourse.experiments.registry import register, seed_row
from tlcourse.experiments.results import ExperimentResult
from tlcourse.library.data import Domain, load_fashion_mnist, load_uci_digits, make_target, render_font_digits
from tlcourse.library.methods import (
    DAN,
    DANN,
    DIRTT,
    MCD,
    VADA,
    EntropyMinimization,
    FixMatch,
    FixMatchDANN,
    Method,
    SourceOnly,
)
from tlcourse.library.models import FeatureClassifier, build_classifier
from tlcourse.library.modules import colour_and_shift
from tlcourse.library.train import History, evaluate, fit, fit_method

TASKS = ("photo-blend", "font-digits")
#: ``--profile offline`` (the default: the embedded data above) or ``full`` (the real benchmarks, `FULL_TASKS`).
PROFILES = ("offline", "full")


#: DANN paper, ICML 2015, Table 1, MNIST -> MNIST-M (accuracy, %), shown beside the photo-blend task.
PAPER_MNIST_M = {"source_only": 57.49, "dann": 81.49, "target_only": 98.91}
#: The same paper's Syn Numbers -> SVHN row, the analog of the font-digits task.
PAPER_SYN_SVHN = {"source_only": 86.65, "dann": 90.48, "target_only": 92.44}
#: VADA and DIRT-T (Shu et al., ICLR 2018, Table 1), MNIST -> MNIST-M, with instance-normalised inputs.
PAPER_MNIST_M_BOUNDARY = {"vada": 95.7, "dirt_t": 98.9}
#: DANN paper, ICML 2015, Table 1, SVHN -> MNIST.
PAPER_SVHN_MNIST = {"source_only": 54.90, "dann": 73.85, "target_only": 99.42}
#: DANN paper, ICML 2015, Table 1, Syn Signs -> GTSRB (no loader here: shown in the notebook's paper table only).
PAPER_SYN_SIGNS_GTSRB = {"source_only": 79.00, "dann": 88.66, "target_only": 99.80}
#: ADDA (Tzeng et al., CVPR 2017, Table 2): source only and "gradient reversal" (DANN) on MNIST <-> USPS
#: (their protocol: 2,000 MNIST and 1,800 USPS training images; no target-only row).
PAPER_MNIST_USPS = {"source_only": 75.2, "dann": 77.1}
PAPER_USPS_MNIST = {"source_only": 57.1, "dann": 73.0}


@dataclass(frozen=True)
class BenchmarkPair:
    """A ``--profile full`` task: two real benchmarks (`tlcourse.library.data.BENCHMARKS` names) and the paper's row."""

    source: str
    target: str
    paper: dict[str, float]
    paper_title: str
    discriminator_hidden: tuple[int, ...] = (100,)  # the paper's: (1024, 1024) for SVHN


#: The papers' digit tasks on the real data (``python -m tlcourse data fetch NAME`` first). The images
#: are read in the course's format (28x28 RGB), so one network serves every task.
FULL_TASKS: dict[str, BenchmarkPair] = {
    "mnist-mnistm": BenchmarkPair(
        "mnist", "mnist-m", PAPER_MNIST_M | PAPER_MNIST_M_BOUNDARY, "DANN ICML'15 MNIST->MNIST-M %"
    ),
    "syn-svhn": BenchmarkPair("syn-numbers", "svhn", PAPER_SYN_SVHN, "DANN ICML'15 Syn->SVHN %", (1024, 1024)),
    "svhn-mnist": BenchmarkPair("svhn", "mnist", PAPER_SVHN_MNIST, "DANN ICML'15 SVHN->MNIST %", (1024, 1024)),
    "mnist-usps": BenchmarkPair("mnist", "usps", PAPER_MNIST_USPS, "ADDA CVPR'17 MNIST->USPS %"),
    "usps-mnist": BenchmarkPair("usps", "mnist", PAPER_USPS_MNIST, "ADDA CVPR'17 USPS->MNIST %"),
}


@dataclass(frozen=True)
class DANNTask:
    """One transfer task: labelled source (train, validation), target train (its labels are used only by
    the ``target_only`` oracle) and a disjoint target test set."""

    name: str
    source: Domain
    source_val: Domain
    target_train: Domain
    target_test: Domain


# ------------------------------------------------------------------------------------------ the rows
def _source_only(model: FeatureClassifier, config: DANNConfig) -> Method:
    return SourceOnly(model, lr=config.lr)


def _source_augment(model: FeatureClassifier, config: DANNConfig) -> Method:
    return SourceOnly(model, lr=config.lr, augment=colour_and_shift)


def _adversarial(config: DANNConfig) -> dict:
    """The hyperparameters every domain-adversarial row shares."""
    return dict(
        lr=config.lr,
        lambda_max=config.lambda_max,
        optimizer=config.optimizer,
        discriminator_hidden=config.discriminator_hidden,
    )


def _dann(model: FeatureClassifier, config: DANNConfig) -> Method:
    return DANN(model, betas=config.dann_betas, **_adversarial(config))


def _entropy_min(model: FeatureClassifier, config: DANNConfig) -> Method:
    return EntropyMinimization(model, entropy_weight=config.entropy_weight, **_adversarial(config))


def _vada(model: FeatureClassifier, config: DANNConfig) -> Method:
    return VADA(
        model,
        target_weight=config.entropy_weight,
        source_vat=config.source_vat,
        radius=config.vat_radius,
        **_adversarial(config),
    )


def _fixmatch(model: FeatureClassifier, config: DANNConfig) -> Method:
    return FixMatchDANN(
        model, threshold=config.confidence, consistency_weight=config.consistency_weight, **_adversarial(config)
    )


def _mcd(model: FeatureClassifier, config: DANNConfig) -> Method:
    return MCD(model, lr=config.lr, num_k=config.mcd_num_k)


def _dan(model: FeatureClassifier, config: DANNConfig) -> Method:
    return DAN(model, lr=config.lr, mmd_weight=config.mmd_weight)


#: The oracle row: a plain classifier trained by `fit` on the target's labels (the ceiling, not a method).
ORACLE = "target_only"

#: The rows of the chapter's table, in order: ``{row: factory(model, config) -> Method}`` for the row's
#: (first) training phase. ``target_only`` is the oracle (`ORACLE`: no method, it sees target labels);
#: ``dirt_t`` and ``self_training`` start as their first phase's row (`FIRST_PHASE`), then `SECOND_PHASE`.
METHODS: dict[str, Callable[[FeatureClassifier, DANNConfig], Method] | None] = {
    "source_only": _source_only,
    "dann": _dann,
    ORACLE: None,
    "entropy_min": _entropy_min,
    "vada": _vada,
    "dirt_t": _vada,
    "fixmatch": _fixmatch,
    "source_augment": _source_augment,
    "self_training": _source_augment,
    "mcd": _mcd,
    "dan": _dan,
}

#: Two-phase rows and the row whose model their second phase refines (the same seed trains the same model).
FIRST_PHASE = {"dirt_t": "vada", "self_training": "source_augment"}


def _dirt_t(model: FeatureClassifier, config: DANNConfig) -> tuple[Method, int]:
    # Refine VADA's classifier on the target alone (the source batch is ignored).
    return DIRTT(model, lr=config.lr, radius=config.vat_radius), config.dirt_t_epochs


def _self_training(model: FeatureClassifier, config: DANNConfig) -> tuple[Method, int]:
    # FixMatch on the target from the recoloured-source model, source labels kept.
    refine = FixMatch(
        model,
        lr=config.lr,
        threshold=config.confidence,
        consistency_weight=config.consistency_weight,
        augment=colour_and_shift,
    )
    return refine, config.self_training_epochs


#: The second phase of each two-phase row: ``factory(first phase's model, config) -> (method, epochs)``.
SECOND_PHASE: dict[str, Callable[[FeatureClassifier, DANNConfig], tuple[Method, int]]] = {
    "dirt_t": _dirt_t,
    "self_training": _self_training,
}


@dataclass(frozen=True)
class DANNConfig:
    """The chapter's budget and hyperparameters: the papers' values where they exist, the rest chosen on
    development seed 100 (never on the calibration seeds 0-4) by source validation accuracy and the domain
    classifier's accuracy, never by target labels but for the two exceptions of the module's docstring.
    What was tried for each value, with the measurements behind it: ``docs/decisions/dann.md``.
    """

    task: str = "photo-blend"  # one of `TASKS` (offline), or of `FULL_TASKS` with ``--profile full``
    n_source: int = 10_000  # labelled source training images
    n_target: int = 10_000  # unlabelled target training images (photo-blend; font-digits uses its UCI split)
    n_val: int = 1_000  # labelled source validation images
    n_test: int = 2_000  # target test images
    epochs: int = 5  # training epochs of every row (first phase of the two-phase rows)
    batch_size: int = 64  # source images per step; as many target images go with them
    lr: float = 1e-3  # learning rate of every row
    optimizer: str = "adam"  # the domain-adversarial rows': ``"adam"`` or ``"sgd"`` (the paper's)
    dann_betas: tuple[float, float] = (0.5, 0.999)  # Adam's betas of the dann row (the others keep (0.9, 0.999))
    discriminator_hidden: tuple[int, ...] = (100,)  # hidden widths of the domain classifier (the paper's MNIST one)
    arch: str = "lenet_bn"  # LeNet with batch norm, each domain normalised with its own batch statistics
    input_norm: str | None = "instance"  # per-image, per-channel standardisation (`InstanceStandardize`)
    lambda_max: float = 1.0  # the largest weight of the reversed domain gradient (the paper's schedule)
    entropy_weight: float = 0.1  # weight of the target entropy (entropy_min, VADA)
    vat_radius: float = 1.0  # VAT's perturbation radius (VADA, DIRT-T)
    source_vat: float = 0.0  # weight of VAT on the source (0: VAT on the target only)
    dirt_t_epochs: int = 1  # DIRT-T's epochs after VADA's
    self_training_epochs: int = 2  # FixMatch epochs after source_augment's (fixed before any run)
    confidence: float = 0.95  # FixMatch's threshold for a target prediction to become a label
    consistency_weight: float = 1.0  # FixMatch's lambda_u
    mcd_num_k: int = 1  # MCD's step-C updates per batch (the paper's code: 4): 1 keeps the row near 2 DANN rows
    mmd_weight: float = 1.0  # DAN's final MMD weight, on DANN's lambda schedule (not tuned)
    methods: tuple[str, ...] = tuple(METHODS)  # the rows to train, in table order (keys of `METHODS`)


def make_photo_blend_task(seed: int, config: DANNConfig = DANNConfig()) -> DANNTask:
    """Fashion-MNIST -> Fashion-MNIST photo blend, from disjoint images.

    Source train, source validation and target train are disjoint sets of Fashion-MNIST *training*
    images; the target train set is photo-blended. The target test set is the photo blend of
    Fashion-MNIST *test* images, so no target test image (nor its garment) is ever seen in training.
    """
    train = load_fashion_mnist("train")
    need = config.n_source + config.n_val + config.n_target
    if need > len(train):
        raise ValueError(f"n_source + n_val + n_target = {need} is more than the {len(train)} training images.")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    cuts = [config.n_source, config.n_source + config.n_val, need]
    source = train.subset(order[: cuts[0]]).to_rgb()
    source_val = train.subset(order[cuts[0] : cuts[1]]).to_rgb()
    target_train = make_target(train.subset(order[cuts[1] : cuts[2]]), "photo_blend", seed=seed)
    target_test = make_target(
        load_fashion_mnist("test").take(config.n_test, seed=seed), "photo_blend", seed=seed + 10_000
    )
    return DANNTask("photo-blend", source, source_val, target_train, target_test)


def make_font_digits_task(seed: int, config: DANNConfig = DANNConfig()) -> DANNTask:
    """Digits rendered from fonts -> UCI handwritten digits (the Syn Numbers -> SVHN analog, in reverse
    direction of realism: synthetic source, real target).

    The 1,797 UCI digits are split in half, seeded: target train (unlabelled for adaptation) and target
    test. ``n_target`` and ``n_test`` are capped by that split.
    """
    source_all = render_font_digits(config.n_source + config.n_val, seed=seed)
    source, source_val = source_all.split(config.n_source / len(source_all), seed=seed)
    uci = load_uci_digits().to_rgb()
    target_train, target_test = uci.split(0.5, seed=seed)
    target_train = target_train.take(min(config.n_target, len(target_train)), seed=seed)
    target_test = target_test.take(min(config.n_test, len(target_test)), seed=seed)
    return DANNTask("font-digits", source, source_val, target_train, target_test)


def full_config(task: str = "mnist-mnistm", **overrides) -> DANNConfig:
    """The ``--profile full`` budget for one of `FULL_TASKS`: every image the benchmark has (the ``n_*``
    are upper limits), 20 epochs, the paper's domain classifier for the task. Everything else is the
    offline profile's (`DANNConfig`). It trains on the GPU when there is one (`tlcourse.library.train.choose_device`).
    """
    if task not in FULL_TASKS:
        raise ValueError(f"Unknown full-profile task {task!r}; choose one of {', '.join(FULL_TASKS)}.")
    budget = dict(
        task=task,
        n_source=1_000_000,
        n_target=1_000_000,
        n_val=1_000,
        n_test=1_000_000,
        epochs=20,
        discriminator_hidden=FULL_TASKS[task].discriminator_hidden,
    )
    return replace(DANNConfig(), **(budget | overrides))


#: The rows of ``reproduce dann-long``: the paper's table.
LONG_METHODS = ("source_only", "dann", "target_only")

#: The notebook's budget, smaller than `DANNConfig()`'s: ``[dann.grading_ranges]`` were measured at it.
NOTEBOOK_CONFIG = DANNConfig(n_source=3000, n_target=3000, n_val=500, n_test=1000, epochs=3)


def notebook_config() -> DANNConfig:
    """The notebook's budget: MNIST -> MNIST-M at the paper's size under ``TLCOURSE_PROFILE=full``
    (``python -m tlcourse data fetch mnist`` and ``mnist-m`` first), else `NOTEBOOK_CONFIG`."""
    return full_config("mnist-mnistm") if profile() == "full" else NOTEBOOK_CONFIG


def long_config(**overrides) -> DANNConfig:
    """``reproduce dann-long``: the paper's three rows on the photo blend, at the scale of the paper's MNIST
    task: 29,000 source and 29,000 target images.

    With the 1,000 validation images that is almost all of Fashion-MNIST's 60,000 training images; 60 epochs
    make 27,180 steps, 35 times the 780 of `DANNConfig`'s budget. Everything else is `DANNConfig`'s, but for
    DANN's Adam, which keeps the betas (0.9, 0.999) that ``[dann-long]`` was measured with. How
    this budget was chosen (development seeds 100-102, their target labels read): ``docs/decisions/dann.md``.
    """
    long = dict(n_source=29_000, n_target=29_000, epochs=60, methods=LONG_METHODS, dann_betas=(0.9, 0.999))
    return replace(DANNConfig(), **(long | overrides))


def make_benchmark_task(seed: int, config: DANNConfig) -> DANNTask:
    """A `FULL_TASKS` pair from the real benchmarks: source train minus ``n_val`` validation images, the
    target's train split (its labels only for the oracle) and its test split; ``n_*`` cap each part."""
    from tlcourse.library.data import load_benchmark

    pair = FULL_TASKS[config.task]
    train = load_benchmark(pair.source, "train")
    if len(train) <= config.n_val:
        raise ValueError(f"{pair.source} has {len(train)} training images, not more than n_val = {config.n_val}.")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    n_source = min(config.n_source, len(train) - config.n_val)
    source = train.subset(order[:n_source])
    source_val = train.subset(order[n_source : n_source + config.n_val])
    target_train = load_benchmark(pair.target, "train", limit=config.n_target, seed=seed)
    target_test = load_benchmark(pair.target, "test", limit=config.n_test, seed=seed)
    return DANNTask(config.task, source, source_val, target_train, target_test)


def make_dann_task(seed: int, config: DANNConfig = DANNConfig()) -> DANNTask:
    """The task named by ``config.task`` (one of `TASKS`, or of `FULL_TASKS` for the full profile)."""
    if config.task == "photo-blend":
        return make_photo_blend_task(seed, config)
    if config.task == "font-digits":
        return make_font_digits_task(seed, config)
    if config.task in FULL_TASKS:
        return make_benchmark_task(seed, config)
    raise ValueError(f"Unknown task {config.task!r}; choose one of {', '.join([*TASKS, *FULL_TASKS])}.")


def build_method(name: str, config: DANNConfig, num_classes: int) -> Method:
    """A fresh model and the method that trains it (`METHODS`), with the config's hyperparameters."""
    if METHODS.get(name) is None:
        raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(m for m in METHODS if m != ORACLE)}.")
    model = build_classifier(config.arch, num_classes=num_classes, input_norm=config.input_norm)
    return METHODS[name](model, config)


TOY_CLASSES = ("upper moon", "lower moon")


def make_moons_task(seed: int, n: int = 300, degrees: float = 40.0, noise: float = 0.1) -> tuple[Domain, Domain]:
    """A 2-D toy for pictures of decision boundaries: two moons (source) and the same moons rotated (target).

    Points are stored as ``(N, 2, 1, 1)`` "images", so that every method and `fit_method` take them as
    they are; `toy_classifier` flattens them. The target is rotated by ``degrees`` about the centre of
    the moons, so part of each target moon crosses the source's decision boundary.
    """
    from sklearn.datasets import make_moons

    def domain(name: str, random_state: int, angle: float) -> Domain:
        points, labels = make_moons(n, noise=noise, random_state=random_state)
        rad = torch.deg2rad(torch.tensor(angle, dtype=torch.float64))
        rotation = torch.tensor([[torch.cos(rad), -torch.sin(rad)], [torch.sin(rad), torch.cos(rad)]])
        centre = torch.tensor([0.5, 0.25], dtype=torch.float64)
        xy = (torch.from_numpy(points) - centre) @ rotation.T + centre
        return Domain(name, xy.float().view(n, 2, 1, 1), torch.from_numpy(labels).long(), TOY_CLASSES)

    return domain("moons", seed, 0.0), domain(f"moons rotated {degrees:g}°", seed + 1, degrees)


def toy_classifier(hidden: int = 32) -> FeatureClassifier:
    """A small MLP for the 2-D toy: features 2 -> hidden -> hidden (ReLU), label predictor hidden -> 2."""
    features = nn.Sequential(nn.Flatten(), nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
    return FeatureClassifier(features, nn.Linear(hidden, 2), hidden)


def gap_closed(accuracy: float, source_only: float, target_only: float) -> float:
    """The share of the gap from source-only to the target-only oracle that a method closes:
    ``(acc - acc_source_only) / (acc_target_only - acc_source_only)``."""
    gap = target_only - source_only
    return float("nan") if gap <= 0 else (accuracy - source_only) / gap


def run_method(
    name: str,
    task: DANNTask,
    config: DANNConfig,
    seed: int,
    progress: bool = False,
    first_phase: tuple[Method, History] | None = None,
) -> tuple[torch.nn.Module, History]:
    """Train one row of the table from a fresh, seeded model; returns the trained model and its history.

    The two-phase rows (`FIRST_PHASE`) start with another row's training: ``dirt_t`` refines VADA,
    ``self_training`` refines ``source_augment``. Pass ``first_phase=(method, history)`` from this
    seed's run of that row to refine a copy of it instead of training it again (the same seed gives
    the same model).
    """
    seed_row(seed)
    if name == ORACLE:
        model = build_classifier(config.arch, num_classes=task.source.num_classes, input_norm=config.input_norm)
        history = fit(
            model,
            task.target_train,
            epochs=config.epochs,
            lr=config.lr,
            batch_size=config.batch_size,
            seed=seed,
            progress=progress,
            desc="target_only (oracle)",
        )
        return model, history
    kwargs = dict(batch_size=config.batch_size, val=task.source_val, seed=seed, progress=progress)
    if name in FIRST_PHASE and first_phase is not None:
        method, history = copy.deepcopy(first_phase[0]), first_phase[1]
    else:
        method = build_method(name, config, task.source.num_classes)
        history = fit_method(method, task.source, task.target_train.x, epochs=config.epochs, desc=name, **kwargs)
    if name in SECOND_PHASE:
        seed_row(seed)  # phase 2 draws the same random numbers whether phase 1 was trained here or reused
        refine, epochs = SECOND_PHASE[name](method.model, config)
        more = fit_method(refine, task.source, task.target_train.x, epochs=epochs, desc=name, **kwargs)
        history = History(history.records + more.records)
        method = refine
    return method, history


def experiment_name(task: str) -> str:
    """``"dann"`` for the default task, ``"dann-font-digits"`` for the other: each has its expected ranges."""
    return "dann" if task == TASKS[0] else f"dann-{task}"


@register("dann-font-digits")
def run_dann_font_digits(seed: int = 0, config: DANNConfig | None = None, progress: bool = True) -> ExperimentResult:
    """``reproduce dann --task font-digits`` under its own name, so that its expected ranges have a home."""
    return run_dann(seed, config, progress, task="font-digits")


@register("dann-long", long=True)
def run_dann_long(seed: int = 0, config: DANNConfig | None = None, progress: bool = True) -> ExperimentResult:
    """The paper's table on the photo blend at 35 times the budget (`long_config`), with expected ranges of
    its own (``[dann-long]``). It runs far longer than the other experiments (its measured cost is
    ``[dann-long].machine`` in ``expected.toml``), so ``python -m tlcourse benchmark`` leaves it out."""
    result = run_dann(seed, config or long_config(), progress)
    result.experiment = "dann-long"
    return result


@register("dann")
def run_dann(
    seed: int = 0,
    config: DANNConfig | None = None,
    progress: bool = True,
    task: str | None = None,
    profile: str = "offline",
) -> ExperimentResult:
    """Train every method of the chapter on one task and seed; the results are target test accuracies.

    ``profile="full"`` runs a `FULL_TASKS` pair (default ``mnist-mnistm``) at `full_config`'s budget.
    """
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    if profile == "full":
        if task is not None and task not in FULL_TASKS:
            raise ValueError(f"--profile full runs the real benchmarks: choose --task from {', '.join(FULL_TASKS)}.")
        config = config or full_config(task or "mnist-mnistm")
    elif task is not None and task not in TASKS:
        hint = " (a real benchmark: add --profile full)" if task in FULL_TASKS else ""
        raise ValueError(f"Unknown task {task!r}{hint}; the offline tasks are {', '.join(TASKS)}.")
    config = config or DANNConfig()
    if task is not None:
        config = replace(config, task=task)
    start = time.perf_counter()
    data = make_dann_task(seed, config)
    results: dict[str, float] = {}
    extra: dict[str, dict[str, float]] = {}
    models, histories = {}, {}
    for name in config.methods:
        began = time.perf_counter()
        first = FIRST_PHASE.get(name)
        first_phase = (models[first], histories[first]) if first in models else None
        model, history = run_method(name, data, config, seed, progress, first_phase=first_phase)
        results[name] = evaluate(model, data.target_test)
        extra[name] = {"source_val": evaluate(model, data.source_val), "seconds": time.perf_counter() - began}
        if "domain_acc" in history.last:
            extra[name]["domain_acc"] = history.last["domain_acc"]
        models[name], histories[name] = model, history

    if config.task in FULL_TASKS:
        paper, paper_title = FULL_TASKS[config.task].paper, FULL_TASKS[config.task].paper_title
    elif config.task == "photo-blend":
        paper, paper_title = PAPER_MNIST_M | PAPER_MNIST_M_BOUNDARY, "paper MNIST->MNIST-M %"
    else:
        paper, paper_title = PAPER_SYN_SVHN, "paper Syn->SVHN %"
    table: list[tuple[str, dict[str, float | str]]] = []
    for name in config.methods:
        row: dict[str, float | str] = {"target acc %": 100 * results[name]}
        if "source_only" in results and "target_only" in results:
            row["gap closed %"] = 100 * gap_closed(results[name], results["source_only"], results["target_only"])
        row["source val %"] = 100 * extra[name]["source_val"]
        row["domain acc %"] = 100 * extra[name]["domain_acc"] if "domain_acc" in extra[name] else ""
        row[paper_title] = paper.get(name, "")
        row["s"] = extra[name]["seconds"]
        table.append((f"{name} (oracle)" if name == "target_only" else name, row))

    return ExperimentResult(
        experiment=experiment_name(config.task),
        seed=seed,
        results=results,
        seconds=time.perf_counter() - start,
        table=table,
        details={"config": asdict(config), "task": data, "models": models, "histories": histories, "extra": extra},
    )
