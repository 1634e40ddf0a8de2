"""The visible tests teach: each exercise's visible test catches the common mistakes, and names them.

A learner sees only the visible part of a graded test cell (the hidden region is stripped from the
student version), so that part must fail on the mistakes a learner makes, with a message that points
at the mistake, and must pass with the reference solution. For every exercise this runs the visible
part of its test cell, taken from the source notebook, in a namespace built like the notebook's (the
first code cell's imports and settings, then the solution cells up to the exercise's):

- with the notebook's own solution: it passes and prints "visible tests passed";
- with each wrong implementation below: it raises AssertionError whose message contains the hint.

The wrong implementations replace the exercise's function (for the gradient reversal, its class) after
the solution cells ran. They are the mistakes a learner makes, one per function, kept short.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nbgrader.preprocessors import ClearHiddenTests
from sklearn.covariance import LedoitWolf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tlcourse.library.methods.fine_tuning import feature_blocks
from tlcourse.library.modules import gradient_reversal

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"

# What replaces an exercise's solution in the namespace, when it is not the function named by its grade id.
REPLACED_NAME = {"gradient_reversal": "GradientReversalFunction"}
# Names a visible test takes from the notebook's demonstration cells (which train models: too slow here),
# by notebook: a stand-in of the same kind, made from the namespace of the notebook's first cell.
STAND_INS = {
    "fine_tuning.ipynb": {"source_model": lambda ns: ns["build_classifier"]("lenet", num_classes=5, in_channels=1)},
}


# ------------------------------------------------------------------------------------ the notebooks
def nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_cells() -> dict[str, tuple[Path, int]]:
    """grade id -> (notebook, cell index) of every solution cell of the chapter notebooks."""
    found = {}
    for path in sorted(NOTEBOOKS.glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and nbgrader(cell).get("solution"):
                found[nbgrader(cell)["grade_id"]] = (path, index)
    return found


def visible_test(nb: nbformat.NotebookNode, index: int) -> str:
    """The visible part of the first graded test cell after the solution cell at ``index``: the cell with its
    hidden region removed by nbgrader's own preprocessor, as in the student version."""
    for cell in nb.cells[index + 1 :]:
        if cell.cell_type == "code" and nbgrader(cell).get("grade") and not nbgrader(cell).get("solution"):
            one_cell = nbformat.v4.new_notebook(cells=[copy.deepcopy(cell)])
            return ClearHiddenTests().preprocess(one_cell, {})[0].cells[0].source
    raise AssertionError(f"no graded test cell follows cell {index}")


def without_magics(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


@contextlib.contextmanager
def global_seeds_kept() -> Iterator[None]:
    """The notebooks' first cells seed the global generators: restore them afterwards."""
    py, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(np_state)


def run_visible_test(grade_id: str, replacement: Callable | type | None = None) -> None:
    """Run the visible test of ``grade_id`` after the notebook's setup and solution cells.

    With ``replacement``, it stands in for the exercise's own solution (a wrong implementation).
    """
    path, index = solution_cells()[grade_id]
    nb = nbformat.read(path, as_version=4)
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    namespace: dict = {"__name__": "__main__"}
    with global_seeds_kept():
        exec(compile(without_magics(code_cells[0][1].source), f"{path.name}: first cell", "exec"), namespace)
        for name, make in STAND_INS.get(path.name, {}).items():
            namespace[name] = make(namespace)
        for i, cell in code_cells:
            if i <= index and nbgrader(cell).get("solution"):
                exec(compile(cell.source, f"{path.name}: cell {i}", "exec"), namespace)
        if replacement is not None:
            namespace[REPLACED_NAME.get(grade_id, grade_id)] = replacement
        exec(compile(visible_test(nb, index), f"{path.name}: visible test of {grade_id}", "exec"), namespace)


# ----------------------------------------------------------------- chapter 1: unbiased MMD, proxy A-distance
def _gaussian(a, b, bandwidth):
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))


def mmd_biased(x, y, bandwidth):
    """The V-statistic: the i = j terms (k = 1) stay in the within-sample averages."""
    return _gaussian(x, x, bandwidth).mean() + _gaussian(y, y, bandwidth).mean() - 2 * _gaussian(x, y, bandwidth).mean()


def mmd_cross_term_without_diagonal(x, y, bandwidth):
    """The i = j pairs left out of the cross term as well (only defined for m = n)."""
    m = len(x)
    k_xx, k_yy, k_xy = (_gaussian(a, b, bandwidth) for a, b in ((x, x), (y, y), (x, y)))
    off = m * (m - 1)
    return (k_xx.sum() - k_xx.trace()) / off + (k_yy.sum() - k_yy.trace()) / off - 2 * (k_xy.sum() - k_xy.trace()) / off


