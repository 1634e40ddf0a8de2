"""Chapter 2: fine-tuning. A network trained on a source task with plenty of labels meets a target task
with few: what to freeze, how long and how fast to train, and when transfer hurts.

The main pair: the first five Fashion-MNIST classes (T-shirt .. coat) are the source task, the other
five (sandal .. ankle boot, relabelled 0-4) the target task, both seen through the MNIST-M photo
blend of chapter 1, so that a network must learn to ignore cluttered photo backgrounds: hard from 50
images, easy from 15,000. The farther pair: the same source network, transferred to the UCI
handwritten digits.

Every fine-tuning run here is selected the same honest way: early stopping on a small labelled target
*validation* split (a few images per class, disjoint from the training labels); the target test split
only scores. The hyperparameters (learning rates, L2-SP strength, budgets) were fixed while writing the
chapter on a development split drawn from the target's *training* images, never on the test images
(``docs/decisions/fine-tuning.md``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from tlcourse.experiments import model_cache
from tlcourse.experiments.expected import autograding, profile
from tlcourse.experiments.registry import register, seed_row
from tlcourse.experiments.results import ExperimentResult
from tlcourse.library.data import Domain, load_fashion_mnist, load_uci_digits, photo_blend
from tlcourse.library.methods.fine_tuning import (
    distillation_loss,
    feature_blocks,
    freeze_blocks,
    frozen_copy,
    l2_sp_penalty,
    lwf_loss,
    new_head,
    pretrained_parameters,
    trainable_parameters,
)
from tlcourse.library.metrics import logme, transferability_h_score
from tlcourse.library.models import (
    FeatureClassifier,
    build_classifier,
    count_parameters,
    linear_head,
    resnet_classifier,
)
from tlcourse.library.train import History, evaluate, fit, for_inference, predict

SOURCE_CLASSES = (0, 1, 2, 3, 4)  # T-shirt/top, Trouser, Pullover, Dress, Coat
TARGET_CLASSES = (5, 6, 7, 8, 9)  # Sandal, Shirt, Sneaker, Bag, Ankle boot


@dataclass(frozen=True)
class FineTuningConfig:
    """The chapter's budget. Pretraining (``n_source`` images, ``source_epochs``) is the expensive part:
    every fine-tuning run starts from a copy of the same pretrained weights.

    Fine-tuning runs take at most ``steps`` optimizer steps (``epochs = ceil(steps / batches per
    epoch)``) and stop early when the validation accuracy has not improved for a third of them. Why each
    value: ``docs/decisions/fine-tuning.md``.
    """

    n_source: int = 30_000  # labelled source images: all of classes 0-4 of Fashion-MNIST's training set
    source_epochs: int = 3  # pretraining epochs on the source
    source_lr: float = 1e-3  # pretraining learning rate (Adam)
    n_shuffled: int = 15_000  # source images, labels permuted, of the negative-transfer row
    n_target_pool: int = 8_000  # target training images: labels are drawn from here; the rest is unlabelled
    n_test: int = 2_000  # target test images: they only score
    labels_per_class: int = 10  # the headline budget
    val_per_class: int = 5  # the small labelled target validation split, for early stopping only
    budgets: tuple[int, ...] = (1, 5, 10, 50)  # labels per class on the learning curve
    curve_methods: tuple[str, ...] = (
        "scratch",
        "linear_probe",
        "full_fine_tune",
        "lp_ft",
    )  # rows of the learning curve
    steps: int = 200  # the most optimizer steps of one fine-tuning run (`epochs_for`)
    batch_size: int = 32  # labelled target images per fine-tuning step
    lr: float = 1e-3  # from scratch (the source's own learning rate)
    fine_tune_lr: float = 3e-4  # every layer of a pretrained network: smaller than from scratch
    probe_lr: float = 1e-2  # a new linear head on frozen features
    partial_blocks: int = 1  # partial fine-tuning freezes the first block (LeNet: conv1)
    l2_sp_alpha: float = 1.0  # L2-SP's pull towards the pretrained weights (`l2_sp_penalty`)
    l2_sp_beta: float = 0.01  # L2-SP's weight decay of the new head
    lwf_weight: float = 1.0  # weight of LwF's term: the old head's outputs must stay (`lwf_loss`)
    lwf_temperature: float = 2.0  # LwF's softening temperature
    student_widths: tuple[int, ...] = (4, 8, 16)  # widths of the thin LeNet students (`student_classifier`)
    distill_temperature: float = 4.0  # distillation's softening temperature (Hinton et al.)
    distill_epochs: int = 2  # distillation epochs on the unlabelled target images
    distill_lr: float = 3e-3  # distillation's learning rate (Adam)
    uci: bool = True  # the farther pair (UCI digits), and the UCI candidate of the transferability scores
    uci_source_epochs: int = 10  # pretraining epochs of the UCI-digits candidate source (1,797 images: cheap)
    grayscale: bool = True  # photo-blended images averaged to one channel: a third of the first layer's cost
    arch: str = "lenet"  # "lenet", "bn_cnn", or "resnet18" (torchvision's, see `build_network`)
    weights: str | None = None  # "cached": start pretraining from ImageNet weights in the torch hub cache

    def epochs_for(self, n_images: int) -> tuple[int, int]:
        """``(epochs, patience)`` that give ``steps`` optimizer steps on ``n_images`` labelled images."""
        batches = math.ceil(n_images / self.batch_size)
        epochs = max(1, math.ceil(self.steps / batches))
        return epochs, max(3, epochs // 3)


#: The budget notebooks use while nbgrader autogrades (`tlcourse.experiments.expected.autograding`): a fifth of the
#: source, half the fine-tuning steps, no learning curve, no UCI pair, one student. Its ranges are
#: ``[fine-tuning.grading_ranges]``.
GRADING_CONFIG = FineTuningConfig(
    n_source=6_000,
    n_target_pool=3_000,
    n_test=1_000,
    budgets=(10,),
    steps=100,
    student_widths=(8,),
    distill_epochs=1,
    uci=False,
)


#: ``--profile full``: torchvision's ResNet-18 from the ImageNet weights in the local torch hub cache,
#: pretrained further on the source, at a larger budget, on the GPU when there is one. The task stays
#: the offline one, so that the table reads against the small networks' (RESULTS.md).
FULL_CONFIG = FineTuningConfig(
    arch="resnet18", weights="cached", source_epochs=5, steps=500, batch_size=64, grayscale=False
)


def notebook_config() -> FineTuningConfig:
    """The notebook's budget: `FULL_CONFIG` under ``TLCOURSE_PROFILE=full``, `GRADING_CONFIG` while nbgrader
    grades (its ranges measured separately), else the command line's `FineTuningConfig()`."""
    if profile() == "full":
        return FULL_CONFIG
    return GRADING_CONFIG if autograding() else FineTuningConfig()


