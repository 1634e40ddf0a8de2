"""Pictures for the course: domains side by side, feature embeddings, bar charts, curves, confusions.

Every function builds a new matplotlib ``Figure`` and returns it; none calls ``plt.show()``. The figure
is detached from pyplot before it is returned, so in a notebook it appears exactly once when the call is
the last line of a cell (or with ``display(fig)``), figures never pile up in memory, and
``fig.savefig("name.png")`` saves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import ConfusionMatrixDisplay

from tlcourse.library.data import Domain

_DOMAIN_MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")


def _figure(nrows: int = 1, ncols: int = 1, **kwargs) -> tuple[Figure, np.ndarray]:
    """A new figure with a grid of axes (always a 2-D array), not kept by pyplot."""
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained", **kwargs)
    plt.close(fig)  # pyplot forgets it: no double display in notebooks, no build-up of open figures
    return fig, axes


def _numpy(values) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def show_domains(domains: Sequence[Domain] | Mapping[str, Domain], n: int = 8, seed: int = 0) -> Figure:
    """A grid of example images: one row per domain, ``n`` random images per row, titled by class.

    Args:
        domains: the domains to show; for a mapping, its keys label the rows, else each domain's name.
        n: images per row (fewer when a domain is smaller).
        seed: chooses the images; the same seed shows the same images.
    """
    named = list(domains.items()) if isinstance(domains, Mapping) else [(d.name, d) for d in domains]
    if not named or n < 1:
        raise ValueError(f"show_domains needs at least one domain and n >= 1, got {len(named)} domains and n={n}.")
    fig, axes = _figure(len(named), n, figsize=(1.3 * n, 1.5 * len(named) + 0.3))
    generator = torch.Generator().manual_seed(seed)
    for row, (name, domain) in zip(axes, named):
        picks = torch.randperm(len(domain), generator=generator)[:n]
        for ax, i in zip(row, picks.tolist()):
            image = domain.x[i].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
            if image.shape[2] == 1:
                ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image)
            ax.set_title(domain.classes[int(domain.y[i])], fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[len(picks) :]:
            ax.set_frame_on(False)
        row[0].set_ylabel(name, fontsize=10)
    fig.suptitle("Example images, one domain per row")
    return fig


def plot_embedding(
    features: Mapping[str, torch.Tensor],
    labels: Mapping[str, torch.Tensor] | None = None,
    *,
    method: str = "tsne",
    seed: int = 0,
    max_points: int = 1000,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Features of several domains projected to 2-D: do the domains overlap, are the classes apart?

    The features of all domains are pooled and projected together (t-SNE with PCA initialisation, or
    PCA), so the panels compare like with like. Left: coloured by domain. Right (with ``labels``):
    coloured by class, one marker shape per domain. Well-adapted features mix the domains on the left
    and keep the classes apart on the right.

    Args:
        features: domain name -> features ``(N, d)`` (or ``(N, ...)``, flattened).
        labels: domain name -> class labels ``(N,)``, for the same keys; optional.
        method: ``"tsne"`` or ``"pca"``.
        seed: fixes the subsample and the t-SNE run.
        max_points: at most this many points per domain (a seeded subsample), to keep t-SNE fast.
        class_names: names for the class legend; default the label numbers.
    """
    if method not in ("tsne", "pca"):
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}.")
    if not features:
        raise ValueError("plot_embedding needs features of at least one domain.")
    if labels is not None and set(labels) != set(features):
        raise ValueError(f"labels must have the same domains as features: {sorted(features)} vs {sorted(labels)}.")
    rng = np.random.default_rng(seed)
    names, points, classes = [], [], []
    for name, feats in features.items():
        feats = _numpy(feats).reshape(len(feats), -1)
        keep = np.sort(rng.permutation(len(feats))[:max_points])
        names.append(name)
        points.append(feats[keep])
        if labels is not None:
            classes.append(_numpy(labels[name])[keep])
    pooled = np.concatenate(points).astype(np.float64)
    if method == "pca":
        embedded = PCA(n_components=2, random_state=seed).fit_transform(pooled)
        axis_name = "PC"
    else:
        if pooled.shape[1] > 50:  # the usual t-SNE recipe: PCA to 50 dimensions first, for speed
            pooled = PCA(n_components=min(50, len(pooled)), random_state=seed).fit_transform(pooled)
        perplexity = min(30.0, (len(pooled) - 1) / 3)
        embedded = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(pooled)
        axis_name = "t-SNE"
    splits = np.cumsum([len(p) for p in points])[:-1]
    per_domain = np.split(embedded, splits)

    fig, axes = _figure(1, 1 if labels is None else 2, figsize=(5.5 if labels is None else 11, 4.8))
    by_domain = axes[0, 0]
    for name, xy in zip(names, per_domain):
        by_domain.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.6, label=name)
    by_domain.set_title("coloured by domain")
    by_domain.legend(markerscale=2, fontsize=8)
    if labels is not None:
        _scatter_by_class(axes[0, 1], names, per_domain, classes, class_names)
    for ax in axes.flat:
        ax.set_xlabel(f"{axis_name} 1")
        ax.set_ylabel(f"{axis_name} 2")
    fig.suptitle(f"{'t-SNE' if method == 'tsne' else 'PCA'} of the features ({len(embedded)} points)")
    return fig


