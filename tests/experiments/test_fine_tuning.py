"""`tlcourse.experiments.fine_tuning` on tiny budgets: splits, the recipes, the JSON contract, determinism, errors,
and the ResNet-18 path with cached weights (a random state_dict under a temporary TORCH_HOME stands in
for ImageNet's)."""

import json

import pytest
import torch

from tlcourse.__main__ import main
from tlcourse.experiments import fine_tuning as exp
from tlcourse.library.data import Domain
from tlcourse.library.models import RESNET18_WEIGHTS_FILE
from tlcourse.library.train import evaluate

TINY = exp.FineTuningConfig(
    n_source=300,
    source_epochs=1,
    n_target_pool=200,
    n_test=100,
    labels_per_class=2,
    val_per_class=2,
    budgets=(1, 2),
    steps=4,
    student_widths=(2,),
    distill_epochs=1,
    uci=False,
)
REQUIRED = ("scratch", "linear_probe", "full_fine_tune", "l2_sp", "negative_transfer")


def pool_domain(per_class=(6, 6, 6), seed=0) -> Domain:
    g = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(per_class)])
    return Domain("pool", torch.rand(len(y), 1, 28, 28, generator=g), y, tuple("abc"[: len(per_class)]))


@pytest.fixture(scope="module")
def tiny_task():
    return exp.make_fine_tuning_task(0, TINY)


@pytest.fixture(scope="module")
def tiny_run():
    return exp.run_fine_tuning(seed=3, config=TINY, progress=False)


# ------------------------------------------------------------------------------------------- the data
def test_task_is_source_classes_then_target_classes(tiny_task):
    assert tiny_task.source_train.classes == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")
    assert tiny_task.target_pool.classes == ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert len(tiny_task.source_train) == 300 and len(tiny_task.target_test) == 100
    assert set(tiny_task.target_pool.y.tolist()) == set(range(5))
    assert tiny_task.source_train.x.shape[1:] == (1, 28, 28)  # grayscale photo blend


def test_class_subset_relabels_in_the_order_given():
    pool = pool_domain((2, 3, 4))
    sub = exp.class_subset(pool, (2, 0))
    assert sub.classes == ("c", "a") and sub.y.tolist() == [1, 1] + [0] * 4


def test_labelled_split_is_per_class_disjoint_and_nested():
    pool = pool_domain((8, 8, 8))
    small, val, rest = exp.labelled_split(pool, 2, 3, seed=1)
    large, val_again, _ = exp.labelled_split(pool, 4, 3, seed=1)
    assert small.class_counts().tolist() == [2, 2, 2] and val.class_counts().tolist() == [3, 3, 3]
    assert len(small) + len(val) + len(rest) == len(pool)
    images = lambda d: {tuple(row.flatten()[:20].tolist()) for row in d.x}  # noqa: E731
    assert not images(small) & images(val) and not images(small) & images(rest)
    assert torch.equal(val.x, val_again.x)  # the same validation split at every budget
    assert images(small) <= images(large)  # a larger budget contains the smaller one
    with pytest.raises(ValueError, match="need more"):
        exp.labelled_split(pool, 7, 3, seed=1)


def test_shuffled_labels_keep_images_and_label_counts():
    pool = pool_domain((5, 5, 5))
    shuffled = exp.shuffled_labels(pool, seed=0)
    assert torch.equal(shuffled.x, pool.x) and not torch.equal(shuffled.y, pool.y)
    assert shuffled.class_counts().tolist() == pool.class_counts().tolist()


def test_epochs_for_gives_the_step_budget():
    config = exp.FineTuningConfig(steps=200, batch_size=32)
    assert config.epochs_for(50) == (100, 33)  # 2 batches an epoch
    assert config.epochs_for(10_000) == (1, 3)


# ---------------------------------------------------------------------------------------- the recipes
def test_linear_probe_trains_only_the_head_and_leaves_the_source_model_alone(tiny_task):
    source = exp.pretrain(tiny_task.source_train, TINY, seed=0)
    before = {k: v.clone() for k, v in source.state_dict().items()}
    labelled, val, _ = exp.labelled_split(tiny_task.target_pool, 2, 2, seed=0)
    probe = exp.transfer("linear_probe", source, labelled, val, TINY, seed=0)
    assert all(torch.equal(before[k], v) for k, v in source.state_dict().items())
    for name, p in probe.features.named_parameters():
        assert torch.equal(p, before[f"features.{name}"]), f"linear probing changed features.{name}"
    tuned = exp.transfer("full_fine_tune", source, labelled, val, TINY, seed=0)
    assert any(not torch.equal(p, before[f"features.{n}"]) for n, p in tuned.features.named_parameters())
    assert tuned.head.out_features == 5