def _unbiased_with(kernel, name):
    def mmd(x, y, bandwidth):
        m, n = len(x), len(y)
        k_xx, k_yy, k_xy = kernel(x, x, bandwidth), kernel(y, y, bandwidth), kernel(x, y, bandwidth)
        return (
            (k_xx.sum() - k_xx.trace()) / (m * (m - 1)) + (k_yy.sum() - k_yy.trace()) / (n * (n - 1)) - 2 * k_xy.mean()
        )

    mmd.__name__ = name
    return mmd


mmd_bandwidth_not_squared = _unbiased_with(
    lambda a, b, s: torch.exp(-torch.cdist(a, b).pow(2) / (2 * s)), "mmd_bandwidth_not_squared"
)
mmd_kernel_without_the_2 = _unbiased_with(
    lambda a, b, s: torch.exp(-torch.cdist(a, b).pow(2) / s**2), "mmd_kernel_without_the_2"
)
mmd_distance_not_squared = _unbiased_with(
    lambda a, b, s: torch.exp(-torch.cdist(a, b) / (2 * s**2)), "mmd_distance_not_squared"
)


def _pad(source, target, seed, *, score_on_training=False, formula=lambda error: 2 * (1 - 2 * error)):
    xs, xt = source.flatten(1).double().numpy(), target.flatten(1).double().numpy()
    n = min(len(xs), len(xt))
    features, domain = np.concatenate([xs[:n], xt[:n]]), np.repeat([0, 1], n)
    f_train, f_test, d_train, d_test = train_test_split(
        features, domain, test_size=0.5, stratify=domain, random_state=seed
    )
    if score_on_training:
        f_train = f_test = features
        d_train = d_test = domain
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(f_train, d_train)
    return float(formula(1.0 - classifier.score(f_test, d_test)))


def pad_on_training_samples(source, target, seed=0):
    """eps measured on the samples the domain classifier was fitted on."""
    return _pad(source, target, seed, score_on_training=True)


def pad_with_accuracy(source, target, seed=0):
    """2 (1 - 2 acc): the classifier's accuracy where its error belongs."""
    return _pad(source, target, seed, formula=lambda error: 2 * (1 - 2 * (1 - error)))


def pad_without_the_2(source, target, seed=0):
    """2 (1 - eps): the factor 2 on eps is missing, so chance gives 1 instead of 0."""
    return _pad(source, target, seed, formula=lambda error: 2 * (1 - error))


# ------------------------------------------------------ chapter 2: freezing blocks, L2-SP, distillation
def freeze_without_unfreezing(model, k):
    """Freezes the first k blocks but leaves frozen whatever an earlier call froze."""
    blocks = feature_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError(k)
    for block in blocks[:k]:
        block.requires_grad_(False)
    return model


def freeze_last_blocks(model, k):
    """The last k blocks, counted from the output side."""
    blocks = feature_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError(k)
    model.requires_grad_(True)
    for block in blocks[len(blocks) - k :]:
        block.requires_grad_(False)
    return model


def freeze_first_layers(model, k):
    """The first k children of model.features, not the first k blocks (a block's ReLU, pool and BN)."""
    layers = list(model.features.children())
    if not 0 <= k <= len(feature_blocks(model)):
        raise ValueError(k)
    model.requires_grad_(True)
    for layer in layers[:k]:
        layer.requires_grad_(False)
    return model


def freeze_only_the_convolutions(model, k):
    """Each block's first layer only: a block's batch norm keeps training."""
    blocks = feature_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError(k)
    model.requires_grad_(True)
    for block in blocks[:k]:
        block[0].requires_grad_(False)
    return model


def freeze_head_too(model, k):
    """Every block frozen taken as "freeze the model": the head is frozen along with them."""
    blocks = feature_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError(k)
    model.requires_grad_(k < len(blocks))
    for block in blocks[:k]:
        block.requires_grad_(False)
    return model


def freeze_without_checking_k(model, k):
    """No ValueError: blocks[:k] quietly takes every block for a large k (and most for a negative one)."""
    model.requires_grad_(True)
    for block in feature_blocks(model)[:k]:
        block.requires_grad_(False)
    return model


def _l2_sp(model, reference_params, alpha, beta, *, half=0.5, power=2, head="beta", beta_on_all=False):
    params = dict(model.named_parameters())
    if set(reference_params) - set(params):
        raise KeyError(sorted(set(reference_params) - set(params)))
    total = torch.zeros(())
    for name, w in params.items():
        if name in reference_params:
            total = total + alpha * half * (w - reference_params[name]).pow(2).sum().pow(power / 2)
        elif head == "alpha":
            total = total + alpha * half * w.pow(2).sum().pow(power / 2)
        if beta_on_all or (name not in reference_params and head == "beta"):
            total = total + beta * half * w.pow(2).sum().pow(power / 2)
    return total