def _scatter_by_class(
    ax: Axes,
    names: list[str],
    per_domain: list[np.ndarray],
    classes: list[np.ndarray],
    class_names: Sequence[str] | None,
) -> None:
    num_classes = max(int(c.max()) + 1 if len(c) else 0 for c in classes)
    if class_names is not None:
        num_classes = max(num_classes, len(class_names))
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    colours = [cmap(k % cmap.N) for k in range(num_classes)]
    for d, (xy, c) in enumerate(zip(per_domain, classes)):
        ax.scatter(xy[:, 0], xy[:, 1], s=8, alpha=0.6, c=[colours[k] for k in c], marker=_DOMAIN_MARKERS[d % 8])
    present = sorted({int(k) for c in classes for k in c})
    handles = [Line2D([], [], ls="", marker="o", color=colours[k]) for k in present]
    handles += [Line2D([], [], ls="", marker=_DOMAIN_MARKERS[d % 8], color="grey") for d in range(len(names))]
    texts = [class_names[k] if class_names is not None else str(k) for k in present] + list(names)
    ax.legend(handles, texts, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title("coloured by class, marker by domain")


def bar_chart(
    values: Mapping[str, float],
    *,
    title: str = "",
    ylabel: str = "accuracy",
    reference: Mapping[str, float] | None = None,
    errors: Mapping[str, float] | None = None,
    fmt: str | None = None,
) -> Figure:
    """One bar per entry with its value written on it, e.g. the accuracy of each method.

    Args:
        values: bar name -> height.
        title, ylabel: texts of the chart.
        reference: bar name -> a value to compare with (e.g. the paper's number), drawn as a black mark.
        errors: bar name -> half-length of an error bar (e.g. the standard deviation over seeds).
        fmt: format of the written values; default percent when all values are in [0, 1] and the y
            label says accuracy, else three significant digits.
    """
    if not values:
        raise ValueError("bar_chart needs at least one value.")
    names = list(values)
    for extra, what in ((reference, "reference"), (errors, "errors")):
        unknown = sorted(set(extra or {}) - set(names))
        if unknown:
            raise ValueError(f"{what} has names that are not among the bars: {unknown}; bars are {names}.")
    heights = [float(values[k]) for k in names]
    if fmt is None:
        as_percent = "accuracy" in ylabel.lower() and all(0.0 <= h <= 1.0 for h in heights)
        fmt = "{:.1%}" if as_percent else "{:.3g}"
    fig, axes = _figure(figsize=(max(4.0, 1.1 * len(names) + 1.5), 4.0))
    ax = axes[0, 0]
    yerr = None if errors is None else [float(errors.get(k, 0.0)) for k in names]
    bars = ax.bar(names, heights, yerr=yerr, capsize=4, color="tab:blue", alpha=0.85)
    ax.bar_label(bars, labels=[fmt.format(h) for h in heights], label_type="center", color="white", fontsize=9)
    if reference:
        ref_names = [k for k in names if k in reference]
        ax.scatter(
            ref_names,
            [reference[k] for k in ref_names],
            marker="_",
            s=900,
            linewidths=2.5,
            color="black",
            zorder=3,
            label="reference",
        )
        ax.legend()
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(names) > 4:
        ax.tick_params(axis="x", labelrotation=30)
    return fig


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    *,
    xlabel: str = "epoch",
    ylabel: str = "",
    title: str = "",
    x: Sequence[float] | None = None,
    logx: bool = False,
) -> Figure:
    """One line per entry: training histories, or accuracy against the number of labels.

    Args:
        curves: line name -> y values.
        x: x values shared by all curves; default 1, 2, ... (epochs count from 1).
        logx: logarithmic x axis (e.g. for numbers of labelled examples).
    """
    if not curves:
        raise ValueError("plot_curves needs at least one curve.")
    fig, axes = _figure(figsize=(6.0, 4.0))
    ax = axes[0, 0]
    for name, ys in curves.items():
        ys = _numpy(ys).astype(float).ravel()
        xs = np.arange(1, len(ys) + 1) if x is None else _numpy(x).astype(float).ravel()
        if len(xs) != len(ys):
            raise ValueError(f"curve {name!r} has {len(ys)} values but x has {len(xs)}.")
        ax.plot(xs, ys, marker="o" if len(ys) <= 20 else None, markersize=4, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_confusion(
    labels, predictions, class_names: Sequence[str], *, normalize: bool = True, title: str = ""
) -> Figure:
    """Confusion matrix: row = true class, column = predicted class.

    Args:
        labels, predictions: ``(N,)`` class indices (tensors or arrays).
        class_names: one name per class; fixes the size of the matrix.
        normalize: show each row as fractions of that class's examples (its diagonal is the per-class
            accuracy), else counts.
    """
    k = len(class_names)
    fig, axes = _figure(figsize=(1.0 + 0.55 * k, 0.6 + 0.5 * k))
    ConfusionMatrixDisplay.from_predictions(
        _numpy(labels),
        _numpy(predictions),
        labels=list(range(k)),
        display_labels=list(class_names),
        normalize="true" if normalize else None,
        values_format=".2f" if normalize else "d",
        cmap="Blues",
        xticks_rotation=45,
        ax=axes[0, 0],
        im_kw={"vmin": 0.0, "vmax": 1.0} if normalize else None,  # same colour scale for every domain
    )
    axes[0, 0].set_title(title or ("Confusion matrix (rows sum to 1)" if normalize else "Confusion matrix (counts)"))
    return fig


def scatter_with_fit(
    x: Sequence[float], y: Sequence[float], names: Sequence[str], *, xlabel: str, ylabel: str, title: str = ""
) -> Figure:
    """Named points with their least-squares line, e.g. domain distance against accuracy drop.

    The legend gives the line ``y = a x + b`` and Pearson's correlation r.
    """
    xs, ys = _numpy(x).astype(float).ravel(), _numpy(y).astype(float).ravel()
    if not len(xs) == len(ys) == len(names):
        raise ValueError(f"x, y and names must have the same length, got {len(xs)}, {len(ys)} and {len(names)}.")
    fig, axes = _figure(figsize=(6.0, 4.5))
    ax = axes[0, 0]
    ax.scatter(xs, ys, color="tab:blue", zorder=3)
    for xi, yi, name in zip(xs, ys, names):
        ax.annotate(name, (xi, yi), xytext=(4, 4), textcoords="offset points", fontsize=8)
    if len(np.unique(xs)) >= 2:  # a line needs two distinct x values
        slope, intercept = np.polyfit(xs, ys, 1)
        r = np.corrcoef(xs, ys)[0, 1]
        grid = np.linspace(xs.min(), xs.max(), 100)
        ax.plot(
            grid,
            slope * grid + intercept,
            color="tab:red",
            label=f"least squares: y = {slope:.3g} x + {intercept:.3g} (r = {r:.2f})",
        )
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def _plane(domains: Sequence[Domain], resolution: int, margin: float):
    """The 2-D points of each domain, and a ``resolution`` x ``resolution`` grid around all of them."""
    points = [_numpy(d.x).reshape(len(d), -1) for d in domains]
    if any(p.shape[1] != 2 for p in points):
        raise ValueError("a decision-region plot draws 2-D points only: each domain's x must hold 2 values a point.")
    pooled = np.concatenate(points)
    lo, hi = pooled.min(0) - margin, pooled.max(0) + margin
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    return points, (lo, hi), gx, gy


def _probabilities(model: torch.nn.Module, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """``model``'s softmax ``(G, K)`` on the grid's points, in evaluation mode (its mode restored)."""
    grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(grid.view(-1, 2, 1, 1)), 1).numpy()
    model.train(was_training)
    return probs


def _scatter_domains(ax: Axes, domains: Sequence[Domain], points: list[np.ndarray]) -> None:
    """Points coloured by class; the first domain filled circles, the others hollow markers."""
    cmap = plt.get_cmap("tab10")
    for d, (domain, xy) in enumerate(zip(domains, points)):
        c = [cmap(int(y)) for y in _numpy(domain.y)]
        marker = _DOMAIN_MARKERS[d % len(_DOMAIN_MARKERS)]
        if d == 0:
            ax.scatter(xy[:, 0], xy[:, 1], s=10, c=c, marker=marker, label=domain.name)
        else:
            ax.scatter(xy[:, 0], xy[:, 1], s=14, facecolors="none", edgecolors=c, marker=marker, label=domain.name)


def scores_against(
    scores: Mapping[str, Mapping[str, float]], values: Mapping[str, float], *, ylabel: str, title: str = ""
) -> Figure:
    """One panel per score, each named point at (its score, its value): e.g. the transferability scores
    of candidate sources against the accuracy that fine-tuning from each reached.

    Args:
        scores: ``{score name: {point name: score}}``; each names the points of ``values``.
        values: ``{point name: value}`` (the vertical axis of every panel).
    """
    names = list(values)
    for score, points in scores.items():
        if set(points) != set(names):
            raise ValueError(f"score {score!r} names {sorted(points)}, the values name {sorted(names)}.")
    fig, axes = _figure(1, len(scores), figsize=(4.5 * len(scores), 3.8), sharey=True)
    for ax, (score, points) in zip(axes[0], scores.items()):
        xs = [points[name] for name in names]
        ax.scatter(xs, [values[name] for name in names], color="tab:blue", zorder=3)
        for x, name in zip(xs, names):
            ax.annotate(name, (x, values[name]), xytext=(4, 4), textcoords="offset points", fontsize=9)
        ax.set_xlabel(score)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(ylabel)
    fig.suptitle(title)
    return fig


def plot_decision_regions(
    classifiers: Mapping[str, torch.nn.Module],
    domains: Sequence[Domain],
    *,
    resolution: int = 200,
    margin: float = 0.5,
) -> Figure:
    """Decision regions of 2-D classifiers, one panel each, with the points of every domain on top.

    The background shows the predicted class, lighter where the classifier is unsure (its top softmax
    probability near 1/K), and the black line is the decision boundary. Points: colour = class, marker =
    domain (the first domain is drawn as filled circles, the others as hollow markers).

    Args:
        classifiers: panel title -> a model mapping points ``(N, 2)`` (or ``(N, 2, 1, 1)``) to logits.
        domains: domains of 2-D points; their ``x`` has 2 values per point.
        resolution: grid points per axis; margin: extra room around the points.
    """
    if not classifiers:
        raise ValueError("plot_decision_regions needs at least one classifier.")
    points, (lo, hi), gx, gy = _plane(domains, resolution, margin)
    cmap = plt.get_cmap("tab10")
    fig, axes = _figure(1, len(classifiers), figsize=(4.2 * len(classifiers), 4.0))
    for ax, (title, model) in zip(axes[0], classifiers.items()):
        probs = _probabilities(model, gx, gy)
        k = probs.shape[1]
        label, confidence = probs.argmax(1), probs.max(1)
        strength = ((confidence - 1 / k) / (1 - 1 / k)).reshape(gx.shape)  # 0 unsure .. 1 certain
        colours = np.array([cmap(c)[:3] for c in label]).reshape(*gx.shape, 3)
        ax.imshow(
            1 - 0.45 * strength[..., None] * (1 - colours),
            origin="lower",
            extent=(lo[0], hi[0], lo[1], hi[1]),
            aspect="auto",
        )
        ax.contour(gx, gy, label.reshape(gx.shape), levels=np.arange(k - 1) + 0.5, colors="k", linewidths=1.2)
        _scatter_domains(ax, domains, points)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=8, loc="lower left")
    return fig


