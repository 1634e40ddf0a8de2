"""The training loops: seeding, device choice, `fit`, `fit_method`, `fit_domains`, `evaluate`, a history.

Methods only bring what is their own (a loss, a step); the loops, progress bars, evaluation and model
selection live here. The three loops differ only in what one epoch of steps is (`fit`: a labelled
domain; `fit_method`: a `tlcourse.library.methods.Method` on source and target batches;
`fit_domains`: a `tlcourse.library.methods.MultiDomainMethod` on one batch per domain); what happens
around each epoch (averaging, validation, keeping the best epoch, early stopping) is `run_epochs`.
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tlcourse.library.data import Domain
from tlcourse.library.methods import Method, MultiDomainMethod

T = TypeVar("T")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): the one place where global seeds are set.

    On the same machine and thread count, the same seed gives the same numbers. Data builders do not
    use these global generators: they take their own ``seed`` argument.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def choose_device(prefer: str | None = None) -> torch.device:
    """The device to train on: ``prefer``, else ``$TLCOURSE_DEVICE``, else CUDA, Apple MPS, then CPU."""
    name = prefer or os.environ.get("TLCOURSE_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def iterate_minibatches(
    n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Index tensors of consecutive minibatches over ``range(n)`` (the last one may be smaller).

    Slicing in-memory tensors with these indices is several times faster on a CPU than a
    `DataLoader` that fetches and collates one sample at a time.
    """
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


@dataclass
class History:
    """What `fit` measured, one record per epoch: ``history["loss"]`` is the list of epoch losses."""

    records: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None  # set by early stopping: the epoch whose parameters were kept

    def append(self, **values: float) -> None:
        self.records.append(values)

    def __getitem__(self, key: str) -> list[float]:
        return [r[key] for r in self.records if key in r]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def last(self) -> dict[str, float]:
        return self.records[-1] if self.records else {}

    def best(self, key: str) -> int:
        """Index of the record with the highest ``key``, the later one on ties (as early stopping keeps).

        For choosing an epoch after the fact from what was monitored, e.g. ``history.best("val_acc")``.
        """
        values = self[key]
        if len(values) != len(self.records) or not values:
            raise KeyError(f"{key!r} was not recorded in every epoch; recorded: {sorted(self.curves())}")
        return max(range(len(values)), key=lambda i: (values[i], i))

    def curves(self) -> dict[str, list[float]]:
        """Every measured quantity as a list over epochs, ready for `tlcourse.library.plots.plot_curves`."""
        keys = dict.fromkeys(k for r in self.records for k in r if k != "epoch")
        return {k: self[k] for k in keys}


def for_inference(model: nn.Module, device: torch.device | None = None) -> nn.Module:
    """``model`` itself, or on the CPU, where it has convolutions, a copy of it in the channels-last memory
    format, for outputs only (it does not train ``model``): PyTorch's CPU convolutions and max-pooling run two
    to four times as fast on it, and its outputs agree with the original's to about 1e-7. The trained
    model's own memory format stays as it was (training is not faster in channels-last here)."""
    device = device or next(model.parameters()).device
    if device.type != "cpu" or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return model
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 256, device: torch.device | None = None
) -> torch.Tensor:
    """Outputs of ``model`` on ``x`` in evaluation mode, batched, returned on the CPU (batches of 256 run
    faster than larger ones on a CPU, with the same outputs)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        fast = for_inference(model, device)
        channels_last = fast is not model and x.dim() == 4
        outputs = []
        for i in range(0, len(x), batch_size):
            batch = x[i : i + batch_size].to(device)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            outputs.append(fast(batch).cpu().contiguous())
    finally:
        model.train(was_training)
    return torch.cat(outputs)


def extract_features(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 256, device: torch.device | None = None
) -> torch.Tensor:
    """Feature vectors ``(N, num_features)`` from a `FeatureClassifier`'s feature extractor."""
    if not hasattr(model, "features"):
        raise TypeError("extract_features needs a model with a `.features` part, e.g. a FeatureClassifier.")
    return predict(model.features, x, batch_size=batch_size, device=device)