def l2_sp_without_halves(model, reference_params, alpha, beta):
    return _l2_sp(model, reference_params, alpha, beta, half=1.0)


def l2_sp_head_with_alpha(model, reference_params, alpha, beta):
    """The new head pulled to 0 with alpha (as if its starting point were 0), no beta at all."""
    return _l2_sp(model, reference_params, alpha, beta, head="alpha")


def l2_sp_beta_on_every_weight(model, reference_params, alpha, beta):
    """Plain weight decay beta on every weight, on top of the pull to w0."""
    return _l2_sp(model, reference_params, alpha, beta, beta_on_all=True)


def l2_sp_norms_not_squared(model, reference_params, alpha, beta):
    return _l2_sp(model, reference_params, alpha, beta, power=1)


def l2_sp_ignoring_unknown_names(model, reference_params, alpha, beta):
    """Reads only the names the model has: a typo in reference_params goes unnoticed."""
    params = dict(model.named_parameters())
    shared = sum((w - reference_params[n]).pow(2).sum() for n, w in params.items() if n in reference_params)
    new = sum(w.pow(2).sum() for n, w in params.items() if n not in reference_params)
    return alpha / 2 * shared + beta / 2 * new


def _distillation(student_logits, teacher_logits, temperature, *, scale=True, swapped=False, reduction="batchmean"):
    if temperature <= 0:
        raise ValueError(temperature)
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    if swapped:
        log_p, log_q = log_q, log_p
    terms = log_p.exp() * (log_p - log_q)  # (N, K): summed over K and averaged over N is the KL per example
    loss = {"batchmean": terms.sum(1).mean(), "mean": terms.mean(), "sum": terms.sum()}[reduction]
    return temperature**2 * loss if scale else loss


def distillation_without_t_squared(student_logits, teacher_logits, temperature):
    return _distillation(student_logits, teacher_logits, temperature, scale=False)


def distillation_kl_swapped(student_logits, teacher_logits, temperature):
    """KL(student || teacher) instead of KL(teacher || student)."""
    return _distillation(student_logits, teacher_logits, temperature, swapped=True)


def distillation_mean_over_classes(student_logits, teacher_logits, temperature):
    """Averaged over the classes as well as the examples (what F.kl_div's reduction="mean" does)."""
    return _distillation(student_logits, teacher_logits, temperature, reduction="mean")


def distillation_summed_over_examples(student_logits, teacher_logits, temperature):
    return _distillation(student_logits, teacher_logits, temperature, reduction="sum")