# ------------------------------------------------------------------------------------------ the task
def class_subset(domain: Domain, classes: tuple[int, ...], name: str | None = None) -> Domain:
    """The images of ``classes``, relabelled ``0 .. len(classes) - 1`` in the order given."""
    keep = torch.isin(domain.y, torch.tensor(classes))
    relabel = torch.full((domain.num_classes,), -1, dtype=torch.int64)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))
    return Domain(
        name or domain.name, domain.x[keep], relabel[domain.y[keep]], tuple(domain.classes[c] for c in classes)
    )


@dataclass(frozen=True)
class FineTuningTask:
    """Source and target data of one seed.

    Attributes:
        source_train, source_test: photo-blended Fashion-MNIST classes 0-4.
        target_pool: photo-blended target training images (classes 5-9 as 0-4); labelled sets and the
            validation split are drawn from it (`labelled_split`), the rest serves as unlabelled data.
        target_test: target test images; they only score.
    """

    source_train: Domain
    source_test: Domain
    target_pool: Domain
    target_test: Domain


def make_fine_tuning_task(seed: int, config: FineTuningConfig = FineTuningConfig()) -> FineTuningTask:
    """The main pair for one seed: Fashion-MNIST classes 0-4 -> classes 5-9, both photo-blended (RGB)."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")

    def blended(domain: Domain, classes: tuple[int, ...], n: int, name: str, offset: int) -> Domain:
        blend = photo_blend(class_subset(domain, classes).take(n, seed=seed + offset), seed=seed + offset)
        return blend.with_images(blend.x.mean(1, keepdim=True) if config.grayscale else blend.x, name)

    return FineTuningTask(
        source_train=blended(train, SOURCE_CLASSES, config.n_source, "source", 0),
        source_test=blended(test, SOURCE_CLASSES, config.n_test, "source-test", 1),
        target_pool=blended(train, TARGET_CLASSES, config.n_target_pool, "target", 2),
        target_test=blended(test, TARGET_CLASSES, config.n_test, "target-test", 3),
    )


def labelled_split(pool: Domain, labels_per_class: int, val_per_class: int, seed: int) -> tuple[Domain, Domain, Domain]:
    """Draw a labelled training set and a validation split, both per class, from a pool of images.

    Each class's images are put in one seeded random order: the first ``val_per_class`` are the
    validation split, the next ``labels_per_class`` the labelled set. So for one seed the validation
    split is the same at every budget, and a larger budget contains the smaller ones.

    Returns:
        ``(labelled, val, unlabelled)``: the rest of the pool, without labels in spirit (distillation
        uses its images only).
    """
    generator = torch.Generator().manual_seed(seed)
    val_idx, lab_idx = [], []
    for c in range(pool.num_classes):
        members = (pool.y == c).nonzero().squeeze(1)
        if len(members) < val_per_class + labels_per_class:
            raise ValueError(
                f"class {pool.classes[c]!r} of {pool.name!r} has {len(members)} images; "
                f"{val_per_class} for validation and {labels_per_class} labels need more."
            )
        members = members[torch.randperm(len(members), generator=generator)]
        val_idx.append(members[:val_per_class])
        lab_idx.append(members[val_per_class : val_per_class + labels_per_class])
    val_idx_t, lab_idx_t = torch.cat(val_idx), torch.cat(lab_idx)
    rest = torch.ones(len(pool), dtype=torch.bool)
    rest[val_idx_t] = False
    rest[lab_idx_t] = False
    return (
        pool.subset(lab_idx_t, f"{pool.name} ({labels_per_class}/class)"),
        pool.subset(val_idx_t, f"{pool.name} validation"),
        pool.subset(rest, f"{pool.name} unlabelled"),
    )


def shuffled_labels(domain: Domain, seed: int) -> Domain:
    """The same images with their labels permuted at random: a source task with nothing to learn."""
    order = torch.randperm(len(domain), generator=torch.Generator().manual_seed(seed))
    return Domain(f"{domain.name} (shuffled labels)", domain.x, domain.y[order], domain.classes)


def shuffled_source(source: Domain, config: FineTuningConfig, seed: int) -> Domain:
    """The negative-transfer source: the first ``config.n_shuffled`` source images, labels shuffled."""
    return shuffled_labels(source.subset(torch.arange(min(config.n_shuffled, len(source)))), seed)


# -------------------------------------------------------------------------------------- the recipes
def build_network(
    config: FineTuningConfig, num_classes: int, in_channels: int, *, pretrained: bool = False
) -> FeatureClassifier:
    """A fresh network of ``config.arch``; with ``pretrained`` and ``config.weights="cached"``, ResNet-18's
    ImageNet weights from the local torch hub cache (`tlcourse.library.models.resnet_classifier`: nothing downloads,
    a missing file is a clear FileNotFoundError). Scratch baselines always start from random weights.
    """
    if config.arch == "resnet18":
        return resnet_classifier(num_classes, weights=config.weights if pretrained else None)
    if config.weights is not None:
        raise ValueError(
            f"weights={config.weights!r} needs arch='resnet18'; the course's small CNNs have no "
            "pretrained weights other than the ones `pretrain` trains."
        )
    return build_classifier(config.arch, num_classes=num_classes, in_channels=in_channels)


def pretrain(
    source: Domain, config: FineTuningConfig, seed: int, *, progress: bool = False, desc: str = "pretrain"
) -> FeatureClassifier:
    """Train the source network: ``config.arch`` on ``source`` for ``config.source_epochs`` epochs.

    With ``config.weights="cached"`` training starts from the ImageNet weights; ``source_epochs=0`` then
    keeps them as they are (the source task is ImageNet itself). With ``$TLCOURSE_MODEL_CACHE`` set, a network
    pretrained before from the same source, config and seed is loaded instead (`model_cache`).
    """
    if config.source_epochs <= 0 and config.weights is None:
        raise ValueError(
            "source_epochs=0 leaves a randomly initialised network: pretraining needs at least "
            "one epoch unless weights='cached'."
        )
    seed_row(seed)
    model = build_network(config, source.num_classes, source.x.shape[1], pretrained=True)
    if config.source_epochs > 0:
        cache_key = model_cache.key("fine_tuning.pretrain", source, config, seed)
        if not model_cache.load(model, cache_key):
            fit(
                model,
                source,
                epochs=config.source_epochs,
                lr=config.source_lr,
                batch_size=64,
                seed=seed,
                progress=progress,
                desc=desc,
            )
            model_cache.save(model, cache_key)
    return model


def fine_tune(
    model: nn.Module,
    labelled: Domain,
    val: Domain,
    config: FineTuningConfig,
    *,
    lr: float,
    seed: int,
    regularizer=None,
    params: list[nn.Parameter] | None = None,
) -> History:
    """Train the trainable parameters of ``model`` on the labelled target set, with early stopping on ``val``.

    The budget is ``config.steps`` optimizer steps of Adam; training stops once the validation accuracy
    has not improved for a third of them, and the best epoch's parameters are kept.
    """
    epochs, patience = config.epochs_for(len(labelled))
    return fit(
        model,
        labelled,
        epochs=epochs,
        lr=lr,
        batch_size=config.batch_size,
        val=val,
        seed=seed,
        early_stopping=patience,
        regularizer=regularizer,
        params=params,
        progress=False,
    )


def linear_probe_then_fine_tune(
    model: FeatureClassifier, labelled: Domain, val: Domain, config: FineTuningConfig, seed: int
) -> FeatureClassifier:
    """LP-FT (Kumar et al., ICLR 2022): train the new head on frozen features first, then everything.

    Full fine-tuning from a *random* head sends large, random gradients into the pretrained features
    in the first steps and distorts them; a head trained first makes those gradients small and useful.
    """
    freeze_blocks(model, len(feature_blocks(model)))
    fine_tune(model, labelled, val, config, lr=config.probe_lr, seed=seed)
    freeze_blocks(model, 0)
    fine_tune(model, labelled, val, config, lr=config.fine_tune_lr, seed=seed)
    return model


def _pretrained(source_model: FeatureClassifier | None, labelled: Domain, method: str) -> FeatureClassifier:
    """A copy of the source network with a new head for the target's classes."""
    if source_model is None:
        raise ValueError(f"{method} needs a pretrained source_model.")
    return new_head(copy.deepcopy(source_model), labelled.num_classes)


