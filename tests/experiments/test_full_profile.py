"""``--profile full``: the chapter experiments on the real benchmarks, tested on tiny fake benchmark files
served from the loopback address (the ``serve`` fixture of tests/conftest.py), so that CI needs no network."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tlcourse.__main__ import main
from tlcourse.experiments import dann as exp
from tlcourse.experiments import fine_tuning, run_experiment
from tlcourse.library.data import fetch_benchmark

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def tiny(task: str, **overrides) -> exp.DANNConfig:
    """The full profile's settings at a budget that the fake files allow."""
    return exp.full_config(
        task, n_val=2, epochs=1, batch_size=2, methods=("source_only", "dann", "target_only"), **overrides
    )


def test_full_config_is_the_offline_network_at_the_paper_sizes():
    config = exp.full_config("svhn-mnist")
    offline = exp.DANNConfig()
    assert (config.arch, config.lr, config.input_norm) == (offline.arch, offline.lr, offline.input_norm)
    assert config.epochs > offline.epochs and config.n_source > 70_000  # every image the benchmark has
    assert config.discriminator_hidden == (1024, 1024)  # the paper's for SVHN
    assert exp.full_config("mnist-mnistm").discriminator_hidden == (100,)
    with pytest.raises(ValueError, match="mnist-mnistm"):
        exp.full_config("photo-blend")


def test_every_full_task_names_fetchable_benchmarks_and_a_paper_row():
    from tlcourse.library.data import BENCHMARKS

    for name, pair in exp.FULL_TASKS.items():
        assert pair.source in BENCHMARKS and pair.target in BENCHMARKS, name
        assert {"source_only", "dann"} <= set(pair.paper) and all(0 < v < 100 for v in pair.paper.values())


@pytest.mark.parametrize(
    "task, source, target", [("mnist-mnistm", "mnist", "mnist-m"), ("usps-mnist", "usps", "mnist")]
)
def test_full_profile_runs_the_chapter_on_the_benchmark_files(serve, task, source, target):
    files = {source: serve(source), target: serve(target)}
    for name in files:
        fetch_benchmark(name, progress=False)
    data = exp.make_dann_task(0, tiny(task))
    n_train = len(files[source]["y"]["train"])
    assert (len(data.source), len(data.source_val)) == (n_train - 2, 2)
    assert len(data.target_train) == len(files[target]["y"]["train"])
    assert data.target_test.y.tolist() == [int(v) for v in files[target]["y"]["test"]]  # all of the test split
    assert data.source.x.shape[1:] == data.target_test.x.shape[1:] == (3, 28, 28)  # one network for every pair

    result = run_experiment("dann", seed=0, profile="full", task=task, config=tiny(task), progress=False)
    assert result.experiment == f"dann-{task}"
    assert set(result.results) == {"source_only", "dann", "target_only"}
    assert all(0.0 <= v <= 1.0 for v in result.results.values())
    paper_column = exp.FULL_TASKS[task].paper_title
    assert dict(result.table)["dann"][paper_column] == exp.FULL_TASKS[task].paper["dann"]


def test_full_profile_without_the_data_says_how_to_fetch_it(isolated_data_roots, capsys, tmp_path):
    out = tmp_path / "run.json"
    assert main(["reproduce", "dann", "--profile", "full", "--quiet", "--json", str(out)]) != 0
    err = capsys.readouterr().err
    assert "data fetch mnist" in err and "Traceback" not in err
    assert not out.exists() and not isolated_data_roots["env"].exists()  # nothing written


def test_profile_and_task_mismatches_are_clear_errors(capsys):
    assert main(["reproduce", "dann", "--profile", "full", "--task", "photo-blend"]) == 2
    assert "mnist-mnistm" in capsys.readouterr().err
    assert main(["reproduce", "dann", "--task", "svhn-mnist"]) == 2
    assert "--profile full" in capsys.readouterr().err
    assert main(["reproduce", "label-shift", "--profile", "full"]) == 2
    err = capsys.readouterr().err
    assert "only the offline profile" in err and "dann" in err and "fine-tuning" in err
    with pytest.raises(SystemExit):
        main(["reproduce", "dann", "--profile", "gpu"])


def test_fine_tuning_full_profile_is_resnet18_from_the_cached_weights(monkeypatch, tmp_path, capsys):
    assert fine_tuning.FULL_CONFIG.arch == "resnet18" and fine_tuning.FULL_CONFIG.weights == "cached"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache
    small = replace(fine_tuning.FULL_CONFIG, n_source=20, n_target_pool=40, n_test=10, uci=False)
    monkeypatch.setattr(fine_tuning, "FULL_CONFIG", small)
    assert main(["reproduce", "fine-tuning", "--profile", "full", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "resnet18-f37072fd.pth" in err and "IMAGENET1K_V1" in err


def test_notebook_switch_turns_the_offline_range_checks_off(monkeypatch, capsys):
    from tlcourse.experiments.expected import check_result, profile

    assert profile() == "offline"
    with pytest.raises(AssertionError, match="outside its expected range"):
        check_result("dann", "dann", -1.0)
    monkeypatch.setenv("TLCOURSE_PROFILE", "full")
    assert profile() == "full" and check_result("dann", "dann", -1.0) == -1.0
    assert "full profile" in capsys.readouterr().out
    monkeypatch.setenv("TLCOURSE_PROFILE", "gpu")
    with pytest.raises(ValueError, match="offline' or 'full"):
        profile()


def test_notebook_configs_follow_the_profile_and_grading_switches(monkeypatch):
    from tlcourse.experiments import dann, domain_generalization, fine_tuning, label_shift

    monkeypatch.delenv("TLCOURSE_PROFILE", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert dann.notebook_config() == dann.NOTEBOOK_CONFIG
    assert fine_tuning.notebook_config() == fine_tuning.FineTuningConfig()
    assert label_shift.notebook_config() == label_shift.LabelShiftConfig()
    assert domain_generalization.notebook_config() == domain_generalization.DGConfig()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert fine_tuning.notebook_config() == fine_tuning.GRADING_CONFIG
    assert label_shift.notebook_config() == label_shift.GRADING_CONFIG
    assert domain_generalization.notebook_config() == domain_generalization.GRADING_CONFIG
    monkeypatch.setenv("TLCOURSE_PROFILE", "full")
    assert dann.notebook_config() == dann.full_config("mnist-mnistm")
    assert fine_tuning.notebook_config() == fine_tuning.FULL_CONFIG


@pytest.mark.parametrize("chapter", sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_dir()))
def test_each_notebook_takes_its_budget_from_its_chapter_module(chapter):
    import nbformat

    (path,) = (NOTEBOOKS / chapter).glob("*.ipynb")
    setup = nbformat.read(path, as_version=4).cells[1].source
    assert "config = chapter.notebook_config()" in setup and " as chapter" in setup


def test_readme_documents_each_full_task_with_the_papers_numbers():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, pair in exp.FULL_TASKS.items():
        (line,) = [row for row in readme.splitlines() if f"--task {name}`" in row]
        numbers = " / ".join(
            f"{pair.paper[k]:.2f}" if k in pair.paper else "–" for k in ("source_only", "dann", "target_only")
        )
        assert numbers in line and f"{pair.source} → {pair.target}" in line, line