def distillation_into_the_teacher(student_logits, teacher_logits, temperature):
    """The teacher's logits not detached: the loss would train the teacher too."""
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=1)
    return temperature**2 * (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()


def distillation_without_checking_temperature(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    return temperature**2 * (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()


def _h_score(features, labels, shrinkage=False, *, weighted=True, centred=True, total_n=0, scale_between=True):
    """The transferability H-score, with one of its parts switched to a common mistake."""
    f = features.double()
    f = f - f.mean(0) if centred else f
    n = len(f)
    between = torch.zeros(f.shape[1], f.shape[1], dtype=torch.float64)
    for k in labels.unique():
        mean_k = f[labels == k].mean(0)
        share = (labels == k).sum() / n if weighted else 1 / len(labels.unique())
        between += share * torch.outer(mean_k, mean_k)
    total = f.T @ f / (n - total_n)
    if shrinkage:
        estimate = LedoitWolf(assume_centered=True).fit(f.numpy())
        total = torch.from_numpy(estimate.covariance_)
        between = (1 - estimate.shrinkage_) * between if scale_between else between
    return torch.trace(torch.linalg.pinv(total, hermitian=True) @ between).item()


def h_score_classes_unweighted(features, labels, shrinkage=False):
    """cov(E[f | y]) averaged over the classes, not over the images."""
    return _h_score(features, labels, shrinkage, weighted=False)


def h_score_not_centred(features, labels, shrinkage=False):
    """Second moments instead of covariances."""
    return _h_score(features, labels, shrinkage, centred=False)


def h_score_cov_over_n_minus_1(features, labels, shrinkage=False):
    """cov(f) with 1/(n - 1), the between-class covariance with 1/n."""
    return _h_score(features, labels, shrinkage, total_n=1)


def h_score_between_not_shrunk(features, labels, shrinkage=False):
    """Ledoit-Wolf's covariance, but the between-class part not scaled by 1 - a."""
    return _h_score(features, labels, shrinkage, scale_between=False)


def h_score_as_tensor(features, labels, shrinkage=False):
    """The right number, as a 0-dim tensor."""
    return torch.tensor(_h_score(features, labels, shrinkage))


# ---------------------------------------- chapter 3: gradient reversal, DANN's two losses, entropy loss
def _reversal(name: str, forward_sign: float, backward: Callable[[float, torch.Tensor], torch.Tensor]) -> type:
    class Reversal(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, lambda_):
            ctx.lambda_ = float(lambda_)
            return forward_sign * x.clone()

        @staticmethod
        def backward(ctx, grad_output):
            return backward(ctx.lambda_, grad_output), None

    Reversal.__name__ = Reversal.__qualname__ = name
    return Reversal


ReversalNotNegated = _reversal("ReversalNotNegated", 1.0, lambda lambda_, grad: lambda_ * grad)
ReversalNotScaled = _reversal("ReversalNotScaled", 1.0, lambda lambda_, grad: -grad)
ReversalIdentity = _reversal("ReversalIdentity", 1.0, lambda lambda_, grad: grad)
ReversalInTheForwardPass = _reversal("ReversalInTheForwardPass", -1.0, lambda lambda_, grad: -lambda_ * grad)


def _dann(model, discriminator, source_x, source_y, target_x, lambda_, *, reverse, together=False, weight=False):
    if together:  # one batch: batch norm mixes the two domains' statistics
        features = model.features(torch.cat([source_x, target_x]))
        source_features, target_features = features[: len(source_x)], features[len(source_x) :]
    else:
        source_features, target_features = model.features(source_x), model.features(target_x)
        features = torch.cat([source_features, target_features])
    source_logits = model.head(source_features)
    class_loss = F.cross_entropy(source_logits, source_y)
    domain = torch.cat([torch.ones(len(source_x)), torch.zeros(len(target_x))])
    domain_logits = discriminator(reverse(features, lambda_))
    domain_loss = F.binary_cross_entropy_with_logits(domain_logits, domain)
    if weight:  # lambda weighs the domain loss instead of reversing its gradient
        domain_loss = lambda_ * domain_loss
    domain_acc = ((domain_logits > 0).float() == domain).float().mean().item()
    return {
        "class_loss": class_loss,
        "domain_loss": domain_loss,
        "domain_acc": domain_acc,
        "source_logits": source_logits,
        "target_features": target_features,
    }


def dann_losses_without_reversal(model, discriminator, source_x, source_y, target_x, lambda_):
    """The domain loss on the features as they are: the features learn to help the discriminator."""
    return _dann(model, discriminator, source_x, source_y, target_x, lambda_, reverse=lambda f, _: f)


def dann_losses_lambda_without_reversal(model, discriminator, source_x, source_y, target_x, lambda_):
    """lambda * domain_loss: lambda weighs the domain loss, but its gradient is not reversed."""
    return _dann(model, discriminator, source_x, source_y, target_x, lambda_, reverse=lambda f, _: f, weight=True)


def dann_losses_detached_features(model, discriminator, source_x, source_y, target_x, lambda_):
    """The discriminator sees detached features: it trains, but the features never get its gradient."""
    return _dann(model, discriminator, source_x, source_y, target_x, lambda_, reverse=lambda f, _: f.detach())


def dann_losses_domains_together(model, discriminator, source_x, source_y, target_x, lambda_):
    """Source and target through the network as one batch (batch norm sees both)."""
    return _dann(model, discriminator, source_x, source_y, target_x, lambda_, reverse=gradient_reversal, together=True)


def dann_losses_as_floats(model, discriminator, source_x, source_y, target_x, lambda_):
    """The old habit of returning statistics: the losses as Python floats, so nothing can backpropagate."""
    out = _dann(model, discriminator, source_x, source_y, target_x, lambda_, reverse=gradient_reversal)
    return {**out, "class_loss": out["class_loss"].item(), "domain_loss": out["domain_loss"].item()}


def entropy_summed_over_the_batch(logits):
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum()


def entropy_softmax_over_the_batch(logits):
    """Softmax over dim 0: each class's column normalised over the examples."""
    log_p = F.log_softmax(logits, dim=0)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def entropy_of_log_logits(logits):
    """The log of the logits where the log of the probabilities belongs."""
    p = F.softmax(logits, dim=1)
    return -(p * torch.log(logits)).sum(dim=1).mean()


def entropy_in_bits(logits):
    p = F.softmax(logits, dim=1)
    return -(p * F.log_softmax(logits, dim=1) / np.log(2)).sum(dim=1).mean()


def entropy_without_log_softmax(logits):
    """softmax(...).log(): -inf (and 0 * -inf = nan) where a probability underflows."""
    p = F.softmax(logits, dim=1)
    return -(p * p.log()).sum(dim=1).mean()


# ------------------------------------- chapter 4: BBSE, the EM prior update, H-score, the rotation targets
def _bbse(source_probs, source_labels, target_probs, *, transposed=False, conditional=False, clip=True):
    k = source_probs.shape[1]
    predicted = F.one_hot(source_probs.argmax(1), k).double()
    truth = F.one_hot(source_labels, k).double()
    confusion = truth.T @ predicted if transposed else predicted.T @ truth
    confusion = confusion / (truth.sum(0) if conditional else len(source_labels))
    mu = F.one_hot(target_probs.argmax(1), k).double().mean(0)
    w = torch.linalg.solve(confusion, mu)
    return w.clamp_min(0.0) if clip else w


def bbse_transposed(source_probs, source_labels, target_probs):
    """C[i, j] = P(y = i, yhat = j): rows are the true classes."""
    return _bbse(source_probs, source_labels, target_probs, transposed=True)


def bbse_conditional_confusion(source_probs, source_labels, target_probs):
    """C[i, j] = P(yhat = i | y = j): the solve then gives the target's priors q, not the weights q / p."""
    return _bbse(source_probs, source_labels, target_probs, conditional=True)


def bbse_not_clipped(source_probs, source_labels, target_probs):
    return _bbse(source_probs, source_labels, target_probs, clip=False)


def em_without_source_prior(probs, source_prior, target_prior):
    """Re-weighted by q alone, not q / p: right only when the source is uniform."""
    adjusted = probs * target_prior
    adjusted = adjusted / adjusted.sum(1, keepdim=True)
    return adjusted.mean(0), adjusted


def em_ratio_inverted(probs, source_prior, target_prior):
    adjusted = probs * (source_prior / target_prior)
    adjusted = adjusted / adjusted.sum(1, keepdim=True)
    return adjusted.mean(0), adjusted


def em_not_normalised(probs, source_prior, target_prior):
    adjusted = probs * (target_prior / source_prior)
    return adjusted.mean(0), adjusted


def em_prior_summed(probs, source_prior, target_prior):
    """The new prior summed over the images instead of averaged."""
    adjusted = probs * (target_prior / source_prior)
    adjusted = adjusted / adjusted.sum(1, keepdim=True)
    return adjusted.sum(0), adjusted


def _accuracies(predictions, labels, unknown):
    is_unknown = labels == unknown
    known = (predictions[~is_unknown] == labels[~is_unknown]).double().mean().item()
    recall = (predictions[is_unknown] == unknown).double().mean().item()
    return known, recall


def h_score_arithmetic_mean(predictions, labels, unknown):
    return sum(_accuracies(predictions, labels, unknown)) / 2


def h_score_geometric_mean(predictions, labels, unknown):
    known, recall = _accuracies(predictions, labels, unknown)
    return (known * recall) ** 0.5


def h_score_minimum(predictions, labels, unknown):
    return min(_accuracies(predictions, labels, unknown))


def h_score_overall_accuracy(predictions, labels, unknown):
    """Known accuracy taken over every image, the unknown ones included."""
    _, recall = _accuracies(predictions, labels, unknown)
    known = (predictions == labels).double().mean().item()
    return 2 * known * recall / (known + recall) if known + recall else 0.0


def h_score_unknown_precision(predictions, labels, unknown):
    """The share of "unknown" calls that are right (precision) where the unknown recall belongs."""
    known, _ = _accuracies(predictions, labels, unknown)
    called = predictions == unknown
    precision = (labels[called] == unknown).double().mean().item() if called.any() else 0.0
    return 2 * known * precision / (known + precision) if known + precision else 0.0


# The rotation targets of test-time training (TTT).
def _rotation_labels(x):
    return torch.arange(4).repeat_interleave(len(x))


def rotations_clockwise(x):
    """Turned by -k quarter turns: the labels no longer count counter-clockwise turns."""
    return torch.cat([torch.rot90(x, -k, dims=(2, 3)) for k in range(4)]), _rotation_labels(x)


def rotations_from_one_turn(x):
    """One to four quarter turns, labelled 0 to 3: label 0 is no longer the image as it is."""
    return torch.cat([torch.rot90(x, k + 1, dims=(2, 3)) for k in range(4)]), _rotation_labels(x)


def rotations_by_transposing(x):
    """A transpose where a quarter turn belongs (a mirror, not a rotation)."""
    half_turn = x.flip(2).flip(3)
    return torch.cat([x, x.transpose(2, 3), half_turn, half_turn.transpose(2, 3)]), _rotation_labels(x)


def rotations_labels_interleaved(x):
    """Labels 0, 1, 2, 3, 0, 1, ... beside images that come in blocks of one rotation each."""
    return torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)]), torch.arange(4).repeat(len(x))