def _scratch(source_model, labelled, val, config, seed) -> FeatureClassifier:
    """A fresh network of the same architecture (``source_model`` is not used)."""
    model = build_network(config, labelled.num_classes, labelled.x.shape[1])
    fine_tune(model, labelled, val, config, lr=config.lr, seed=seed)
    return model


def _linear_probe(source_model, labelled, val, config, seed) -> FeatureClassifier:
    """Frozen pretrained features, a new linear head (feature extraction)."""
    model = _pretrained(source_model, labelled, "linear_probe")
    freeze_blocks(model, len(feature_blocks(model)))
    fine_tune(model, labelled, val, config, lr=config.probe_lr, seed=seed)
    return model


def _partial_fine_tune(source_model, labelled, val, config, seed) -> FeatureClassifier:
    """The first ``config.partial_blocks`` blocks frozen, the rest trains."""
    model = _pretrained(source_model, labelled, "partial_fine_tune")
    freeze_blocks(model, config.partial_blocks)
    fine_tune(model, labelled, val, config, lr=config.fine_tune_lr, seed=seed)
    return model


def _full_fine_tune(source_model, labelled, val, config, seed) -> FeatureClassifier:
    """Every layer trains, at the smaller ``fine_tune_lr``."""
    model = _pretrained(source_model, labelled, "full_fine_tune")
    fine_tune(model, labelled, val, config, lr=config.fine_tune_lr, seed=seed)
    return model


