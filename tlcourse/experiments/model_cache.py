"""An opt-in disk cache of trained models, for runs that train the same model again and again.

Grading a chapter's submissions in the tests (``tests/classroom/test_grading_pipeline.py``) runs the same
pretraining in every submission's kernel, from the same data, budget and seed. With ``TLCOURSE_MODEL_CACHE`` set to
a folder, the first kernel trains and saves; the others load. Unset (the default), nothing is read or written.

What a hit gives is what training would have given: the parameters and buffers, the train/eval mode, and the
global random generators as training left them (so that the code after it draws the same numbers). The key is
everything the training reads: what trains (``what``), its inputs (configs by value, tensors by content), the
source of the tlcourse package (a changed library trains again), torch's version and thread count.

Only what trains with the library's code alone goes through the cache (`tlcourse.experiments.fine_tuning.pretrain`):
nothing a learner's function (patched in, or passed) could change. The grader's sandbox passes its kernels a fixed
list of environment variables, without this one; it sets it only for a `SandboxSettings.trusted_model_cache`
(`tlcourse.classroom.sandbox`), which the course's tests give it: a class's kernels are untrusted, and a cache
they could write would reach the next submission.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import sys
import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

#: The environment variable naming the cache folder (unset: no cache).
CACHE_VAR = "TLCOURSE_MODEL_CACHE"


def folder() -> Path | None:
    """The cache folder from ``$TLCOURSE_MODEL_CACHE``, or None when the cache is off."""
    value = os.environ.get(CACHE_VAR)
    return Path(value) if value else None


@cache
def _library_fingerprint() -> str:
    """A hash of every Python file of the tlcourse package: any change to the library trains again."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(type(value).__qualname__.encode())
        for field in dataclasses.fields(value):
            digest.update(field.name.encode())
            _feed(digest, getattr(value, field.name))
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    elif value is None or isinstance(value, bool | int | float | str):
        digest.update(repr(value).encode())
    else:
        raise TypeError(f"model_cache.key cannot hash a {type(value).__name__}: pass tensors, configs or plain values")


def key(what: str, *inputs: Any) -> str:
    """The cache key of training ``what`` from ``inputs`` (tensors, dataclass configs, plain values, and
    tuples and lists of them; a `Domain` is a dataclass of tensors and names)."""
    digest = hashlib.sha256()
    for part in (what, torch.__version__, torch.get_num_threads(), _library_fingerprint(), *inputs):
        _feed(digest, part)
    return digest.hexdigest()[:32]


def _generators() -> dict[str, Any]:
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": [version, torch.tensor(state, dtype=torch.int64), gauss_next],
    }


def _restore_generators(saved: dict[str, Any]) -> None:
    torch.set_rng_state(saved["torch"])
    keys, position, has_gauss, gauss = saved["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, state, gauss_next = saved["python"]
    random.setstate((version, tuple(state.tolist()), gauss_next))


def load(model: nn.Module, cache_key: str) -> bool:
    """Fill ``model`` (built as training would build it) from the cache and restore the global generators:
    True on a hit. False when the cache is off, has no such entry, or the entry is unreadable (it is then
    trained again and overwritten, with a warning)."""
    base = folder()
    path = base / f"{cache_key}.pt" if base else None
    if path is None or not path.is_file():
        return False
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["state"])
        model.train(saved["training"])
        _restore_generators(saved["generators"])
    except Exception as error:  # a truncated or foreign file: train instead
        warnings.warn(f"model cache: {path} is unreadable ({error}); training again", stacklevel=2)
        return False
    print(f"model cache: loaded {path.name} from {base} (${CACHE_VAR})", file=sys.stderr)
    return True


def save(model: nn.Module, cache_key: str) -> Path | None:
    """Store ``model`` and the global generators' states under ``cache_key``, when the cache is on; written to
    a temporary file first, so that a reader never sees half an entry."""
    base = folder()
    if base is None:
        return None
    base.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    entry = {"state": state, "training": model.training, "generators": _generators()}
    handle, temporary = tempfile.mkstemp(dir=base, prefix=f".{cache_key}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(entry, file)
        os.replace(temporary, base / f"{cache_key}.pt")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return base / f"{cache_key}.pt"
