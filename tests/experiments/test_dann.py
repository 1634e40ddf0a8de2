"""`tlcourse.experiments.dann`: tasks, the rows' table, the JSON contract, determinism and --task."""

import json
import math
from dataclasses import replace

import pytest
import torch

from tlcourse.__main__ import main
from tlcourse.experiments import dann as exp
from tlcourse.experiments import run_experiment

TINY = exp.DANNConfig(n_source=256, n_target=256, n_val=64, n_test=64, epochs=1, batch_size=32, dirt_t_epochs=1)


@pytest.fixture
def tiny_dann(monkeypatch):
    """`reproduce dann` on a few hundred images, to test the plumbing in seconds."""
    from tlcourse import experiments

    experiments.experiment_names()  # fill the registry before patching it
    monkeypatch.setattr(exp, "DANNConfig", lambda: TINY)


def test_photo_blend_task_is_disjoint():
    task = exp.make_photo_blend_task(0, TINY)
    assert len(task.source) == 256 and len(task.source_val) == 64 and len(task.target_train) == 256
    assert task.target_train.name == task.target_test.name == "photo_blend"
    assert task.source.x.shape[1:] == task.target_test.x.shape[1:] == (3, 28, 28)
    # Source images are grey, target images are not: the blend took place.
    assert torch.equal(task.source.x[:, 0], task.source.x[:, 1])
    assert not torch.equal(task.target_train.x[:, 0], task.target_train.x[:, 1])
    with pytest.raises(ValueError, match="training images"):
        exp.make_photo_blend_task(0, exp.DANNConfig(n_source=60_000))


def test_font_digits_task():
    task = exp.make_font_digits_task(0, exp.DANNConfig(n_source=300, n_val=50))
    assert len(task.source) == 300 and len(task.source_val) == 50
    assert len(task.target_train) + len(task.target_test) == 1797  # the UCI digits, split in half
    assert task.target_test.classes == task.source.classes


def test_gap_closed():
    assert exp.gap_closed(0.6, 0.4, 0.8) == pytest.approx(0.5)
    assert exp.gap_closed(0.4, 0.4, 0.8) == 0.0
    assert math.isnan(exp.gap_closed(0.5, 0.8, 0.7))


def test_unknown_task_and_method_are_clear_errors():
    with pytest.raises(ValueError, match="photo-blend"):
        exp.make_dann_task(0, exp.DANNConfig(task="svhn"))
    with pytest.raises(ValueError, match="source_only"):
        exp.build_method("adabn", TINY, 10)


