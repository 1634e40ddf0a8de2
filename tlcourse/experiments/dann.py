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
(the same augmentation, `tlcourse.library.methods.boundary.colour_and_shift`), which shows what that prior
about the shift is worth without any target image; and ``self_training``, which starts from that
control's model and self-trains on the target with FixMatch consistency (`FixMatch`), as DIRT-T
refines VADA: what the unlabelled target adds to the prior.

Selection: every number comes from a **fixed budget** (the config below, the papers' hyperparameters),
the last epoch's model; no epoch, checkpoint or hyperparameter is chosen with target labels, with two
stated exceptions: the augmentation of ``fixmatch`` was picked among three, and the two-phase design
of ``self_training`` among three ways to add FixMatch to the recoloured source, on development seed 100,
reading its target labels (`DANNConfig`); the calibration seeds were never used to choose. The source
validation accuracy is reported next to each row.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from tlcourse.library.data import Domain, load_fashion_mnist, load_uci_digits, make_target, render_font_digits
from tlcourse.experiments import ExperimentResult, register
from tlcourse.library.methods import DANN, DIRTT, VADA, EntropyMinimization, FixMatch, FixMatchDANN, Method, SourceOnly
from tlcourse.library.modules import colour_and_shift
from tlcourse.library.models import FeatureClassifier, build_classifier
from tlcourse.library.train import History, evaluate, fit, fit_method, seed_everything

TASKS = ("photo-blend", "font-digits")
#: ``--profile offline`` (the default: the embedded data above) or ``full`` (the real benchmarks, `FULL_TASKS`).
PROFILES = ("offline", "full")

#: The rows of the chapter's table, in order; ``target_only`` is an oracle (it sees target labels).
METHODS = ("source_only", "dann", "target_only", "entropy_min", "vada", "dirt_t", "fixmatch", "source_augment",
           "self_training")
#: Two-phase rows and the row whose model their second phase refines (the same seed trains the same model).
FIRST_PHASE = {"dirt_t": "vada", "self_training": "source_augment"}

#: DANN paper, ICML 2015, Table 1, MNIST -> MNIST-M (accuracy, %), shown beside the photo-blend task.
PAPER_MNIST_M = {"source_only": 57.49, "dann": 81.49, "target_only": 98.91}
#: The same paper's Syn Numbers -> SVHN row, the analog of the font-digits task.
PAPER_SYN_SVHN = {"source_only": 86.65, "dann": 90.48, "target_only": 92.44}
#: VADA and DIRT-T (Shu et al., ICLR 2018, Table 1), MNIST -> MNIST-M, with instance-normalised inputs.
PAPER_MNIST_M_BOUNDARY = {"vada": 95.7, "dirt_t": 98.9}
#: DANN paper, ICML 2015, Table 1, SVHN -> MNIST.
PAPER_SVHN_MNIST = {"source_only": 54.90, "dann": 73.85, "target_only": 99.42}
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
    "mnist-mnistm": BenchmarkPair("mnist", "mnist-m", PAPER_MNIST_M | PAPER_MNIST_M_BOUNDARY,
                                  "DANN ICML'15 MNIST->MNIST-M %"),
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


@dataclass(frozen=True)
class DANNConfig:
    """The chapter's budget and hyperparameters, with the rule that chose each.

    Fixed in advance (the papers', not tuned): the DANN lambda schedule (gamma 10) up to
    ``lambda_max = 1``, the paper's learning-rate annealing, the paper's MNIST domain classifier
    (fc 100 -> 1), LeNet, half source and half target in each batch, entropy weight 0.1 and VAT radius 1.

    Chosen on a development seed (100, never the calibration seeds 0-4), by source validation
    accuracy and the domain classifier's accuracy, never by target labels (issue 4):

    * ``input_norm = "instance"``: each image is standardised per channel (`InstanceStandardize`), as
      VADA and DIRT-T do for MNIST -> MNIST-M. At 3 epochs it raised DANN's source validation accuracy
      from 76% to 83% (source only: 84% -> 87%): the grey source and the colour target then no longer
      differ in mere brightness and contrast per channel.
    * ``arch = "lenet_bn"``: the paper's LeNet with batch norm after each hidden layer, and each domain
      sent through it in its own batch (`tlcourse.library.methods.dann.DANN.adversarial_losses`), so that
      batch norm standardises every domain with its own statistics while training, as Shu et al.'s
      VADA networks do. At 5 epochs on seed 100, DANN's domain classifier ended at 56% (chance: 50%)
      against 79% for the plain LeNet, at an equal source validation accuracy (86.7% against 85.8%).
      That unsupervised signal chose it. We also read that development seed's target accuracy:
      source only 38.4% (batch norm alone does not help), DANN 41.4% with both domains in one batch
      (domain classifier 61%), 50.8% with one batch per domain.
    * ``epochs = 5`` (780 steps): as many as the 5-minute budget of a run allows. DANN's source
      validation accuracy rose from 83% (3 epochs) to 86% (6) and 88% (10); the longer run did not fit.
      Measured later, with seed 100's target labels, and not used to choose: at four times the budget
      (20 epochs for source only, DANN and the oracle) DANN closes 35% of the gap (39.5%, 53.0%, 78.3%),
      against 31% at 5 epochs. On a digit analog of MNIST -> MNIST-M (font digits -> their photo blend,
      seeds 100-102) it closes 29% at 5 epochs and 44% at 20. Not the photos: blending with seven
      natural photos instead of scikit-learn's two (five more from scikit-image's sample data, nearer
      MNIST-M's 500 from BSDS500) lowered source only (by 3.7-7.1 points) and DANN, but left DANN's
      share of the gap where it was (27% against 26%, seeds 100-102, 5 epochs). The budget: at the
      scale of DESIGN.md's prototype (29,000 source and 29,000 target images, seeds 100-102) DANN
      closes 36% of the gap at 15 epochs (42, 28, 39%; about 15 minutes of one core for the three
      rows) and 46% at 30 epochs (49, 43, 44%; 43.4%, 61.2%, 82.3% on average; about 29 minutes). So
      most of the distance to the paper's 58% is the short budget, set by the 5-minute run above.
      Those two points chose the long budget (`long_config`, ``reproduce dann-long``): 60 epochs at
      that scale, 35 times this budget. On the calibration seeds 0-4, never run at that scale before,
      it gave 43.6%, 63.6%, 82.2%: DANN closes 52% of the gap (44 to 58% a seed; 49.5% over seeds
      0-2 alone), for 36 minutes to an hour of one core a seed (`run_dann_long`).
    * ``lr = 1e-3`` with Adam: 3e-3 lowered DANN's source validation accuracy (85.8% -> 84.6% at 6 epochs,
      though the domain classifier fell from 78% to 70%);
      SGD (lr 0.01, momentum 0.9, the paper's) gave 84.8%; ``lambda_max = 2`` gave 84.0% with the
      domain classifier no nearer chance (77% against 78%); a wider domain classifier (500, 500) gave
      86.8% with the domain classifier at 80%. None was a gain on both signals, so the papers' values stay.
    * ``source_vat = 0`` (VAT on the target only) and ``dirt_t_epochs = 1``: cost, not accuracy. VAT
      costs three extra passes per batch and per domain; on the source, whose labels already pin the
      boundary, it is the paper's optional term (``lambda_s``). This keeps VADA at about 2.5 times a
      DANN step, and the whole run near 5 minutes.

    * ``confidence = 0.95``, ``consistency_weight = 1`` (FixMatch's threshold and ``lambda_u``), not tuned.
      The strong augmentation of ``fixmatch`` and ``source_augment`` is `colour_and_shift`, chapter 5's
      colour randomisation: prior knowledge of the shift (the photo blend recolours and flips contrast),
      stated, not learnt. It was chosen over two others on development seed 100 **with that seed's
      target labels**, which the calibration seeds never saw: torchvision's RandAugment (FixMatch's own;
      it has no inversion) gave 50.4%, a shift with random channel gains 56.2%, `colour_and_shift` 65.1%
      (DANN 48.4%). The ``source_augment`` row is there to show what the prior is worth on its own.
    * ``self_training_epochs = 2``: FixMatch self-training after ``source_augment``'s training, set before
      any run and not tuned. The two-phase design was chosen on development seed 100 **with its target
      labels**, against two joint ones at the same first budget: DANN + FixMatch with recoloured source
      images too (AdaMatch's recipe, 70.9%), FixMatch with recoloured source images and no domain
      classifier (72.6%), and the two-phase one (74.6%); the control ``source_augment`` gave 70.2% there.

    Cost: about 460 s of one CPU core for a whole ``reproduce dann`` run (seeds 0-4, ``OMP_NUM_THREADS=1``,
    two runs side by side on the 2 cores), VADA the slowest row (about 115 s), FixMatch about 75 s,
    ``self_training`` about 30 s on top of ``source_augment``'s model.

    Outcome (seeds 0-4, ``[dann]`` in ``expected.toml``): on the photo blend DANN beats source only on
    every seed (49.7% against 41.5%, 22% of the gap to the target-only oracle closed; the paper closed
    58%; 52% at 35 times the budget, ``[dann-long]``), DANN + entropy likewise (25%), DANN + FixMatch
    beats DANN on every seed (64.7%, 63%), and the control ``source_augment`` (no target image) reaches
    66.0% (67%), and ``self_training`` 73.1% (87%), beating that control on every seed (+3.9 to +9.7
    points). On font digits the boundary methods close 57-65% of the gap, recolouring alone nothing,
    and ``self_training`` 62%.
    """

    task: str = "photo-blend"
    n_source: int = 10_000
    n_target: int = 10_000  # unlabelled target training images (photo-blend; font-digits uses its UCI split)
    n_val: int = 1_000  # labelled source validation images
    n_test: int = 2_000  # target test images
    epochs: int = 5
    batch_size: int = 64  # source images per step; as many target images go with them
    lr: float = 1e-3
    optimizer: str = "adam"
    discriminator_hidden: tuple[int, ...] = (100,)
    arch: str = "lenet_bn"  # LeNet with batch norm, each domain normalised with its own batch statistics
    input_norm: str | None = "instance"  # per-image standardisation, see above
    lambda_max: float = 1.0
    entropy_weight: float = 0.1
    vat_radius: float = 1.0
    source_vat: float = 0.0  # VAT on the target only
    dirt_t_epochs: int = 1
    self_training_epochs: int = 2  # FixMatch epochs after source_augment's (fixed before any run)
    confidence: float = 0.95  # FixMatch's threshold for a target prediction to become a label
    consistency_weight: float = 1.0  # FixMatch's lambda_u
    methods: tuple[str, ...] = METHODS


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
    target_test = make_target(load_fashion_mnist("test").take(config.n_test, seed=seed), "photo_blend", seed=seed + 10_000)
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
    budget = dict(task=task, n_source=1_000_000, n_target=1_000_000, n_val=1_000, n_test=1_000_000, epochs=20,
                  discriminator_hidden=FULL_TASKS[task].discriminator_hidden)
    return replace(DANNConfig(), **(budget | overrides))


#: The rows of ``reproduce dann-long``: the paper's table.
LONG_METHODS = ("source_only", "dann", "target_only")


def long_config(**overrides) -> DANNConfig:
    """``reproduce dann-long``: the paper's three rows on the photo blend, at DESIGN.md's prototype scale.

    29,000 source and 29,000 target images (with the 1,000 validation images, almost all of Fashion-MNIST's
    60,000 training images) and 60 epochs: 27,180 steps, 35 times the 780 of the 5-minute budget
    (`DANNConfig`). Everything else is `DANNConfig`'s. How the budget was chosen is in `DANNConfig`'s
    ``epochs`` entry: development seeds 100-102, their target labels read at 15 and 30 epochs; seeds 0-4,
    which measured ``[dann-long]`` in ``expected.toml``, had never been run at this scale.
    """
    return replace(DANNConfig(), **(dict(n_source=29_000, n_target=29_000, epochs=60, methods=LONG_METHODS)
                                    | overrides))


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
    """A fresh model and the method that trains it, with the config's hyperparameters."""
    model = build_classifier(config.arch, num_classes=num_classes, input_norm=config.input_norm)
    if name == "source_only":
        return SourceOnly(model, lr=config.lr)
    if name in ("source_augment", "self_training"):  # self_training's first phase
        return SourceOnly(model, lr=config.lr, augment=colour_and_shift)
    adversarial = dict(lr=config.lr, lambda_max=config.lambda_max, optimizer=config.optimizer,
                       discriminator_hidden=config.discriminator_hidden)
    if name == "dann":
        return DANN(model, **adversarial)
    if name == "entropy_min":
        return EntropyMinimization(model, entropy_weight=config.entropy_weight, **adversarial)
    if name in ("vada", "dirt_t"):
        return VADA(model, target_weight=config.entropy_weight, source_vat=config.source_vat,
                    radius=config.vat_radius, **adversarial)
    if name == "fixmatch":
        return FixMatchDANN(model, threshold=config.confidence, consistency_weight=config.consistency_weight,
                            **adversarial)
    raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(METHODS)}.")


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
    name: str, task: DANNTask, config: DANNConfig, seed: int, progress: bool = False,
    first_phase: tuple[Method, History] | None = None,
) -> tuple[torch.nn.Module, History]:
    """Train one row of the table from a fresh, seeded model; returns the trained model and its history.

    The two-phase rows (`FIRST_PHASE`) start with another row's training: ``dirt_t`` refines VADA,
    ``self_training`` refines ``source_augment``. Pass ``first_phase=(method, history)`` from this
    seed's run of that row to refine a copy of it instead of training it again (the same seed gives
    the same model).
    """
    seed_everything(seed)
    if name == "target_only":
        model = build_classifier(config.arch, num_classes=task.source.num_classes, input_norm=config.input_norm)
        history = fit(model, task.target_train, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                      seed=seed, progress=progress, desc="target_only (oracle)")
        return model, history
    kwargs = dict(batch_size=config.batch_size, val=task.source_val, seed=seed, progress=progress)
    if name in FIRST_PHASE and first_phase is not None:
        method, history = copy.deepcopy(first_phase[0]), first_phase[1]
    else:
        method = build_method(name, config, task.source.num_classes)
        history = fit_method(method, task.source, task.target_train.x, epochs=config.epochs, desc=name, **kwargs)
    if name in FIRST_PHASE:
        seed_everything(seed)  # phase 2 draws the same random numbers whether phase 1 was trained here or reused
    if name == "dirt_t":
        # Phase 2: refine VADA's classifier on the target alone (the source batch is ignored).
        refine = DIRTT(method.model, lr=config.lr, radius=config.vat_radius)
        more = fit_method(refine, task.source, task.target_train.x, epochs=config.dirt_t_epochs, desc="dirt_t", **kwargs)
        history = History(history.records + more.records)
        method = refine
    if name == "self_training":
        # Phase 2: FixMatch on the target from the recoloured-source model, source labels kept.
        refine = FixMatch(method.model, lr=config.lr, threshold=config.confidence,
                          consistency_weight=config.consistency_weight, augment=colour_and_shift)
        more = fit_method(refine, task.source, task.target_train.x, epochs=config.self_training_epochs,
                          desc="self_training", **kwargs)
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
    its own (``[dann-long]``): 36 minutes of one CPU core a seed on the machine that measured it (DANN 18,
    source only and the oracle 9 each). That machine was a fast one: it ran ``make course`` in 265 s,
    where the README's runs took 403 to 454 s, and the same rows at 15 and 30 epochs took 1.6 to 1.9
    times as long per epoch on the slower one. Allow an hour a seed there."""
    result = run_dann(seed, config or long_config(), progress)
    result.experiment = "dann-long"
    return result


@register("dann")
def run_dann(
    seed: int = 0, config: DANNConfig | None = None, progress: bool = True, task: str | None = None,
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