def rotations_float_labels(x):
    """Labels as floats: cross-entropy needs class indices."""
    return torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)]), _rotation_labels(x).float()


# ------------------------------------------- chapter 5: CORAL, leave-one-domain-out, random colour domain
def _coral(source, target, *, divisor=lambda d: 4 * d**2, unbiased=True, centred=True, squared=True):
    def covariance(x):
        deviations = x - x.mean(dim=0, keepdim=True) if centred else x
        return deviations.T @ deviations / (len(x) - 1 if unbiased else len(x))

    d = source.shape[1]
    distance = (covariance(source) - covariance(target)).pow(2).sum()
    return (distance if squared else distance.sqrt()) / divisor(d)


def coral_without_normalising(source, target):
    return _coral(source, target, divisor=lambda d: 1)


def coral_biased_covariance(source, target):
    return _coral(source, target, unbiased=False)


def coral_not_centred(source, target):
    return _coral(source, target, centred=False)


def coral_norm_not_squared(source, target):
    return _coral(source, target, squared=False)


def lodo_leaking_the_held_out(domains, train_and_test):
    """Trains on every domain, the held-out one included."""
    if len(domains) < 2:
        raise ValueError(len(domains))
    return {name: train_and_test(dict(domains), domain) for name, domain in domains.items()}


