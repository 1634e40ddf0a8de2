"""How a chapter module makes an experiment reachable by name (`register`), and the seed rule of its rows
(`seed_row`).

Every chapter module imports this one; the package (`tlcourse.experiments`) imports the chapter modules and
looks experiments up by name (`run_experiment`, `experiment_names`).
"""

from __future__ import annotations

from collections.abc import Callable

from tlcourse.experiments.results import ExperimentResult

#: ``{name: experiment function}``, filled by `register` as the chapter modules are imported.
EXPERIMENTS: dict[str, Callable[..., ExperimentResult]] = {}

#: Experiments that run far longer than a laptop's few minutes (``register(..., long=True)``).
LONG_EXPERIMENTS: set[str] = set()


def register(
    name: str, *, long: bool = False
) -> Callable[[Callable[..., ExperimentResult]], Callable[..., ExperimentResult]]:
    """Decorator: make an experiment function reachable as ``python -m tlcourse reproduce NAME``.

    The function takes ``seed`` and ``progress`` keyword arguments and returns an `ExperimentResult`.
    ``long``: it runs for half an hour or more, so ``python -m tlcourse benchmark`` leaves it out.
    """

    def add(function: Callable[..., ExperimentResult]) -> Callable[..., ExperimentResult]:
        if name in EXPERIMENTS and EXPERIMENTS[name] is not function:
            raise ValueError(f"two experiments are registered as {name!r}")
        EXPERIMENTS[name] = function
        if long:
            LONG_EXPERIMENTS.add(name)
        return function

    return add


def seed_row(seed: int) -> None:
    """Reset Python's, NumPy's and torch's global generators to ``seed`` before one row of a table trains.

    Each experiment calls this, and only this, at the start of every row (a method, a held-out domain, a
    pretraining, a phase of a two-phase method), just before the row builds its model. So a row draws the
    same random numbers whether it runs alone (a notebook cell, a test) or after every other row of the
    full run, and adding, removing or reordering rows changes no other row's number.

    What still draws from the global generators, and is therefore pinned by this call: the initial
    weights of every network (`tlcourse.library.models`, heads and domain discriminators included),
    VAT's random directions, `colour_and_shift`'s shift and colours when chapter 3 passes it no generator
    (`tlcourse.library.modules.colour`), and Mixup's pairing and mixing weights
    (`tlcourse.library.methods.generalization.InterDomainMixup`).
    Data and minibatch orders come from the ``seed`` arguments of the data builders and training loops,
    not from here.
    """
    # Imported here so that `tlcourse.experiments` and its expected ranges load without torch.
    from tlcourse.library.train import seed_everything

    seed_everything(seed)
