"""The nbgrader pipeline, end to end, on every chapter notebook with graded cells.

For each chapter: generate the student version from the source notebook, then autograde its submissions
with nbgrader's own API and gradebook:
- the solution earns full marks on every graded cell;
- the untouched student version earns zero on every graded cell;
- a submission whose solutions only call the `tlcourse` reference earns zero on those exercises;
- for every exercise, a plausible wrong implementation (in a submission of its own, the other exercises
  solved) loses that exercise's points and no other.
The student version must contain no solution and no hidden test.

Every submission is *light*: it leaves out the demonstration cells that no graded cell needs
(`needed_cells`), as a student may delete them, so that each costs seconds instead of a whole chapter's
training. Two things prove that the light copies leave out nothing a grade needs: the light solution
earns every graded cell's full marks, and each wrong submission keeps every other exercise's marks (a cell
missing from a light copy would cost an exercise its points in one of them, as every exercise is solved
in all but one). The whole source notebook, demonstrations included, runs in nbval (``notebooks/`` is
among pytest's testpaths), where each hidden test judges the solution in the notebook's own kernel; it is
not graded again here, as a whole chapter's training would be the most expensive step of this test.
(The untouched student version whole, stubs and all, runs in tests/classroom/test_student_edition.py for
chapter 1, and in nbgrader's hands wherever a student submits it.)

This uses the repository's own ``nbgrader_config.py``, with the course root moved to a temporary folder.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"

pytestmark = pytest.mark.slow


def graded_notebooks() -> list[Path]:
    found = []
    for path in sorted(NOTEBOOKS.glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells):
            found.append(path)
    return found


# Replacement bodies that call the reference implementation instead of computing anything.
CALLS_REFERENCE = {
    # Chapter 6, text transfer.
    "mean_pool": (
        "    from tlcourse.library.methods.text import mean_pool as reference\n"
        "    return reference(token_embeddings, attention_mask)\n"
    ),
    "unfreeze_top_layers": (
        "    from tlcourse.library.methods.text import unfreeze_top_layers as reference\n"
        "    return reference(model, k)\n"
    ),
    # Chapter 4, label shift.
    "estimate_label_shift_bbse": (
        "    from tlcourse.library.methods.label_shift import estimate_label_shift_bbse as reference\n"
        "    return reference(source_probs, source_labels, target_probs)\n"
    ),
    "em_update": (
        "    from tlcourse.library.methods import label_shift as reference\n"
        "    return reference.em_update(probs, source_prior, target_prior)\n"
    ),
    "h_score": (
        "    from tlcourse.library.metrics import h_score as reference\n"
        "    return reference(predictions, labels, unknown)\n"
    ),
    "all_rotations": (
        "    from tlcourse.library.methods.tta import all_rotations as reference\n    return reference(x)\n"
    ),
    "mmd2_unbiased": (
        "    from tlcourse.library.metrics import mmd2_unbiased as reference\n    return reference(x, y, bandwidth)\n"
    ),
    "proxy_a_distance": (
        "    from tlcourse.library import metrics as reference\n"
        "    return reference.proxy_a_distance(source, target, seed)\n"
    ),
    # Chapter 2, fine-tuning.
    "freeze_blocks": (
        "    from tlcourse.library.methods.fine_tuning import freeze_blocks as helper\n    return helper(model, k)\n"
    ),
    "l2_sp_penalty": (
        "    from tlcourse.library.methods import fine_tuning as helper\n"
        "    return helper.l2_sp_penalty(model, reference_params, alpha, beta)\n"
    ),
    "distillation_loss": (
        "    import tlcourse.library.methods.fine_tuning\n"
        "    return tlcourse.library.methods.fine_tuning.distillation_loss(\n"
        "        student_logits, teacher_logits, temperature)\n"
    ),
    "transferability_h_score": (
        "    from tlcourse.library.metrics import transferability_h_score as reference\n"
        "    return reference(features, labels, shrinkage)\n"
    ),
    # Chapter 3, DANN. The reversal's region is a class body: the reference's static methods, reused.
    "gradient_reversal": (
        "    from tlcourse.library.modules import GradientReversalFunction as _Reference\n"
        "    forward = staticmethod(_Reference.forward)\n"
        "    backward = staticmethod(_Reference.backward)\n"
    ),
    "dann_losses": (
        "    from tlcourse.library.methods.adversarial import dann_losses as reference\n"
        "    return reference(model, discriminator, source_x, source_y, target_x, lambda_)\n"
    ),
    "entropy_loss": (
        "    from tlcourse.library.modules import entropy_loss as reference\n    return reference(logits)\n"
    ),
    "classifier_discrepancy": (
        "    from tlcourse.library.modules import classifier_discrepancy as reference\n"
        "    return reference(p1_logits, p2_logits)\n"
    ),
    # Chapter 5, domain generalization.
    "leave_one_domain_out": (
        "    from tlcourse.library.train import leave_one_domain_out as reference\n"
        "    return reference(domains, train_and_test)\n"
    ),
    "coral_loss": (
        "    from tlcourse.library import modules as reference\n    return reference.coral_loss(source, target)\n"
    ),
    "random_colour_domain": (
        "    from tlcourse.library.modules import random_colour_domain as reference\n"
        "    return reference(x, generator)\n"
    ),
}

# One plausible mistake per exercise: each goes into its own submission, with every other exercise solved.
WRONG_IMPLEMENTATIONS = {
    # Chapter 4, label shift. BBSE on the wrong axis: the confusion matrix transposed, C[j, i] = P(y = j, yhat = i).
    "estimate_label_shift_bbse": (
        "    k = source_probs.shape[1]\n"
        "    predicted = torch.nn.functional.one_hot(source_probs.argmax(1), k).double()\n"
        "    truth = torch.nn.functional.one_hot(source_labels, k).double()\n"
        "    confusion = truth.T @ predicted / len(source_labels)\n"
        "    mu = torch.nn.functional.one_hot(target_probs.argmax(1), k).double().mean(0)\n"
        "    return torch.linalg.lstsq(confusion, mu.unsqueeze(1)).solution.squeeze(1).clamp_min(0.0)\n"
    ),
    # EM with a term dropped: re-weighted by q instead of q / p (right only for a uniform source prior).
    "em_update": (
        "    adjusted = probs * target_prior\n"
        "    adjusted = adjusted / adjusted.sum(1, keepdim=True)\n"
        "    return adjusted.mean(0), adjusted\n"
    ),
    # The H-score as the arithmetic mean instead of the harmonic mean.
    "h_score": (
        "    is_unknown = labels == unknown\n"
        "    acc_known = (predictions[~is_unknown] == labels[~is_unknown]).double().mean().item()\n"
        "    acc_unknown = (predictions[is_unknown] == unknown).double().mean().item()\n"
        "    return (acc_known + acc_unknown) / 2\n"
    ),
    # TTT's rotation targets turned clockwise: label k is then k quarter turns the other way.
    "all_rotations": (
        "    turned = [torch.rot90(x, -k, dims=(-2, -1)) for k in range(4)]\n"
        "    return torch.cat(turned), torch.arange(4).repeat_interleave(len(x))\n"
    ),
    # The biased (V-statistic) estimator: the diagonal terms k(x_i, x_i) = 1 are kept.
    "mmd2_unbiased": (
        "    def kernel(a, b):\n"
        "        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))\n"
        "    return kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()\n"
    ),
    # A term dropped: 2 (1 - eps) instead of 2 (1 - 2 eps).
    "proxy_a_distance": (
        "    features = np.concatenate([source.flatten(1).double().numpy(), target.flatten(1).double().numpy()])\n"
        "    domain = np.repeat([0, 1], [len(source), len(target)])\n"
        "    f_train, f_test, d_train, d_test = train_test_split(\n"
        "        features, domain, test_size=0.5, stratify=domain, random_state=seed)\n"
        "    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(f_train, d_train)\n"
        "    return float(2.0 * (1.0 - (1.0 - classifier.score(f_test, d_test))))\n"
    ),
    # Chapter 2, fine-tuning.
    # The state is not set exactly: what an earlier call froze stays frozen (k=0 after k=2 freezes conv1, conv2).
    "freeze_blocks": (
        "    blocks = feature_blocks(model)\n"
        "    if not 0 <= k <= len(blocks):\n"
        "        raise ValueError(k)\n"
        "    for block in blocks[:k]:\n"
        "        for p in block.parameters():\n"
        "            p.requires_grad_(False)\n"
        "    return model\n"
    ),
    # A term dropped: the new head gets no weight decay (beta is ignored).
    "l2_sp_penalty": (
        "    params = dict(model.named_parameters())\n"
        "    if set(reference_params) - set(params):\n"
        "        raise KeyError(sorted(set(reference_params) - set(params)))\n"
        "    return alpha / 2 * sum((params[n] - w0).pow(2).sum() for n, w0 in reference_params.items())\n"
    ),
    # The T^2 factor forgotten: right at T = 1, too small by T^2 at every other temperature.
    "distillation_loss": (
        "    if temperature <= 0:\n"
        "        raise ValueError(temperature)\n"
        "    log_q = F.log_softmax(student_logits / temperature, dim=1)\n"
        "    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)\n"
        "    return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()\n"
    ),
    # The shrinkage applied to cov(f) only: the between-class covariance is not scaled by 1 - a.
    "transferability_h_score": (
        "    f = features.detach().reshape(len(features), -1).double()\n"
        "    f = f - f.mean(0)\n"
        "    means = torch.zeros_like(f)\n"
        "    for k in labels.unique():\n"
        "        means[labels == k] = f[labels == k].mean(0)\n"
        "    between = means.T @ means / len(f)\n"
        "    total = f.T @ f / len(f)\n"
        "    if shrinkage:\n"
        "        total = torch.from_numpy(LedoitWolf(assume_centered=True).fit(f.numpy()).covariance_)\n"
        "    return torch.trace(torch.linalg.pinv(total, hermitian=True) @ between).item()\n"
    ),
    # Chapter 3, DANN. The sign not flipped: the identity forward, +lambda * grad backward.
    "gradient_reversal": (
        "    @staticmethod\n"
        "    def forward(ctx, x, lambda_):\n"
        "        ctx.lambda_ = float(lambda_)\n"
        "        return x.view_as(x)\n"
        "\n"
        "    @staticmethod\n"
        "    def backward(ctx, grad_output):\n"
        "        return ctx.lambda_ * grad_output, None\n"
    ),
    # The reversal left out: the features then help the domain classifier instead of fooling it.
    "dann_losses": (
        "    source_features, target_features = model.features(source_x), model.features(target_x)\n"
        "    source_logits = model.head(source_features)\n"
        "    class_loss = F.cross_entropy(source_logits, source_y)\n"
        "    domain_logits = discriminator(torch.cat([source_features, target_features]))  # no reversal\n"
        "    domain = torch.cat([torch.ones(len(source_x)), torch.zeros(len(target_x))])\n"
        "    domain_loss = F.binary_cross_entropy_with_logits(domain_logits, domain)\n"
        "    domain_acc = ((domain_logits > 0).float() == domain).float().mean().item()\n"
        '    return {"class_loss": class_loss, "domain_loss": domain_loss, "domain_acc": domain_acc,\n'
        '            "source_logits": source_logits, "target_features": target_features}\n'
    ),
    # The mean over the wrong axis: over every element, which also divides the entropy by K.
    "entropy_loss": ("    log_p = F.log_softmax(logits, dim=1)\n    return -(log_p.exp() * log_p).mean()\n"),
    # The sum over the classes where the mean belongs: K times too large.
    "classifier_discrepancy": (
        "    return (p1_logits.softmax(dim=1) - p2_logits.softmax(dim=1)).abs().sum(dim=1).mean()\n"
    ),
    # Chapter 6, text transfer.
    # The plain mean over every position: the padding counts.
    "mean_pool": "    return token_embeddings.mean(1)\n",
    # The bottom k layers unfrozen instead of the top k.
    "unfreeze_top_layers": (
        "    layers = model.encoder.encoder.layer\n"
        "    if not 0 <= k <= len(layers):\n"
        "        raise ValueError(k)\n"
        "    for p in model.parameters():\n"
        "        p.requires_grad_(False)\n"
        "    for layer in list(layers)[:k]:\n"
        "        layer.requires_grad_(True)\n"
        "    model.encoder.pooler.requires_grad_(True)\n"
        "    model.head.requires_grad_(True)\n"
        "    return model\n"
    ),
    # Chapter 5, domain generalization.
    # The held-out domain leaks into training: every model trains on all the domains.
    "leave_one_domain_out": (
        "    if len(domains) < 2:\n"
        "        raise ValueError(len(domains))\n"
        "    return {held_out: train_and_test(dict(domains), domains[held_out]) for held_out in domains}\n"
    ),
    # The biased covariance estimator (divided by n instead of n - 1).
    "coral_loss": (
        "    d = source.shape[1]\n"
        "    def covariance(x):\n"
        "        centred = x - x.mean(0, keepdim=True)\n"
        "        return centred.T @ centred / len(x)\n"
        "    return (covariance(source) - covariance(target)).pow(2).sum() / (4 * d * d)\n"
    ),
    # The wrong axis: one colour pair drawn for the whole batch instead of one per image.
    "random_colour_domain": (
        "    gray = x.mean(1, keepdim=True)\n"
        "    fg = torch.rand(1, 3, 1, 1, generator=generator)\n"
        "    bg = torch.rand(1, 3, 1, 1, generator=generator)\n"
        "    return bg + (fg - bg) * gray\n"
    ),
}


def _names(source: str) -> tuple[set[str], set[str]]:
    """``(defined, free)``: the names a cell binds or changes (assignments, imports, definitions, items and
    attributes set on a name) and the names it reads without binding them itself (scopes flattened:
    a function's parameters count as bound). IPython's ``%`` and ``!`` lines are skipped."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    bound, changed, read = set(), set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else read).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            base = node.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):  # models["dann"] = ... changes `models`
                changed.add(base.id)
    return bound | changed, read - bound


def needed_cells(nb: nbformat.NotebookNode) -> set[int]:
    """The indices of the code cells a grade depends on: every nbgrader cell, and, transitively, every
    earlier cell that defines or changes a name one of them reads without binding it. A static reading,
    hence the check that the light solution earns full marks."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    names = {i: _names(nb.cells[i].source) for i in code}
    needed = {i for i in code if nb.cells[i].metadata.get("nbgrader")}
    todo = sorted(needed)
    while todo:
        cell = todo.pop()
        for earlier in code:
            if earlier < cell and earlier not in needed and names[earlier][0] & names[cell][1]:
                needed.add(earlier)
                todo.append(earlier)
    return needed


def light(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without the code cells that no grade needs (markdown stays: it costs nothing to run)."""
    keep = needed_cells(nb)
    nb = nbformat.from_dict(nb)
    nb.cells = [c for i, c in enumerate(nb.cells) if c.cell_type != "code" or i in keep]
    return nb


def nbgrader_api(root: Path):
    from nbgrader.apps import NbGraderAPI

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    config.CourseDirectory.root = str(root)
    config.Exchange.root = str(root / "exchange")
    # The submissions are the course's own: their kernels share the models the library trains alike in each.
    config.ResilientExecute.trusted_model_cache = str(root / "model-cache")
    return NbGraderAPI(config=config)


def replace_solution(source: str, body: str) -> str:
    """Swap the solution region of a cell for ``body``, keeping the function's signature."""
    pattern = re.compile(r"[ \t]*### BEGIN SOLUTION.*?### END SOLUTION[^\n]*\n?", re.S)
    assert pattern.search(source), "solution cell without a solution region"
    return pattern.sub(body, source)


def scores(api, assignment: str, notebook: str, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url) as gb:
        sub = gb.find_submission_notebook(notebook, assignment, student)
        return {g.name: (g.score, g.max_score) for g in sub.grades if g.max_score > 0}


@pytest.fixture(scope="module", params=graded_notebooks(), ids=lambda p: p.parent.name)
def graded(request, tmp_path_factory):
    """A course in a temporary folder with the chapter released and its light submissions autograded."""
    source_nb: Path = request.param
    assignment, notebook = source_nb.parent.name, source_nb.stem
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(source_nb.parent, root / "notebooks" / assignment)
    api = nbgrader_api(root)

    result = api.generate_assignment(assignment, force=True)
    assert result["success"], result["log"] + result.get("error", "")
    released = root / "release" / assignment / source_nb.name
    assert released.exists(), f"generate_assignment wrote no {released}"

    def submission(bodies: dict[str, str]) -> tuple[nbformat.NotebookNode, set[str]]:
        """The source notebook with the solution regions of the exercises in ``bodies`` replaced."""
        nb = nbformat.read(source_nb, as_version=4)
        replaced = set()
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in bodies:
                cell.source = replace_solution(cell.source, bodies[grade_id])
                replaced.add(grade_id)
        return nb, replaced

    submissions = {
        "solution": light(nbformat.read(source_nb, as_version=4)),
        "untouched": light(nbformat.read(released, as_version=4)),
    }
    cheat, replaced = submission(CALLS_REFERENCE)
    if replaced:
        submissions["calls-reference"] = light(cheat)
    wrong = {}
    for grade_id, body in WRONG_IMPLEMENTATIONS.items():
        nb, hit = submission({grade_id: body})
        if hit:
            submissions[f"wrong-{grade_id}"] = light(nb)
            wrong[grade_id] = f"wrong-{grade_id}"
    graded_scores, loaded = {}, {}
    for student, nb in submissions.items():
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / source_nb.name)
        result = api.autograde(assignment, student, force=True, create=True)
        assert result["success"], f"autograde of {student} failed:\n{result['log']}{result.get('error', '')}"
        graded_scores[student] = scores(api, assignment, notebook, student)
        autograded = nbformat.read(root / "autograded" / student / assignment / source_nb.name, as_version=4)
        printed = "".join(o.get("text", "") for c in autograded.cells for o in c.get("outputs", []))
        loaded[student] = printed.count("model cache: loaded")
    exercises = {
        c.metadata["nbgrader"]["grade_id"]
        for c in nbformat.read(source_nb, as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("solution") and c.metadata["nbgrader"].get("grade_id")
    }
    return {
        "released": released,
        "scores": graded_scores,
        "replaced": replaced,
        "wrong": wrong,
        "exercises": exercises,
        "cached": sorted(p.name for p in (root / "model-cache").glob("*")),
        "loaded": loaded,
    }


def test_student_version_has_no_solution_and_no_hidden_test(graded):
    text = graded["released"].read_text()
    for marker in (
        "BEGIN SOLUTION",
        "END SOLUTION",
        "BEGIN HIDDEN TESTS",
        "END HIDDEN TESTS",
        "reference_blocked",
        "assert_matches_reference(mmd2",
    ):
        assert marker not in text, f"the student version still contains {marker!r}"
    assert "raise NotImplementedError()" in text


def test_solution_earns_full_marks(graded):
    solution = graded["scores"]["solution"]
    assert solution, "no graded cells were found in the gradebook"
    lost = {name: s for name, s in solution.items() if s[0] != s[1]}
    assert not lost, (
        f"the light solution lost points on {lost}: either the solution is wrong (nbval runs the whole "
        "source notebook: does it pass?) or a graded cell needs a cell that `needed_cells` leaves out, in a "
        "way its static reading misses"
    )


# The models each chapter's light notebook trains through the model cache (`tlcourse.experiments.model_cache`).
CACHED_MODELS = {"02-fine-tuning": 1}  # the source network (`fine_tuning.pretrain`)


def test_what_every_submission_trains_alike_trains_once(graded):
    """The first submission trains and saves each cached model; every later one loads them (the light solution
    earning full marks, and the wrong ones losing only their own points, say that loading changed no grade)."""
    chapter = graded["released"].parent.name
    expected = CACHED_MODELS.get(chapter, 0)
    assert len(graded["cached"]) == expected, f"{chapter}'s model cache holds {graded['cached']}"
    first, *later = graded["loaded"]
    assert graded["loaded"][first] == 0
    assert {student: graded["loaded"][student] for student in later} == dict.fromkeys(later, expected)


def test_needed_cells_follows_names_into_earlier_cells():
    cells = [
        "import torch\nSEED = 0",
        "data = torch.arange(SEED, 4)",
        "slow_demo = data.sum()\nx = 1",
        "models = {}",
        "models['a'] = data * 2",
        "%matplotlib inline\nunused = 1",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    graded = "def check(x):\n    return x\nassert check(models['a'])[1] == 2"  # its own x: not cell 2's
    nb.cells.append(nbformat.v4.new_code_cell(graded, metadata={"nbgrader": {"grade": True}}))
    assert needed_cells(nb) == {0, 1, 3, 4, 6}
    assert [c.source for c in light(nb).cells] == [cells[0], cells[1], cells[3], cells[4], graded]


def test_untouched_student_version_earns_zero(graded):
    earned = {name: s for name, s in graded["scores"]["untouched"].items() if s[0] != 0}
    assert not earned, f"the untouched student version earned points on {earned}"


def test_calling_the_reference_earns_nothing(graded):
    if not graded["replaced"]:
        pytest.skip("this chapter has no exercise with a reference-calling submission")
    scores_ = graded["scores"]["calls-reference"]
    for grade_id in graded["replaced"]:
        test_cell = f"test_{grade_id}"
        assert scores_[test_cell][0] == 0, f"calling the reference earned {scores_[test_cell]} on {test_cell}"


def test_every_exercise_has_a_reference_calling_and_a_wrong_submission(graded):
    missing_cheat = graded["exercises"] - graded["replaced"]
    missing_wrong = graded["exercises"] - set(graded["wrong"])
    assert not missing_cheat, f"add these exercises to CALLS_REFERENCE: {sorted(missing_cheat)}"
    assert not missing_wrong, f"add these exercises to WRONG_IMPLEMENTATIONS: {sorted(missing_wrong)}"


def test_a_wrong_implementation_loses_its_own_points_and_no_other(graded):
    full = graded["scores"]["solution"]
    for grade_id, student in graded["wrong"].items():
        got = graded["scores"][student]
        own = f"test_{grade_id}"
        assert got[own][0] < got[own][1], f"the wrong {grade_id} kept its points: {got[own]}"
        others = {name: s for name, s in got.items() if name != own and s != full[name]}
        assert not others, f"the wrong {grade_id} also cost points on {others}"