def _lp_ft(source_model, labelled, val, config, seed) -> FeatureClassifier:
    """`linear_probe_then_fine_tune`."""
    model = _pretrained(source_model, labelled, "lp_ft")
    return linear_probe_then_fine_tune(model, labelled, val, config, seed)


def _l2_sp(source_model, labelled, val, config, seed) -> FeatureClassifier:
    """Full fine-tuning plus `l2_sp_penalty` towards the pretrained weights."""
    model = _pretrained(source_model, labelled, "l2_sp")
    reference = pretrained_parameters(model)
    fine_tune(
        model,
        labelled,
        val,
        config,
        lr=config.fine_tune_lr,
        seed=seed,
        regularizer=lambda x, logits: l2_sp_penalty(model, reference, config.l2_sp_alpha, config.l2_sp_beta),
    )
    return model


def _lwf(source_model, labelled, val, config, seed) -> FeatureClassifier:
    """Full fine-tuning plus `lwf_loss`: the old head's outputs on target images must stay."""
    model = _pretrained(source_model, labelled, "lwf")
    teacher = frozen_copy(source_model)
    old_head = copy.deepcopy(source_model.head)  # LwF trains the old head too
    fine_tune(
        model,
        labelled,
        val,
        config,
        lr=config.fine_tune_lr,
        seed=seed,
        params=trainable_parameters(model) + list(old_head.parameters()),
        regularizer=lambda x, logits: (
            config.lwf_weight * lwf_loss(model, old_head, x, teacher(x), config.lwf_temperature)
        ),
    )
    return model


