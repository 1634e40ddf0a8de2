"""tlcourse.library.plots: each function returns a Figure with the expected artists, titles and labels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from tlcourse.library import plots
from tlcourse.library.data import Domain

CLASSES = ("zero", "one", "two")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _domain(name: str, channels: int, n: int = 12, seed: int = 0) -> Domain:
    g = torch.Generator().manual_seed(seed)
    return Domain(name, torch.rand(n, channels, 6, 6, generator=g), torch.arange(n) % 3, CLASSES)


def _image_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.images]


# ---------------------------------------------------------------- show_domains


def test_show_domains_grid_of_gray_and_colour_images():
    gray, colour = _domain("gray", 1), _domain("colour", 3, seed=1)
    fig = plots.show_domains([gray, colour], n=4)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 8
    rows = np.array(fig.axes).reshape(2, 4)
    assert [rows[r, 0].get_ylabel() for r in range(2)] == ["gray", "colour"]
    assert all(ax.get_title() in CLASSES for ax in fig.axes)
    assert rows[0, 0].images[0].get_array().shape == (6, 6)
    assert rows[1, 0].images[0].get_array().shape == (6, 6, 3)


def test_show_domains_titles_are_the_classes_of_the_shown_images():
    # each image is constant, equal to its label / 10: the title must name the class of that image
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    domain = Domain("d", (y.float() / 10).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone(), y, CLASSES)
    fig = plots.show_domains({"named by key": domain}, n=6, seed=3)
    assert fig.axes[0].get_ylabel() == "named by key"
    for ax in fig.axes:
        label = round(float(ax.images[0].get_array().mean()) * 10)
        assert ax.get_title() == CLASSES[label]


def test_show_domains_same_seed_same_images_and_small_domain():
    domain = _domain("d", 1, n=20)
    first = [ax.images[0].get_array().sum() for ax in plots.show_domains([domain], n=5, seed=7).axes]
    again = [ax.images[0].get_array().sum() for ax in plots.show_domains([domain], n=5, seed=7).axes]
    assert first == again
    fig = plots.show_domains([_domain("tiny", 3, n=2)], n=4)  # fewer images than columns
    assert len(_image_axes(fig)) == 2


# ---------------------------------------------------------------- plot_embedding


def _features():
    g = torch.Generator().manual_seed(0)
    feats = {"source": torch.randn(40, 8, generator=g), "target": torch.randn(30, 8, generator=g) + 3}
    labels = {"source": torch.arange(40) % 3, "target": torch.arange(30) % 3}
    return feats, labels


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_plot_embedding_two_panels_with_labels(method):
    feats, labels = _features()
    fig = plots.plot_embedding(feats, labels, method=method, class_names=CLASSES)
    assert len(fig.axes) == 2
    by_domain, by_class = fig.axes
    assert by_domain.get_title() == "coloured by domain"
    assert len(by_domain.collections) == 2  # one scatter per domain
    assert [t.get_text() for t in by_domain.get_legend().get_texts()] == ["source", "target"]
    assert [len(c.get_offsets()) for c in by_domain.collections] == [40, 30]
    assert "class" in by_class.get_title()
    assert [t.get_text() for t in by_class.get_legend().get_texts()] == [*CLASSES, "source", "target"]
    expected_axis = "PC 1" if method == "pca" else "t-SNE 1"
    assert by_domain.get_xlabel() == expected_axis


def test_plot_embedding_one_panel_subsampled():
    feats, _ = _features()
    fig = plots.plot_embedding(feats, method="pca", max_points=10)
    assert len(fig.axes) == 1
    assert [len(c.get_offsets()) for c in fig.axes[0].collections] == [10, 10]


def test_plot_embedding_rejects_unknown_method():
    feats, _ = _features()
    with pytest.raises(ValueError, match="method"):
        plots.plot_embedding(feats, method="umap")


# ---------------------------------------------------------------- bar_chart


def test_bar_chart_bars_values_references_and_errors():
    values = {"source only": 0.43, "DANN": 0.62, "target only": 0.82}
    fig = plots.bar_chart(
        values, title="MNIST -> MNIST-M", reference={"DANN": 0.57}, errors={"DANN": 0.02, "source only": 0.01}
    )
    ax = fig.axes[0]
    assert ax.get_title() == "MNIST -> MNIST-M"
    assert ax.get_ylabel() == "accuracy"
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.43, 0.62, 0.82])
    assert [t.get_text() for t in ax.texts] == ["43.0%", "62.0%", "82.0%"]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == list(values)
    references = [c for c in ax.collections if c.get_label() == "reference"]
    assert len(references) == 1 and references[0].get_offsets()[0][1] == pytest.approx(0.57)
    (errorbars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    lengths = [seg[1][1] - seg[0][1] for seg in errorbars.lines[2][0].get_segments()]
    assert lengths == pytest.approx([0.02, 0.04, 0.0])  # +- error, 0 where none was given


def test_bar_chart_plain_numbers_and_unknown_reference():
    fig = plots.bar_chart({"a": 1.5, "b": 12.0}, ylabel="MMD^2")
    assert [t.get_text() for t in fig.axes[0].texts] == ["1.5", "12"]
    with pytest.raises(ValueError, match="'c'"):
        plots.bar_chart({"a": 0.5}, reference={"c": 0.4})


# ---------------------------------------------------------------- plot_curves


def test_plot_curves_lines_labels_and_x():
    curves = {"train": [1.0, 0.5, 0.3], "validation": [1.1, 0.7, 0.6]}
    fig = plots.plot_curves(curves, ylabel="loss", title="history")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss" and ax.get_title() == "history"
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]

    fig = plots.plot_curves({"DANN": [0.5, 0.6, 0.7]}, x=[10, 100, 1000], xlabel="labelled target images", logx=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert list(ax.get_lines()[0].get_xdata()) == [10, 100, 1000]


def test_plot_curves_rejects_mismatched_x():
    with pytest.raises(ValueError, match="3 values but x has 2"):
        plots.plot_curves({"a": [1, 2, 3]}, x=[1, 2])


# ---------------------------------------------------------------- plot_confusion


def test_plot_confusion_normalised_rows():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 1, 2, 2, 0, 2])
    fig = plots.plot_confusion(labels, predictions, CLASSES, title="target")
    ax = fig.axes[0]
    assert ax.get_title() == "target"
    matrix = ax.images[0].get_array()
    np.testing.assert_allclose(matrix, [[0.5, 0.5, 0], [0, 1, 0], [0.25, 0, 0.75]])
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert len(fig.axes) == 2  # the matrix and its colour bar
    assert ax.images[0].get_clim() == (0.0, 1.0)  # fractions on one scale, comparable across domains


def test_plot_confusion_counts_keep_absent_classes():
    fig = plots.plot_confusion([0, 0, 1], [0, 1, 1], CLASSES, normalize=False)
    assert fig.axes[0].images[0].get_array().shape == (3, 3)
    assert fig.axes[0].images[0].get_array().sum() == 3


# ---------------------------------------------------------------- scatter_with_fit


def test_scatter_with_fit_points_names_and_line():
    x, y = [0.1, 0.5, 1.0, 1.5], [1.0, 5.0, 10.0, 15.0]  # exactly y = 10 x
    fig = plots.scatter_with_fit(
        x, y, ["a", "b", "c", "d"], xlabel="MMD^2", ylabel="accuracy drop (points)", title="distance vs drop"
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "MMD^2" and ax.get_title() == "distance vs drop"
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c", "d"]
    assert len(ax.collections[0].get_offsets()) == 4
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), 10 * line.get_xdata(), atol=1e-9)
    assert "r = 1.00" in ax.get_legend().get_texts()[0].get_text()


def test_scatter_with_fit_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        plots.scatter_with_fit([1, 2], [1, 2, 3], ["a", "b"], xlabel="x", ylabel="y")


# ---------------------------------------------------------------- decision regions


class _Linear2D(torch.nn.Module):
    """A fixed 2-D linear classifier on points (N, 2) or (N, 2, 1, 1): class 1 where w . x + b > 0."""

    def __init__(self, w: tuple[float, float], b: float) -> None:
        super().__init__()
        self.w, self.b = torch.tensor(w), b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.reshape(len(x), 2) @ self.w + self.b
        return torch.stack([-score, score], dim=1)


def _points(name: str, seed: int) -> Domain:
    g = torch.Generator().manual_seed(seed)
    return Domain(name, torch.rand(20, 2, 1, 1, generator=g) * 2 - 1, torch.arange(20) % 2, ("a", "b"))


def test_plot_classifier_pair_shades_exactly_where_the_two_disagree():
    source, target = _points("source", 0), _points("target", 1)
    same = _Linear2D((1.0, 0.0), 0.0)
    other = _Linear2D((0.0, 1.0), 0.0)  # disagrees on two of the four quadrants
    fig = plots.plot_classifier_pair({"same": (same, same), "other": (same, other)}, [source, target], resolution=50)
    axes = _image_axes(fig)
    assert [ax.get_title() for ax in axes] == ["same", "other"]
    shade = [np.asarray(ax.images[0].get_array())[..., 0] < 1 for ax in axes]
    assert not shade[0].any()  # identical heads: no grey anywhere
    assert 0.4 < shade[1].mean() < 0.6  # two quadrants of a square around the points
    assert [len(ax.collections) >= 2 for ax in axes] == [True, True]  # the points of both domains
    texts = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert texts == ["source", "target", "first classifier's boundary", "second classifier's boundary"]


def test_decision_region_plots_refuse_points_that_are_not_2d():
    flat = Domain("images", torch.rand(4, 1, 3, 3), torch.zeros(4, dtype=torch.long), ("a",))
    model = _Linear2D((1.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="2-D points only"):
        plots.plot_classifier_pair({"x": (model, model)}, [flat])
    with pytest.raises(ValueError, match="2-D points only"):
        plots.plot_decision_regions({"x": model}, [flat])
    with pytest.raises(ValueError, match="at least one pair"):
        plots.plot_classifier_pair({}, [flat])


def test_scores_against_one_panel_per_score_with_named_points():
    fig = plots.scores_against(
        {"H-score": {"good": 3.0, "random": 1.0}, "LogME": {"good": -0.3, "random": -0.5}},
        {"good": 60.0, "random": 50.0},
        ylabel="accuracy %",
    )
    assert len(fig.axes) == 2 and [ax.get_xlabel() for ax in fig.axes] == ["H-score", "LogME"]
    assert sorted(t.get_text() for t in fig.axes[1].texts) == ["good", "random"]
    assert fig.axes[0].collections[0].get_offsets()[:, 0].tolist() == [3.0, 1.0]
    with pytest.raises(ValueError, match="names"):
        plots.scores_against({"H-score": {"good": 3.0}}, {"good": 60.0, "random": 50.0}, ylabel="y")


def test_figures_are_not_kept_by_pyplot():
    plots.plot_curves({"a": [1, 2]})
    assert plt.get_fignums() == []