def plot_classifier_pair(
    pairs: Mapping[str, tuple[torch.nn.Module, torch.nn.Module]],
    domains: Sequence[Domain],
    *,
    resolution: int = 200,
    margin: float = 0.5,
) -> Figure:
    """Two 2-D classifiers in one panel (MCD's two heads): both decision boundaries, and where they disagree.

    The first classifier's boundary is a solid black line, the second's a dashed one; the region where
    their predicted classes differ is shaded grey. Points as in `plot_decision_regions` (colour = class,
    the first domain filled, the others hollow), so the target points that lie between the two
    boundaries are the ones on grey.

    Args:
        pairs: panel title -> ``(first, second)``, models mapping points ``(N, 2)`` or ``(N, 2, 1, 1)`` to logits.
        domains: domains of 2-D points; their ``x`` has 2 values per point.
        resolution: grid points per axis; margin: extra room around the points.
    """
    if not pairs:
        raise ValueError("plot_classifier_pair needs at least one pair of classifiers.")
    points, (lo, hi), gx, gy = _plane(domains, resolution, margin)
    fig, axes = _figure(1, len(pairs), figsize=(4.2 * len(pairs), 4.0))
    for ax, (title, (first, second)) in zip(axes[0], pairs.items()):
        labels = [_probabilities(model, gx, gy).argmax(1).reshape(gx.shape) for model in (first, second)]
        k = max(int(label.max()) for label in labels) + 1
        disagree = (labels[0] != labels[1]).astype(float)
        ax.imshow(
            1 - 0.3 * disagree[..., None] * np.ones(3),
            origin="lower",
            extent=(lo[0], hi[0], lo[1], hi[1]),
            aspect="auto",
        )
        for label, style in zip(labels, ("solid", "dashed")):
            if k > 1:
                ax.contour(gx, gy, label, levels=np.arange(k - 1) + 0.5, colors="k", linewidths=1.2, linestyles=style)
        _scatter_domains(ax, domains, points)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, names = axes[0, 0].get_legend_handles_labels()
    handles += [Line2D([], [], color="k", linestyle="solid"), Line2D([], [], color="k", linestyle="dashed")]
    names += ["first classifier's boundary", "second classifier's boundary"]
    axes[0, 0].legend(handles, names, fontsize=8, loc="lower left")
    return fig