@pytest.mark.parametrize("name", sorted(exp.FIRST_PHASE))
def test_second_phase_is_the_same_on_a_reused_first_phase(name):
    """`run_dann` hands a two-phase row its first phase from the table; training it afresh gives the same model."""
    task = exp.make_photo_blend_task(0, TINY)
    first = exp.run_method(exp.FIRST_PHASE[name], task, TINY, seed=3)
    reused, _ = exp.run_method(name, task, TINY, seed=3, first_phase=first)
    fresh, _ = exp.run_method(name, task, TINY, seed=3)
    for a, b in zip(reused.model.parameters(), fresh.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(next(first[0].model.parameters()), next(fresh.model.parameters()))  # phase 2 trained


def test_same_seed_same_results():
    config = exp.DANNConfig(**{**TINY.__dict__, "methods": ("dann", "entropy_min")})
    a = exp.run_dann(seed=1, config=config, progress=False).results
    b = exp.run_dann(seed=1, config=config, progress=False).results
    assert a == b


@pytest.mark.parametrize("task, name", [(None, "dann"), ("font-digits", "dann-font-digits")])
def test_reproduce_writes_every_row(tiny_dann, tmp_path, capsys, task, name):
    path = tmp_path / "dann.json"
    args = ["reproduce", "dann", "--seed", "2", "--json", str(path), "--quiet"]
    assert main(args + (["--task", task] if task else [])) == 0
    data = json.loads(path.read_text())
    assert data["experiment"] == name and data["seed"] == 2
    assert list(data["results"]) == list(exp.METHODS)
    assert all(0.0 <= v <= 1.0 for v in data["results"].values())
    printed = capsys.readouterr().out
    assert "gap closed %" in printed and "target_only (oracle)" in printed
    assert ("81.49" in printed) == (task is None)  # the paper's MNIST-M numbers beside the photo-blend task


def test_font_digits_alias_runs_the_same_experiment(tiny_dann):
    a = run_experiment("dann-font-digits", seed=0, progress=False)
    b = run_experiment("dann", seed=0, progress=False, task="font-digits")
    assert a.experiment == b.experiment == "dann-font-digits" and a.results == b.results


def test_long_budget_runs_the_papers_table_under_its_own_name(monkeypatch, tmp_path, capsys):
    """`reproduce dann-long` (here at a tiny size): the paper's three rows, its own expected ranges, and
    left out of the benchmark, which it would hold up for half an hour."""
    from tlcourse import experiments

    assert "dann-long" in experiments.experiment_names()
    assert "dann-long" not in experiments.experiment_names(include_long=False)
    assert "dann" in experiments.experiment_names(include_long=False)
    tiny = replace(TINY, methods=exp.LONG_METHODS)
    monkeypatch.setattr(exp, "long_config", lambda: tiny)
    path = tmp_path / "long.json"
    assert main(["reproduce", "dann-long", "--seed", "1", "--json", str(path), "--quiet"]) == 0
    data = json.loads(path.read_text())
    assert data["experiment"] == "dann-long" and list(data["results"]) == ["source_only", "dann", "target_only"]
    assert data["results"] == exp.run_dann(1, config=tiny, progress=False).results  # the same experiment
    printed = capsys.readouterr().out
    assert "dann-long (seed 1" in printed and "gap closed %" in printed and "81.49" in printed
    assert main(["reproduce", "dann-long", "--task", "font-digits"]) == 2  # one task only
    assert "without --task" in capsys.readouterr().err


def test_long_budget_fits_fashion_mnist():
    config = exp.long_config()
    assert config.methods == exp.LONG_METHODS and config.epochs > exp.DANNConfig().epochs
    task = exp.make_photo_blend_task(0, config)
    assert (len(task.source), len(task.source_val), len(task.target_train)) == (29_000, 1_000, 29_000)
    assert len(task.target_test) == exp.DANNConfig().n_test


def test_instance_standardize_by_hand():
    from tlcourse.library.models import InstanceStandardize, build_classifier

    x = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]], [[1.0, 1.0], [1.0, 1.0]]]])  # (1, 2, 2, 2)
    out = InstanceStandardize()(x)
    # Channel 0: mean 3, population sd sqrt(5); channel 1 is constant and maps to 0.
    expected = (torch.tensor([0.0, 2.0, 4.0, 6.0]) - 3) / 5**0.5
    assert torch.allclose(out[0, 0].flatten(), expected, atol=1e-5)
    assert torch.equal(out[0, 1], torch.zeros(2, 2))
    # Each image's brightness and contrast, per channel, no longer reach the network.
    images = torch.rand(4, 3, 28, 28)
    model = build_classifier("lenet", input_norm="instance").eval()
    with torch.no_grad():
        assert torch.allclose(model(images), model(3 * images + 0.5), atol=1e-4)
    with pytest.raises(ValueError, match="input_norm"):
        build_classifier("lenet", input_norm="batch")


def test_only_the_dann_row_takes_the_new_adam_betas_and_the_long_run_keeps_its_own():
    """``dann_betas`` (chosen on development seeds, docs/decisions/dann.md) is the dann row's alone; the
    rows built on DANN and ``dann-long`` (measured before) keep Adam's defaults."""
    from tlcourse.experiments.dann import METHODS, DANNConfig, long_config
    from tlcourse.library.models import build_classifier

    config = DANNConfig()
    betas = {
        name: {tuple(g["betas"]) for g in METHODS[name](build_classifier("lenet_bn"), config).optimizer.param_groups}
        for name in ("dann", "entropy_min", "vada")
    }
    assert betas == {"dann": {(0.5, 0.999)}, "entropy_min": {(0.9, 0.999)}, "vada": {(0.9, 0.999)}}
    assert long_config().dann_betas == (0.9, 0.999) and config.dann_betas == (0.5, 0.999)


def test_mcd_and_dan_rows_take_their_config():
    """The two rows of issue 24: MCD's step-C count and DAN's MMD weight come from `DANNConfig`."""
    from tlcourse.library.methods import DAN, MCD

    config = replace(exp.DANNConfig(), mcd_num_k=3, mmd_weight=0.5, lr=2e-3)
    mcd, dan = exp.build_method("mcd", config, 10), exp.build_method("dan", config, 10)
    assert isinstance(mcd, MCD) and mcd.num_k == 3 and mcd.lr == 2e-3
    assert isinstance(dan, DAN) and dan.mmd_weight == 0.5 and dan.lr == 2e-3
    assert exp.DANNConfig().mcd_num_k == 1  # docs/decisions/dann.md: a row of at most about two DANN rows