def lodo_popping(domains, train_and_test):
    """Pops the held-out domain from the caller's dict and puts it back (at the end) afterwards."""
    if len(domains) < 2:
        raise ValueError(len(domains))
    results = {}
    for name in list(domains):
        held_out = domains.pop(name)
        results[name] = train_and_test(domains, held_out)
        domains[name] = held_out
    return results


def lodo_list_of_domains(domains, train_and_test):
    """The training domains as a list, their names lost."""
    if len(domains) < 2:
        raise ValueError(len(domains))
    return {n: train_and_test([d for m, d in domains.items() if m != n], domains[n]) for n in domains}


def lodo_without_checking(domains, train_and_test):
    return {n: train_and_test({m: d for m, d in domains.items() if m != n}, domains[n]) for n in domains}


def _colour(x, generator, *, rand=None, grey=lambda x: x.mean(dim=1, keepdim=True), per_image=True):
    n = x.shape[0] if per_image else 1
    draw = rand or (lambda *shape: torch.rand(*shape, generator=generator))
    foreground, background = draw(n, 3, 1, 1).to(x), draw(n, 3, 1, 1).to(x)
    return background + (foreground - background) * grey(x)


def colour_ignoring_the_generator(x, generator=None):
    """Draws from torch's global generator: the same seed does not give the same images."""
    return _colour(x, generator, rand=lambda *shape: torch.rand(*shape))


def colour_one_pair_per_batch(x, generator=None):
    return _colour(x, generator, per_image=False)


def colour_first_channel(x, generator=None):
    """The first channel as the grey level, not the mean of the channels."""
    return _colour(x, generator, grey=lambda x: x[:, :1])


def colour_added(x, generator=None):
    """Colours added on top of the image instead of mixed: out of [0, 1]."""
    n = x.shape[0]
    foreground, background = torch.rand(n, 3, 1, 1, generator=generator), torch.rand(n, 3, 1, 1, generator=generator)
    return background + foreground * x.mean(dim=1, keepdim=True)


def discrepancy_of_logits(p1_logits, p2_logits):
    """The logits compared where the probabilities belong."""
    return (p1_logits - p2_logits).abs().mean()


def discrepancy_summed_over_classes(p1_logits, p2_logits):
    """The L1 distance of each pair of rows: the sum over the classes, not the mean."""
    return (p1_logits.softmax(dim=1) - p2_logits.softmax(dim=1)).abs().sum(dim=1).mean()


def discrepancy_squared(p1_logits, p2_logits):
    return (p1_logits.softmax(dim=1) - p2_logits.softmax(dim=1)).pow(2).mean()


def discrepancy_signed(p1_logits, p2_logits):
    """No absolute value: each row's differences sum to 0."""
    return (p1_logits.softmax(dim=1) - p2_logits.softmax(dim=1)).mean()


def discrepancy_softmax_over_the_batch(p1_logits, p2_logits):
    return (p1_logits.softmax(dim=0) - p2_logits.softmax(dim=0)).abs().mean()