def test_unknown_method_and_missing_source_are_clear_errors(tiny_task):
    labelled, val, _ = exp.labelled_split(tiny_task.target_pool, 1, 1, seed=0)
    with pytest.raises(ValueError, match="full_fine_tune"):
        exp.transfer("fine_tune_everything", None, labelled, val, TINY, seed=0)
    with pytest.raises(ValueError, match="source_model"):
        exp.transfer("l2_sp", None, labelled, val, TINY, seed=0)
    with pytest.raises(ValueError, match="resnet18"):
        exp.build_network(exp.FineTuningConfig(weights="cached"), 5, 1)


def test_distilled_student_learns_the_teacher_without_labels():
    pool = pool_domain((30, 30, 30))
    x = pool.x.clone()
    x[pool.y == 0, :, :, :9] += 1.0  # easy classes: where the image is bright
    x[pool.y == 1, :, :, 19:] += 1.0
    data = pool.with_images(x.clamp(0, 1), "easy")
    torch.manual_seed(0)
    teacher = exp.build_network(TINY, 3, 1)
    exp.fit(teacher, data, epochs=15, lr=3e-3, batch_size=30, progress=False)
    assert evaluate(teacher, data) > 0.9
    torch.manual_seed(1)
    student = exp.student_classifier(4, 1, 3)
    # 40 epochs of 2 steps: 15 left the student at 67-80% agreement on some seeds, 30 reached 100% on 3 seeds.
    config = exp.FineTuningConfig(distill_epochs=40, distill_lr=3e-3)
    exp.distill(student, teacher, data.x, config, seed=0)
    agreement = (exp.predict(student, data.x).argmax(1) == exp.predict(teacher, data.x).argmax(1)).float().mean()
    assert agreement > 0.9
    assert exp.count_parameters(exp.student_classifier(4, 1, 3)) < exp.count_parameters(exp.student_classifier(8, 1, 3))


# ------------------------------------------------------------------------------------- the experiment
def test_run_has_every_required_result(tiny_run):
    results = tiny_run.results
    for name in (
        *REQUIRED,
        *exp.METHODS,
        "source",
        "negative_linear_probe",
        "student2_distilled",
        "student2_labels_only",
    ):
        assert name in results, f"missing result {name}"
    scores = ("hscore_", "logme_", "kendall_tau_")
    assert all(0.0 <= v <= 1.0 for name, v in results.items() if not name.startswith(scores))
    # The learning curve: every curve method at every budget (the headline budget is the main table's).
    curve = tiny_run.details["curve"]
    assert set(curve) == set(TINY.curve_methods)
    assert all(set(points) == {1} for points in curve.values())
    assert "full_fine_tune_n1" in results and "full_fine_tune_n2" not in results
    assert [row for row, _ in tiny_run.table][: len(exp.METHODS)] == list(exp.METHODS)


def test_run_scores_every_candidate_source_and_reuses_the_fine_tunes(tiny_run):
    results = tiny_run.results
    for source in ("good", "shuffled", "random"):  # TINY has no UCI pair
        assert 0 <= results[f"hscore_{source}"] <= 4 + 1e-9  # at most K - 1 for the 5 target classes
        assert results[f"logme_{source}"] < 0  # a log-likelihood per image of 0/1 targets
    assert "hscore_uci" not in results and "hscore_imagenet" not in results
    assert results["finetuned_good"] == results["full_fine_tune"]
    assert results["finetuned_shuffled"] == results["negative_transfer"]
    assert results["finetuned_random"] == results["scratch"]
    assert all(-1 <= results[f"kendall_tau_{score}"] <= 1 for score in ("hscore", "logme"))


def test_the_random_candidate_is_where_scratch_starts(monkeypatch):
    labelled, val, _ = exp.labelled_split(pool_domain((6, 6, 6)), 2, 2, seed=0)
    start = {}
    monkeypatch.setattr(exp, "fine_tune", lambda model, *args, **kwargs: start.update(model.state_dict()))
    exp.transfer("scratch", None, labelled, val, TINY, seed=5)
    random = exp.random_network(TINY, labelled.num_classes, 1, seed=5).state_dict()
    assert start.keys() == random.keys() and all(torch.equal(start[k], random[k]) for k in random)
    other = exp.random_network(TINY, labelled.num_classes, 1, seed=6).state_dict()
    assert not torch.equal(other["features.0.weight"], random["features.0.weight"])