#: The transfer recipes of the chapter, in the order the table shows them:
#: ``{name: recipe(source_model, labelled, val, config, seed) -> trained target classifier}``.
METHODS: dict[str, Callable[..., FeatureClassifier]] = {
    "scratch": _scratch,
    "linear_probe": _linear_probe,
    "partial_fine_tune": _partial_fine_tune,
    "full_fine_tune": _full_fine_tune,
    "lp_ft": _lp_ft,
    "l2_sp": _l2_sp,
    "lwf": _lwf,
}


def transfer(
    method: str,
    source_model: FeatureClassifier | None,
    labelled: Domain,
    val: Domain,
    config: FineTuningConfig,
    seed: int,
) -> FeatureClassifier:
    """Train a classifier for the target task with one of `METHODS` (each recipe's docstring says what it
    trains), from a seeded start (`seed_row`); ``source_model`` is left untouched."""
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {tuple(METHODS)}.")
    seed_row(seed)
    return METHODS[method](source_model, labelled, val, config, seed)


# ------------------------------------------------------------------------------------- distillation
def student_classifier(width: int, in_channels: int, num_classes: int) -> FeatureClassifier:
    """A LeNet-shaped student, thinner: conv 5x5 x``width`` -> ReLU -> pool -> conv 5x5 x``2 width`` -> ReLU
    -> pool, then one linear layer on its ``2 width x 4 x 4`` features (28x28 images)."""
    features = nn.Sequential(
        nn.Conv2d(in_channels, width, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    return FeatureClassifier(features, linear_head(32 * width, num_classes), 32 * width)


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A fixed teacher's logits on a batch (in the teacher's memory format: see `for_inference`)."""
    return teacher(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)


def distill(
    student: nn.Module,
    teacher: nn.Module,
    images: torch.Tensor,
    config: FineTuningConfig,
    seed: int,
    val: Domain | None = None,
    temperature: float | None = None,
) -> History:
    """Train ``student`` to match ``teacher``'s softened outputs on unlabelled ``images`` (Hinton et al., 2015).

    No label is used: the loss is `distillation_loss` alone. The training "labels" are the teacher's
    predictions, so the recorded ``train_acc`` is the student's agreement with the teacher.
    """
    temperature = config.distill_temperature if temperature is None else temperature
    teacher = for_inference(frozen_copy(teacher))  # its outputs only: no gradient flows into the teacher
    logits = predict(teacher, images)
    data = Domain("teacher's predictions", images, logits.argmax(1), tuple(str(k) for k in range(logits.shape[1])))
    return fit(
        student,
        data,
        epochs=config.distill_epochs,
        lr=config.distill_lr,
        batch_size=64,
        seed=seed,
        val=val,
        progress=False,
        loss_fn=lambda logits, labels: logits.new_zeros(()),
        regularizer=lambda x, logits: distillation_loss(logits, teacher_outputs(teacher, x), temperature),
    )


# --------------------------------------------------------------------------------------- the curves
def learning_curve(
    source_model: FeatureClassifier,
    pool: Domain,
    test: Domain,
    config: FineTuningConfig,
    seed: int,
    methods: tuple[str, ...] | None = None,
    budgets: tuple[int, ...] | None = None,
) -> dict[str, dict[int, float]]:
    """Target test accuracy of each method at each label budget: ``{method: {labels per class: accuracy}}``."""
    methods = config.curve_methods if methods is None else methods
    budgets = config.budgets if budgets is None else budgets
    curve: dict[str, dict[int, float]] = {m: {} for m in methods}
    for n in budgets:
        labelled, val, _ = labelled_split(pool, n, config.val_per_class, seed)
        for method in methods:
            curve[method][n] = evaluate(transfer(method, source_model, labelled, val, config, seed), test)
    return curve


def make_uci_task(seed: int, in_channels: int = 3) -> tuple[Domain, Domain]:
    """The farther target: the UCI handwritten digits, split in half into a pool and a test set."""
    digits = load_uci_digits()
    if in_channels == 3:
        digits = digits.to_rgb()
    return digits.split(0.5, seed=seed)


# ------------------------------------------------------------------------- which source, before fine-tuning
#: The candidate sources of the transferability scores, in the order the table shows them; ``--profile full``
#: adds ``imagenet`` (ResNet-18's ImageNet weights as they are, `build_network` with ``pretrained``).
CANDIDATES = ("good", "shuffled", "random", "uci")


def random_network(config: FineTuningConfig, num_classes: int, in_channels: int, seed: int) -> FeatureClassifier:
    """The untrained candidate: ``config.arch`` initialised by ``seed``, the very weights that
    ``transfer("scratch", ...)`` starts from (both seed with `seed_row`, then `build_network`), so that
    fine-tuning it *is* the scratch row."""
    seed_row(seed)
    return build_network(config, num_classes, in_channels)


def pretrain_uci_source(config: FineTuningConfig, seed: int, in_channels: int = 1) -> FeatureClassifier:
    """The farther candidate: ``config.arch`` trained on all 1,797 UCI digits (10 classes, 28x28 like the
    source; RGB when ``in_channels`` is 3) for ``config.uci_source_epochs`` epochs."""
    digits = load_uci_digits()
    if in_channels == 3:
        digits = digits.to_rgb()
    seed_row(seed)
    model = build_network(config, digits.num_classes, in_channels)
    fit(model, digits, epochs=config.uci_source_epochs, lr=config.source_lr, batch_size=64, seed=seed, progress=False)
    return model


def candidate_sources(
    config: FineTuningConfig,
    source_model: FeatureClassifier,
    shuffled_model: FeatureClassifier,
    num_classes: int,
    in_channels: int,
    seed: int,
) -> dict[str, FeatureClassifier]:
    """The candidates of `CANDIDATES` (``uci`` when ``config.uci``), and ``imagenet`` when ``config.weights``
    is set: ResNet-18's ImageNet weights as they are, from the local torch hub cache (a missing file is the
    clear FileNotFoundError of `build_network`)."""
    candidates = {
        "good": source_model,
        "shuffled": shuffled_model,
        "random": random_network(config, num_classes, in_channels, seed),
    }
    if config.uci:
        candidates["uci"] = pretrain_uci_source(config, seed, in_channels)
    if config.weights is not None:
        seed_row(seed)
        candidates["imagenet"] = build_network(config, num_classes, in_channels, pretrained=True)
    return candidates


def transferability_scores(candidates: dict[str, FeatureClassifier], labelled: Domain) -> dict[str, float]:
    """The H-score and LogME of each candidate's features on the labelled target images, without training.

    The H-score uses the Ledoit-Wolf shrinkage of ``cov(f)``: the labelled set has fewer images (50) than
    LeNet has features (768), so the plain sample covariance is singular and every candidate would score
    the maximum ``K - 1`` (`tlcourse.library.metrics.transferability_h_score`). This H-score ranks
    sources (Bao et al., 2019); it is not chapter 4's open-set `h_score`.

    Returns:
        ``{"hscore_<name>": ..., "logme_<name>": ...}`` for each candidate ``name``.
    """
    scores: dict[str, float] = {}
    for name, model in candidates.items():
        features = predict(model.features, labelled.x)
        scores[f"hscore_{name}"] = transferability_h_score(features, labelled.y, shrinkage=True)
        scores[f"logme_{name}"] = logme(features, labelled.y)
    return scores


def rank_correlations(results: dict[str, float], sources: tuple[str, ...]) -> dict[str, float]:
    """Kendall's tau between each score and the fine-tuned accuracy over ``sources``: ``kendall_tau_hscore``,
    ``kendall_tau_logme``, in [-1, 1] (1: the score orders the sources as fine-tuning does)."""
    from scipy.stats import kendalltau  # imported here: scipy is slow to import

    accuracies = [results[f"finetuned_{s}"] for s in sources]
    return {
        f"kendall_tau_{score}": float(kendalltau([results[f"{score}_{s}"] for s in sources], accuracies).statistic)
        for score in ("hscore", "logme")
    }


@register("fine-tuning")
def run_fine_tuning(
    seed: int = 0, config: FineTuningConfig | None = None, progress: bool = True, profile: str = "offline"
) -> ExperimentResult:
    """Pretrain on the source (and on shuffled source labels), then transfer with every recipe.

    ``profile="full"`` uses `FULL_CONFIG` (ResNet-18 from the cached ImageNet weights) unless ``config``
    is given.
    """
    if profile not in ("offline", "full"):
        raise ValueError(f"Unknown profile {profile!r}; choose offline or full.")
    config = config or (FULL_CONFIG if profile == "full" else FineTuningConfig())
    start = time.perf_counter()
    task = make_fine_tuning_task(seed, config)
    n = config.labels_per_class
    source_model = pretrain(task.source_train, config, seed, progress=progress, desc="source")
    shuffled_model = pretrain(
        shuffled_source(task.source_train, config, seed), config, seed, progress=progress, desc="shuffled source"
    )
    labelled, val, unlabelled = labelled_split(task.target_pool, n, config.val_per_class, seed)

    results: dict[str, float] = {"source": evaluate(source_model, task.source_test)}
    models: dict[str, FeatureClassifier] = {}
    for method in METHODS:
        models[method] = transfer(method, source_model, labelled, val, config, seed)
        results[method] = evaluate(models[method], task.target_test)
    results["negative_transfer"] = evaluate(
        transfer("full_fine_tune", shuffled_model, labelled, val, config, seed), task.target_test
    )
    results["negative_linear_probe"] = evaluate(
        transfer("linear_probe", shuffled_model, labelled, val, config, seed), task.target_test
    )

    # Compression: small students learn from the LP-FT model on the unlabelled target images. The teacher
    # was fixed while writing the chapter, on the development split (docs/decisions/fine-tuning.md).
    teacher = models["lp_ft"]
    for width in config.student_widths:
        seed_row(seed)
        student = student_classifier(width, labelled.x.shape[1], labelled.num_classes)
        fine_tune(student, labelled, val, config, lr=config.lr, seed=seed)
        results[f"student{width}_labels_only"] = evaluate(student, task.target_test)
        seed_row(seed)
        student = student_classifier(width, labelled.x.shape[1], labelled.num_classes)
        distill(student, teacher, unlabelled.x, config, seed)
        results[f"student{width}_distilled"] = evaluate(student, task.target_test)

    curve = learning_curve(
        source_model,
        task.target_pool,
        task.target_test,
        config,
        seed,
        budgets=tuple(b for b in config.budgets if b != n),
    )
    for method, points in curve.items():
        for budget, acc in points.items():
            results[f"{method}_n{budget}"] = acc

    # Which source, before fine-tuning: scores on the labelled target images, then each source's full
    # fine-tune (the good and shuffled ones and scratch, which starts from the random network, are run above).
    candidates = candidate_sources(
        config, source_model, shuffled_model, labelled.num_classes, labelled.x.shape[1], seed
    )
    finetuned = {
        "good": results["full_fine_tune"],
        "shuffled": results["negative_transfer"],
        "random": results["scratch"],
    }
    for name in candidates:
        if name not in finetuned:
            finetuned[name] = evaluate(
                transfer("full_fine_tune", candidates[name], labelled, val, config, seed), task.target_test
            )
    results.update(transferability_scores(candidates, labelled))
    results.update({f"finetuned_{name}": acc for name, acc in finetuned.items()})
    results.update(rank_correlations(results, tuple(candidates)))

    if config.uci:
        pool, test = make_uci_task(seed, task.source_train.x.shape[1])
        uci_labelled, uci_val, _ = labelled_split(pool, n, config.val_per_class, seed)
        for method in ("scratch", "linear_probe", "l2_sp"):
            results[f"uci_{method}"] = evaluate(
                transfer(method, source_model, uci_labelled, uci_val, config, seed), test
            )

    table: list[tuple[str, dict[str, float | str]]] = [
        (name, {"target accuracy %": 100 * results[name], "vs scratch": 100 * (results[name] - results["scratch"])})
        for name in (*METHODS, "negative_transfer", "negative_linear_probe")
    ]
    table += [
        (
            f"student{w} ({count_parameters(student_classifier(w, labelled.x.shape[1], 5))} params)",
            {
                "target accuracy %": 100 * results[f"student{w}_distilled"],
                "vs scratch": 100 * (results[f"student{w}_distilled"] - results["scratch"]),
            },
        )
        for w in config.student_widths
    ]
    if config.uci:
        table += [
            (
                f"uci_{m}",
                {
                    "target accuracy %": 100 * results[f"uci_{m}"],
                    "vs scratch": 100 * (results[f"uci_{m}"] - results["uci_scratch"]),
                },
            )
            for m in ("scratch", "linear_probe", "l2_sp")
        ]
    table += [
        (
            f"source {name}",
            {
                "H-score": results[f"hscore_{name}"],
                "LogME": results[f"logme_{name}"],
                "fine-tuned %": 100 * results[f"finetuned_{name}"],
            },
        )
        for name in candidates
    ]
    return ExperimentResult(
        experiment="fine-tuning",
        seed=seed,
        results=results,
        seconds=time.perf_counter() - start,
        table=table,
        details={"config": asdict(config), "source_model": source_model, "models": models, "curve": curve},
    )
