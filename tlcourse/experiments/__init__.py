"""The chapter experiments as plain functions of a seed, and how to run one by name.

One module per chapter (`CHAPTERS`): a config dataclass, its tasks, a ``METHODS``-style table of the rows,
and ``run_<chapter>(seed, config, progress)`` functions that `register` names. Each returns an `ExperimentResult`;
``python -m tlcourse reproduce NAME --seed N --json PATH`` runs one, prints its table and writes
``{"experiment", "seed", "results", "seconds"}``. The expected ranges are in `tlcourse.experiments.expected`;
the decisions behind each chapter's budget and hyperparameters, in ``docs/decisions/``. Besides the chapters, the
shelf's own modules: `expected` (the ranges), `registry`, `results` and `model_cache` (an opt-in disk cache of
trained networks).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from tlcourse.experiments.expected import (
    CLAIMED_GAINS,
    autograding,
    check_gain,
    check_result,
    claim,
    expected_range,
    load_expected,
    profile,
)
from tlcourse.experiments.registry import EXPERIMENTS, LONG_EXPERIMENTS, register, seed_row
from tlcourse.experiments.results import ExperimentResult, format_table

__all__ = [
    "CHAPTERS",
    "CLAIMED_GAINS",
    "ExperimentResult",
    "autograding",
    "check_gain",
    "check_result",
    "claim",
    "expected_range",
    "experiment_names",
    "format_table",
    "load_expected",
    "profile",
    "register",
    "run_experiment",
    "seed_row",
]

#: The chapter modules, in course order; importing one registers its experiments (`_load_chapters`).
CHAPTERS = (
    "domain_shift",
    "fine_tuning",
    "dann",
    "label_shift",
    "universal_da",
    "tta",
    "domain_generalization",
    "text_transfer",
)


def _load_chapters() -> dict[str, Callable[..., ExperimentResult]]:
    """Import the chapter modules (`CHAPTERS`), which fill the registry; only then is it complete.

    Imported here, not at the top: ``tlcourse.experiments.expected`` and the tables need no chapter (nor torch).
    """
    from tlcourse.experiments import (  # noqa: F401
        dann,
        domain_generalization,
        domain_shift,
        fine_tuning,
        label_shift,
        text_transfer,
        tta,
        universal_da,
    )

    return EXPERIMENTS


def experiment_names(include_long: bool = True) -> list[str]:
    """The registered experiments; ``include_long=False`` leaves out the long ones (`register`)."""
    return sorted(name for name in _load_chapters() if include_long or name not in LONG_EXPERIMENTS)


def run_experiment(name: str, seed: int = 0, **kwargs) -> ExperimentResult:
    """Run a registered experiment by name."""
    registry = _load_chapters()
    if name not in registry:
        raise ValueError(f"Unknown experiment {name!r}; choose one of {sorted(registry)}.")
    parameters = inspect.signature(registry[name]).parameters
    if "task" in kwargs and "task" not in parameters:
        raise ValueError(f"Experiment {name!r} has a single task: run it without --task.")
    if kwargs.get("profile", "offline") != "offline" and "profile" not in parameters:
        with_profile = sorted(n for n, f in registry.items() if "profile" in inspect.signature(f).parameters)
        raise ValueError(
            f"Experiment {name!r} has only the offline profile; --profile {kwargs['profile']} "
            f"exists for {', '.join(with_profile)}."
        )
    if kwargs.get("profile") == "offline" and "profile" not in parameters:
        kwargs = {k: v for k, v in kwargs.items() if k != "profile"}
    return registry[name](seed=seed, **kwargs)