def test_rank_correlations_known_answers():
    accuracy = {"finetuned_a": 0.9, "finetuned_b": 0.6, "finetuned_c": 0.3, "finetuned_d": 0.1}
    alike = {"hscore_a": 4.0, "hscore_b": 3.0, "hscore_c": 2.0, "hscore_d": 1.0}
    reversed_ = {"logme_a": -0.9, "logme_b": -0.7, "logme_c": -0.5, "logme_d": -0.1}
    taus = exp.rank_correlations({**accuracy, **alike, **reversed_}, ("a", "b", "c", "d"))
    assert taus == pytest.approx({"kendall_tau_hscore": 1.0, "kendall_tau_logme": -1.0})
    alike["hscore_c"], alike["hscore_d"] = 1.0, 2.0  # one pair of six swapped: (5 - 1) / 6
    assert exp.rank_correlations({**accuracy, **alike, **reversed_}, ("a", "b", "c", "d"))[
        "kendall_tau_hscore"
    ] == pytest.approx(2 / 3)


def test_uci_candidate_is_pretrained_on_the_ten_digits():
    model = exp.pretrain_uci_source(exp.FineTuningConfig(uci_source_epochs=1), seed=0, in_channels=1)
    assert model.head[-1].out_features == 10
    assert exp.predict(model, torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_same_seed_same_results(tiny_run):
    again = exp.run_fine_tuning(seed=3, config=TINY, progress=False)
    assert again.results == tiny_run.results


def test_reproduce_writes_the_json(monkeypatch, tmp_path, capsys):
    from tlcourse import experiments

    experiments.experiment_names()  # fill the registry before patching it
    monkeypatch.setattr(exp, "FineTuningConfig", lambda: TINY)
    path = tmp_path / "ft.json"
    assert main(["reproduce", "fine-tuning", "--seed", "1", "--json", str(path), "--quiet"]) == 0
    data = json.loads(path.read_text())
    assert data["experiment"] == "fine-tuning" and data["seed"] == 1
    assert set(REQUIRED) <= set(data["results"])
    assert "negative_transfer" in capsys.readouterr().out


# ------------------------------------------------------------------------------ ResNet-18, cached weights
@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


RESNET = exp.FineTuningConfig(arch="resnet18", weights="cached", source_epochs=0, steps=2, batch_size=8, uci=False)


def test_resnet_path_loads_the_cached_weights(torch_home):
    from torchvision.models import resnet18

    torch.manual_seed(123)
    fake = resnet18(weights=None).state_dict()  # stands in for ImageNet's weights
    path = torch_home / "hub" / "checkpoints" / RESNET18_WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.save(fake, path)

    source = pool_domain((4, 4, 4))
    model = exp.pretrain(source, RESNET, seed=0)  # source_epochs=0: the cached weights as they are
    stem = model.features[1][0]
    assert torch.equal(stem.weight, fake["conv1.weight"])
    assert torch.equal(model.features[5][1].conv2.weight, fake["layer4.1.conv2.weight"])

    labelled, val, _ = exp.labelled_split(pool_domain((6, 6)), 2, 2, seed=0)
    tuned = exp.transfer("l2_sp", model, labelled, val, RESNET, seed=0)
    assert tuned.head.out_features == 2
    assert torch.equal(model.features[1][0].weight, fake["conv1.weight"])  # the source model is untouched
    scratch = exp.transfer("scratch", None, labelled, val, RESNET, seed=0)
    assert not torch.equal(scratch.features[1][0].weight, fake["conv1.weight"])  # scratch is random


def test_full_profile_adds_the_imagenet_candidate(torch_home):
    from torchvision.models import resnet18

    torch.manual_seed(7)
    fake = resnet18(weights=None).state_dict()
    path = torch_home / "hub" / "checkpoints" / RESNET18_WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.save(fake, path)
    source = exp.build_network(RESNET, 5, 3)
    candidates = exp.candidate_sources(RESNET, source, source, 5, 3, seed=0)
    assert list(candidates) == ["good", "shuffled", "random", "imagenet"]
    assert torch.equal(candidates["imagenet"].features[1][0].weight, fake["conv1.weight"])
    assert not torch.equal(candidates["random"].features[1][0].weight, fake["conv1.weight"])
    path.unlink()
    with pytest.raises(FileNotFoundError, match=RESNET18_WEIGHTS_FILE):
        exp.candidate_sources(RESNET, source, source, 5, 3, seed=0)


def test_resnet_path_without_the_cached_file_is_a_clear_error(torch_home):
    with pytest.raises(FileNotFoundError, match=RESNET18_WEIGHTS_FILE):
        exp.pretrain(pool_domain((4, 4)), RESNET, seed=0)


def test_random_start_needs_pretraining():
    with pytest.raises(ValueError, match="at least one epoch"):
        exp.pretrain(pool_domain((4, 4)), exp.FineTuningConfig(source_epochs=0), seed=0)
