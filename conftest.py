"""How `pytest` shares the tests between the cores (pytest-xdist; pyproject.toml's addopts: ``-n auto --dist
loadgroup``).

One worker a core and one more (`pytest_xdist_auto_num_workers`), each with torch at one thread
(``OMP_NUM_THREADS=1``, which the notebook and nbgrader kernels they start inherit; the expected ranges were
measured at one thread). What must run in one process is a group, handed to one worker whole:

- every cell of a notebook (nbval runs a notebook's cells in order, in one kernel);
- the tests of a module that share a module-scoped fixture, one group for each of the fixture's parameters
  (each graded chapter of tests/classroom/test_grading_pipeline.py is a group of its own, so that two
  chapters are graded side by side, and no chapter is graded twice).

Every other test goes on its own to whichever worker is free. The groups (and tests) known to take longest
are handed out first (`EXPECTED_SECONDS`), so that no long group starts while the other worker is nearly done.

The workers name each test's group (they have the fixtures; the controller sees only test ids) in a file
that `GroupScheduling`, on the controller, reads. (xdist's own ``xdist_group`` marks do not group anything
with pytest 9.2, whose test ids no longer come from the attribute xdist changes.) ``-n 0`` runs every test
in one process, in the usual order.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Seconds by group (or test), as measured in one worker of a full run (2026-11-28, three workers on the course's
# 2-core CPU machine; most from a run with the profiling plugin of the README's table, the groups changed since then
# from the next run's --durations: chapter 2's pipeline with its source network cached, the sandbox's hostile class
# without the slow recursion, the student edition's one run of chapter 1, the shorter time cap). A group not named
# here counts as short. Only their order matters: the longest first.
EXPECTED_SECONDS = {
    "notebooks/02-fine-tuning/fine_tuning.ipynb": 221,
    "tests/classroom/test_grading_pipeline.py::graded=fine_tuning": 190,
    "tests/classroom/test_sandbox.py": 150,  # chapter 1's graded cells, hostile students, through the sandbox
    "tests/classroom/test_grading_pipeline.py::graded=dann": 138,
    "notebooks/03-dann/dann.ipynb": 136,
    # A learner in JupyterLab and a class on the local hub, one chromium and one hub.
    "tests/browser/test_browser.py": 88,
    "notebooks/04-label-shift/label_shift.ipynb": 86,
    "tests/classroom/test_student_edition.py": 75,  # chapter 1 once, in the edition
    "notebooks/05-domain-generalization/domain_generalization.ipynb": 64,
    "tests/classroom/test_grading_pipeline.py::graded=label_shift": 56,
    "notebooks/06-text-transfer/text_transfer.ipynb": 55,
    "tests/classroom/test_grading_pipeline.py::graded=domain_generalization": 54,
    "tests/classroom/test_grading_hostile.py": 54,
    "tests/classroom/test_grading_pipeline.py::graded=text_transfer": 53,
    "tests/classroom/test_sandbox.py::test_a_submission_has_a_time_cap": 41,  # mostly asleep
    "notebooks/01-domain-shift/domain_shift.ipynb": 40,
    "tests/experiments/test_domain_shift.py::test_domain_shift_lands_in_its_expected_ranges": 39,
    "tests/classroom/test_grading_pipeline.py::graded=domain_shift": 38,
}

GROUPS_KEY = "tlcourse_groups_folder"  # where the workers write each test's group (xdist's workerinput)


def group_of(item: pytest.Item) -> str | None:
    """The group ``item`` must run in, or None where it may run on its own."""
    path = item.path.relative_to(item.config.rootpath).as_posix()
    if item.path.suffix == ".ipynb":
        return path
    info = getattr(item, "_fixtureinfo", None)
    shared = sorted(
        name
        for name, fixturedefs in (info.name2fixturedefs.items() if info else ())
        if fixturedefs and fixturedefs[-1].scope in ("class", "module", "package")
    )
    if not shared:
        return None
    callspec = getattr(item, "callspec", None)
    params = [(name, callspec.params[name]) for name in shared if callspec is not None and name in callspec.params]
    return path + "".join(f"::{name}={value.stem if isinstance(value, Path) else value}" for name, value in params)


# ----------------------------------------------------------------------------------------- in a worker
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # one thread, here and in the kernels this worker starts
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(trylast=True)  # after deselection: the ids as the controller gets them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    folder = getattr(config, "workerinput", {}).get(GROUPS_KEY)
    if folder is None:
        return
    groups = {item.nodeid: group_of(item) for item in items}
    items.sort(key=lambda item: -EXPECTED_SECONDS.get(groups[item.nodeid] or item.nodeid, 0))  # stable sort
    target = Path(folder) / f"{config.workerinput['workerid']}.json"
    target.with_suffix(".tmp").write_text(json.dumps(groups))
    target.with_suffix(".tmp").replace(target)


# -------------------------------------------------------------------------------------- in the controller
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker a core, and one more (pyproject's ``--maxprocesses`` caps the total).

    The extra worker runs while another waits: on a kernel that sleeps (the sandbox's time cap), on nbgrader's
    gradebook, on a process starting. On the course's 2-core machine it is the difference between a core
    idling and not. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides where it is set.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").isdigit():
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    return len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) + 1


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    config = node.config
    if not hasattr(config, "_tlcourse_groups_folder"):
        config._tlcourse_groups_folder = tempfile.mkdtemp(prefix="tlcourse-xdist-groups-")
    node.workerinput[GROUPS_KEY] = config._tlcourse_groups_folder


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = getattr(config, "_tlcourse_groups_folder", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """xdist's scheduling by scope, with the workers' groups as the scopes, in the workers' order."""

        def __init__(self, config: pytest.Config, log=None) -> None:
            super().__init__(config, log)
            self.config.option.loadscopereorder = False  # keep the workers' order: the longest groups first
            self.groups: dict[str, str | None] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # every worker has collected (and written its file) by the first call
                self.groups = {}
                for path in sorted(Path(config._tlcourse_groups_folder).glob("*.json")):
                    self.groups.update(json.loads(path.read_text()))
            return self.groups.get(nodeid) or nodeid

    return GroupScheduling(config, log)