def discrepancy_summed_over_the_batch(p1_logits, p2_logits):
    return (p1_logits.softmax(dim=1) - p2_logits.softmax(dim=1)).abs().mean(dim=1).sum()


# ------------------------------------------------------------------------------------- the catalogue
# grade id -> [(wrong implementation, a part of the hint its visible test must give)]
# ------------------------------------------------------------------------------------ chapter 6
def mean_pool_over_every_position(token_embeddings, attention_mask):
    return token_embeddings.mean(1)


def mean_pool_summed(token_embeddings, attention_mask):
    return (token_embeddings * attention_mask.unsqueeze(-1)).sum(1)


def _unfreeze(model, k, *, bottom=False, refreeze=True, head=True):
    layers = model.encoder.encoder.layer
    if not 0 <= k <= len(layers):
        raise ValueError(k)
    if refreeze:
        for p in model.parameters():
            p.requires_grad_(False)
    for layer in list(layers)[:k] if bottom else list(layers)[len(layers) - k :]:
        layer.requires_grad_(True)
    if head:
        model.encoder.pooler.requires_grad_(True)
        model.head.requires_grad_(True)
    return model


def unfreeze_bottom_layers(model, k):
    return _unfreeze(model, k, bottom=True)


def unfreeze_without_freezing_first(model, k):
    return _unfreeze(model, k, refreeze=False)


def unfreeze_forgetting_the_head(model, k):
    return _unfreeze(model, k, head=False)


