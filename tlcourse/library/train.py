"""The shared training loop: seeding, device choice, `fit`, `evaluate`, and a history for plots.

Methods only bring what is their own (a loss, a step); the loop, progress bars and evaluation live here.
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tlcourse.library.data import Domain


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

    def curves(self) -> dict[str, list[float]]:
        """Every measured quantity as a list over epochs, ready for `tlcourse.library.plots.plot_curves`."""
        keys = dict.fromkeys(k for r in self.records for k in r if k != "epoch")
        return {k: self[k] for k in keys}


@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024, device: torch.device | None = None
) -> torch.Tensor:
    """Outputs of ``model`` on ``x`` in evaluation mode, batched, returned on the CPU."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = [model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(outputs)


def extract_features(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024, device: torch.device | None = None
) -> torch.Tensor:
    """Feature vectors ``(N, num_features)`` from a `FeatureClassifier`'s feature extractor."""
    if not hasattr(model, "features"):
        raise TypeError("extract_features needs a model with a `.features` part, e.g. a FeatureClassifier.")
    return predict(model.features, x, batch_size=batch_size, device=device)


def evaluate(model: nn.Module, data: Domain, *, batch_size: int = 1024, device: torch.device | None = None) -> float:
    """Accuracy of ``model`` on a labelled domain, in [0, 1]."""
    logits = predict(model, data.x, batch_size=batch_size, device=device)
    return (logits.argmax(dim=1) == data.y).float().mean().item()


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Regularizer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fit(
    model: nn.Module,
    train: Domain,
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
    """Train ``model`` on a labelled domain with Adam and cross-entropy; returns the `History`.

    Args:
        model: maps images to logits.
        train: the labelled training domain.
        epochs, lr, batch_size, weight_decay: the usual; the defaults suit the course's small CNNs.
        val: a labelled validation domain; its accuracy is recorded each epoch (never a test set).
        loss_fn: ``loss_fn(logits, labels)``; cross-entropy by default. Regularisers that look at the
            model (L2-SP, distillation) close over it.
        params: the parameters to train (default: all that require gradients).
        seed: seeds the minibatch order, so the same seed gives the same run.
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
    device = device or choose_device()
    model.to(device)
    loss_fn = loss_fn or nn.functional.cross_entropy
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("Nothing to train: every parameter is frozen (requires_grad=False).")
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    best_acc, best_state = -1.0, None
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        total_loss, total_correct = 0.0, 0
        for idx in iterate_minibatches(len(train), batch_size, shuffle=True, generator=generator):
            x, y = train.x[idx].to(device), train.y[idx].to(device)
            logits = model(x)
            loss = loss_fn(logits, y)
            if regularizer is not None:
                loss = loss + regularizer(x, logits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            total_correct += (logits.argmax(1) == y).sum().item()
        record = {"epoch": epoch, "loss": total_loss / len(train), "train_acc": total_correct / len(train)}
        if val is not None:
            record["val_acc"] = evaluate(model, val, device=device)
        history.append(**record)
        bar.set_postfix({k: round(v, 3) for k, v in record.items() if k != "epoch"})
        if early_stopping is not None:
            if record["val_acc"] >= best_acc:
                best_acc, best_state, history.best_epoch = record["val_acc"], copy.deepcopy(model.state_dict()), epoch
            elif epoch - history.best_epoch >= early_stopping:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def fit_method(
    method: nn.Module,
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
    history = History()
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
    step = 0
    for epoch in bar:
        method.train()
        sums: dict[str, float] = {}
        source_batches = iterate_minibatches(len(source), batch_size, shuffle=True, generator=generator)
        for idx in list(source_batches)[:steps_per_epoch]:
            t_idx = next(targets)
            losses = method.update(
                source.x[idx].to(device), source.y[idx].to(device), target_x[t_idx].to(device), step / total_steps
            )
            step += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
        record = {"epoch": epoch, **{k: v / steps_per_epoch for k, v in sums.items()}}
        if val is not None:
            record["val_acc"] = evaluate(method, val, device=device)
        history.append(**record)
        bar.set_postfix({k: round(v, 3) for k, v in record.items() if k != "epoch"})
    return history