def evaluate(model: nn.Module, data: Domain, *, batch_size: int = 256, device: torch.device | None = None) -> float:
    """Accuracy of ``model`` on a labelled domain, in [0, 1]."""
    logits = predict(model, data.x, batch_size=batch_size, device=device)
    return (logits.argmax(dim=1) == data.y).float().mean().item()


def run_epochs(
    model: nn.Module,
    train_epoch: Callable[[], dict[str, float]],
    *,
    epochs: int,
    val: Domain | None = None,
    monitor: Mapping[str, Domain] | None = None,
    select: bool = False,
    early_stopping: int | None = None,
    device: torch.device | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """The epoch loop every `fit*` shares: train, measure, record, keep the best epoch, stop early.

    Each epoch puts ``model`` in training mode and calls ``train_epoch()``, which takes the epoch's steps
    and returns its averaged record (losses, accuracies); then ``val`` accuracy (``val_acc``) and every
    ``monitor`` domain's (``{name}_acc``) are added, and the record is appended to the `History`.

    Args:
        select: keep the parameters of the epoch with the best ``val_acc`` instead of the last; of tied
            epochs the later one, which fits the training data better (``history.best_epoch``).
        early_stopping: patience in epochs: stop once ``val_acc`` has not improved for this many epochs
            (implies ``select``).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if (select or early_stopping is not None) and val is None:
        raise ValueError("choosing the best epoch (select or early_stopping) needs a validation domain: pass val=...")
    if early_stopping is not None and early_stopping < 1:
        raise ValueError(f"early_stopping is a patience of at least 1 epoch, got {early_stopping}")
    history = History()
    best_acc, best_state = -1.0, None
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        record = {"epoch": epoch, **train_epoch()}
        if val is not None:
            record["val_acc"] = evaluate(model, val, device=device)
        for name, domain in (monitor or {}).items():
            record[f"{name}_acc"] = evaluate(model, domain, device=device)
        history.append(**record)
        bar.set_postfix({k: round(v, 3) for k, v in record.items() if k != "epoch"})
        if select or early_stopping is not None:
            if record["val_acc"] >= best_acc:
                best_acc, best_state, history.best_epoch = record["val_acc"], copy.deepcopy(model.state_dict()), epoch
            elif early_stopping is not None and epoch - history.best_epoch >= early_stopping:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def mean_record(sums: dict[str, float], count: float) -> dict[str, float]:
    """Each summed quantity divided by ``count``: the epoch's averages from per-step (or per-image) sums."""
    return {k: v / count for k, v in sums.items()}


def accumulate(sums: dict[str, float], values: dict[str, float]) -> None:
    """Add one step's ``values`` to the running ``sums``, in place."""
    for k, v in values.items():
        sums[k] = sums.get(k, 0.0) + v


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Regularizer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fit(
    model: nn.Module,
    train: Domain | tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    val: Domain | None = None,
    loss_fn: LossFn | None = None,
    params: list[nn.Parameter] | None = None,
    device: torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
    regularizer: Regularizer | None = None,
    early_stopping: int | None = None,
) -> History:
    """Train ``model`` on labelled data with Adam and cross-entropy; returns the `History`.

    Args:
        model: maps inputs to logits.
        train: the labelled training domain, or ``(x, y)`` tensors of any shape (e.g. features for a head).
        epochs, lr, batch_size, weight_decay: the usual; the defaults suit the course's small CNNs.
        val: a labelled validation domain; its accuracy is recorded each epoch (never a test set).
        loss_fn: ``loss_fn(logits, labels)``; cross-entropy by default. Regularisers that look at the
            model (L2-SP, distillation) close over it.
        params: the parameters to train (default: all that require gradients).
        seed: seeds the minibatch order, ``torch.randperm(n, generator).split(batch_size)`` each epoch.
        progress: show a tqdm bar (set ``TQDM_DISABLE=1`` to silence every bar).
        regularizer: ``regularizer(x, logits)``, a term added to each batch's loss that needs the batch's
            images ``x`` (e.g. distillation from a teacher's outputs on the same images).
        early_stopping: patience in epochs: stop once ``val`` accuracy has not improved for this many
            epochs, then restore the parameters of the best epoch (``history.best_epoch``; of tied epochs
            the later one, which fits the training data better). Needs ``val``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if early_stopping is not None and (val is None or early_stopping < 1):
        raise ValueError("early_stopping needs a validation domain (val=...) and a patience of at least 1 epoch.")
    train_x, train_y = (train.x, train.y) if isinstance(train, Domain) else train
    device = device or choose_device()
    model.to(device)
    loss_fn = loss_fn or nn.functional.cross_entropy
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("Nothing to train: every parameter is frozen (requires_grad=False).")
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)

    def train_epoch() -> dict[str, float]:
        sums: dict[str, float] = {}
        for idx in iterate_minibatches(len(train_y), batch_size, shuffle=True, generator=generator):
            x, y = train_x[idx].to(device), train_y[idx].to(device)
            logits = model(x)
            loss = loss_fn(logits, y)
            if regularizer is not None:
                loss = loss + regularizer(x, logits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            accumulate(sums, {"loss": loss.item() * len(idx), "train_acc": (logits.argmax(1) == y).sum().item()})
        return mean_record(sums, len(train_y))

    return run_epochs(
        model,
        train_epoch,
        epochs=epochs,
        val=val,
        early_stopping=early_stopping,
        device=device,
        progress=progress,
        desc=desc,
    )


def fit_method(
    method: Method,
    source: Domain,
    target_x: torch.Tensor,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    val: Domain | None = None,
    device: torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "adapt",
) -> History:
    """Train a transfer method (see `tlcourse.library.methods.Method`) on labelled source and unlabelled target data.

    An epoch is one pass over the source; target batches of the same size are drawn alongside, cycling
    through a fresh permutation of the target whenever it runs out. The method's ``update`` gets the
    fraction of training done, for its schedules.

    Args:
        method: has ``update(source_x, source_y, target_x, progress) -> dict`` and ``predict(x)``.
        source: the labelled source domain.
        target_x: unlabelled target images ``(N_t, C, H, W)``; target labels never reach the loop.
        val: a labelled validation domain evaluated after each epoch; pass a *source* split for honest
            model selection (a target test set here would be an oracle).
        seed: seeds the batch order.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if len(target_x) == 0:
        raise ValueError("fit_method needs at least one target image")
    device = device or choose_device()
    method.to(device)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, len(source) // batch_size)
    total_steps = epochs * steps_per_epoch

    def target_batches() -> Iterator[torch.Tensor]:
        # Full batches only (unless the whole target is smaller than one), so that every step sees as
        # many target as source images: DANN's domain classifier relies on that balance.
        while True:
            for idx in iterate_minibatches(len(target_x), batch_size, shuffle=True, generator=generator):
                if len(idx) == min(batch_size, len(target_x)):
                    yield idx

    targets = target_batches()
    step = 0

    def train_epoch() -> dict[str, float]:
        nonlocal step
        sums: dict[str, float] = {}
        source_batches = iterate_minibatches(len(source), batch_size, shuffle=True, generator=generator)
        for idx in list(source_batches)[:steps_per_epoch]:
            t_idx = next(targets)
            losses = method.update(
                source.x[idx].to(device), source.y[idx].to(device), target_x[t_idx].to(device), step / total_steps
            )
            step += 1
            accumulate(sums, losses)
        return mean_record(sums, steps_per_epoch)

    return run_epochs(method, train_epoch, epochs=epochs, val=val, device=device, progress=progress, desc=desc)


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
    step = 0

    def train_epoch() -> dict[str, float]:
        nonlocal step
        sums: dict[str, float] = {}
        for _ in range(steps_per_epoch):
            minibatches = []
            for domain, stream in zip(domains, streams):
                idx = next(stream)
                minibatches.append((domain.x[idx].to(device), domain.y[idx].to(device)))
            accumulate(sums, method.update(minibatches, step / total))
            step += 1
        return mean_record(sums, steps_per_epoch)

    return run_epochs(
        method,
        train_epoch,
        epochs=epochs,
        val=val,
        monitor=monitor,
        select=select,
        device=device,
        progress=progress,
        desc=desc,
    )


# ------------------------------------------------------------------------ the domain-generalization protocol
def leave_one_domain_out(
    domains: Mapping[str, Domain], train_and_test: Callable[[dict[str, Domain], Domain], T]
) -> dict[str, T]:
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