MISTAKES: dict[str, list[tuple[Callable | type, str]]] = {
    "mmd2_unbiased": [
        (mmd_biased, "the biased estimate"),
        (mmd_cross_term_without_diagonal, "over all m * n pairs"),
        (mmd_kernel_without_the_2, "the 2 is missing"),
        (mmd_bandwidth_not_squared, "square the bandwidth"),
        (mmd_distance_not_squared, "the squared distance"),
    ],
    "proxy_a_distance": [
        (pad_on_training_samples, "held-out samples"),
        (pad_with_accuracy, "not its accuracy"),
        (pad_without_the_2, "2 (1 - 2 eps)"),
    ],
    "freeze_blocks": [
        (freeze_without_unfreezing, "whatever was frozen before"),
        (freeze_last_blocks, "on the input side"),
        (freeze_first_layers, "count blocks with feature_blocks(model)"),
        (freeze_only_the_convolutions, "its batch norm"),
        (freeze_head_too, "should leave only the head training"),
        (freeze_without_checking_k, "raise a ValueError"),
    ],
    "l2_sp_penalty": [
        (l2_sp_without_halves, "the halves are missing"),
        (l2_sp_head_with_alpha, "The new head gets beta/2"),
        (l2_sp_beta_on_every_weight, "beta/2 ||w||^2 is for the new head only"),
        (l2_sp_norms_not_squared, "squared norms"),
        (l2_sp_ignoring_unknown_names, "should raise a KeyError"),
    ],
    "distillation_loss": [
        (distillation_without_t_squared, "Multiply by T^2"),
        (distillation_kl_swapped, "the wrong way round"),
        (distillation_mean_over_classes, "'batchmean'"),
        (distillation_summed_over_examples, "take the mean over the examples"),
        (distillation_into_the_teacher, "no gradient may reach the teacher"),
        (distillation_without_checking_temperature, "should raise a ValueError"),
    ],
    "transferability_h_score": [
        (h_score_classes_unweighted, "Weight each class mean by its share"),
        (h_score_not_centred, "Centre the features first"),
        (h_score_cov_over_n_minus_1, "the same normalisation (1/n)"),
        (h_score_between_not_shrunk, "Scale the between-class covariance by 1 - a"),
        (h_score_as_tensor, "return a Python float"),
    ],
    "gradient_reversal": [
        (ReversalNotNegated, "yours is not negated"),
        (ReversalNotScaled, "yours is not scaled by lambda"),
        (ReversalIdentity, "yours came back unchanged"),
        (ReversalInTheForwardPass, "the forward pass must return x unchanged"),
    ],
    "dann_losses": [
        (dann_losses_without_reversal, "through gradient_reversal(features, lambda_)"),
        (dann_losses_lambda_without_reversal, "lambda_ only goes into the reversal"),
        (dann_losses_detached_features, "is the domain loss's gradient reversed"),
        (dann_losses_domains_together, "passed through the network on its own"),
        (dann_losses_as_floats, "return a 0-dim tensor (no .item())"),
    ],
    "entropy_loss": [
        (entropy_summed_over_the_batch, "take the mean over the rows"),
        (entropy_softmax_over_the_batch, "over the classes (dim=1)"),
        (entropy_of_log_logits, "not of the logits"),
        (entropy_in_bits, "natural log"),
        (entropy_without_log_softmax, "use log_softmax"),
    ],
    "classifier_discrepancy": [
        (discrepancy_of_logits, "not the logits"),
        (discrepancy_summed_over_classes, "divide by K"),
        (discrepancy_squared, "not the squared one"),
        (discrepancy_signed, "Take the absolute value"),
        (discrepancy_softmax_over_the_batch, "over the classes (dim=1)"),
        (discrepancy_summed_over_the_batch, "the mean over the rows (the batch)"),
    ],
    "estimate_label_shift_bbse": [
        (bbse_transposed, "rows are the predictions"),
        (bbse_conditional_confusion, "the joint P(yhat = i, y = j)"),
        (bbse_not_clipped, "clip negative weights at 0"),
    ],
    "em_update": [
        (em_without_source_prior, "divide by the source prior"),
        (em_ratio_inverted, "q / p, not p / q"),
        (em_not_normalised, "must sum to 1"),
        (em_prior_summed, "the mean of the adjusted posteriors"),
    ],
    "h_score": [
        (h_score_arithmetic_mean, "the arithmetic mean"),
        (h_score_geometric_mean, "the geometric mean"),
        (h_score_minimum, "the smaller of the two"),
        (h_score_overall_accuracy, "images of known classes only"),
        (h_score_unknown_precision, "the recall of the unknown class"),
    ],
    "all_rotations": [
        (rotations_clockwise, "yours turn clockwise"),
        (rotations_from_one_turn, "yours start at one turn"),
        (rotations_by_transposing, "A transpose is a mirror"),
        (rotations_labels_interleaved, "The labels must follow the images' order"),
        (rotations_float_labels, "integers"),
    ],
    "coral_loss": [
        (coral_without_normalising, "Divide by 4 d^2 (here 16)"),
        (coral_biased_covariance, "divide by n - 1"),
        (coral_not_centred, "subtract each feature's mean"),
        (coral_norm_not_squared, "the squared Frobenius norm"),
    ],
    "leave_one_domain_out": [
        (lodo_leaking_the_held_out, "the held-out domain is among the training domains"),
        (lodo_popping, "do not change the domains dict"),
        (lodo_list_of_domains, "as a dict"),
        (lodo_without_checking, "should raise a ValueError"),
    ],
    "random_colour_domain": [
        (colour_ignoring_the_generator, "draw every random number from `generator`"),
        (colour_one_pair_per_batch, "every image needs its own colours"),
        (colour_first_channel, "the mean of its channels"),
        (colour_added, "the images must stay in [0, 1]"),
    ],
    "mean_pool": [
        (mean_pool_over_every_position, "the padded token (mask 0) must not count"),
        (mean_pool_summed, "divide by the number of real tokens"),
    ],
    "unfreeze_top_layers": [
        (unfreeze_bottom_layers, "only the top (last) layer"),
        (unfreeze_without_freezing_first, "must be frozen again"),
        (unfreeze_forgetting_the_head, "the head and the pooler must train"),
    ],
}


def test_every_exercise_has_at_least_two_mistakes():
    assert sorted(MISTAKES) == sorted(solution_cells()), "an exercise without wrong implementations, or a stale one"
    assert all(len(wrong) >= 2 for wrong in MISTAKES.values())


@pytest.mark.parametrize("grade_id", sorted(MISTAKES))
def test_the_reference_solution_passes_the_visible_test(grade_id, capsys):
    run_visible_test(grade_id)
    assert "visible tests passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "grade_id, wrong, hint",
    [(grade_id, wrong, hint) for grade_id, cases in MISTAKES.items() for wrong, hint in cases],
    ids=[f"{grade_id}-{wrong.__name__}" for grade_id, cases in MISTAKES.items() for wrong, _ in cases],
)
def test_a_common_mistake_fails_the_visible_test_with_a_hint(grade_id, wrong, hint):
    with pytest.raises(AssertionError) as caught:
        run_visible_test(grade_id, wrong)
    assert hint in str(caught.value), f"the message does not hint at the mistake: {caught.value}"


def test_each_visible_part_keeps_no_hidden_test_and_says_it_passed():
    for grade_id, (path, index) in solution_cells().items():
        nb = nbformat.read(path, as_version=4)
        visible = visible_test(nb, index)
        assert "HIDDEN TESTS" not in visible and "SOLUTION" not in visible, grade_id
        assert 'print("visible tests passed")' in visible, f"{grade_id}: the visible part does not say it passed"
