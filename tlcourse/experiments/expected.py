"""Expected result ranges, read from ``expected.toml`` (one file, next to this module).

Each experiment's table in that file names the command and the seeds that measured its ranges, so a
range can always be traced back to real runs and regenerated.
"""

from __future__ import annotations

import json
import os
import tomllib
from functools import cache
from pathlib import Path

#: The expected file. Read through this name at each call, so that a test can point it elsewhere.
EXPECTED_FILE = Path(__file__).with_name("expected.toml")
RESTORE = "restore it with `git checkout tlcourse/experiments/expected.toml`"


def load_expected() -> dict:
    """The parsed expected file (`EXPECTED_FILE`): ``{experiment: {"command", "seeds", "ranges", ...}}``.

    A missing, unreadable, corrupted or empty file is a ValueError that names the file (and the line).
    """
    path = Path(EXPECTED_FILE)
    try:
        stat = path.stat()
    except OSError as error:
        raise ValueError(f"cannot read the expected ranges {path}: {error.strerror}; {RESTORE}.") from None
    return _parse_expected(path, stat.st_mtime_ns, stat.st_size)


@cache
def _parse_expected(path: Path, mtime_ns: int, size: int) -> dict:
    """`load_expected`'s parse, cached per file version (path, time and size)."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"the expected ranges {path} are not valid TOML ({error}); {RESTORE}.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the expected ranges {path} ({error}); {RESTORE}.") from None
    if not data:
        raise ValueError(f"the expected ranges {path} are empty (no experiment section); {RESTORE}.")
    return data


def expected_ranges() -> dict[str, dict[str, list[float]]]:
    """``{experiment: {result_name: [low, high]}}``, as ``python -m tlcourse expected --json`` prints it."""
    return {name: dict(entry.get("ranges", {})) for name, entry in load_expected().items()}


def autograding() -> bool:
    """True while nbgrader autogrades a notebook (nbgrader sets ``NBGRADER_EXECUTION=autograde``).

    Notebooks may train with a smaller budget then, so that grading a class stays fast; the range
    checks then use the experiment's ``grading_ranges``, measured at that budget.
    """
    return os.environ.get("NBGRADER_EXECUTION") == "autograde"


#: The environment variable that switches notebooks to ``--profile full`` (chapters 2 and 3).
PROFILE_VAR = "TLCOURSE_PROFILE"


def profile() -> str:
    """``"offline"`` (the default) or ``"full"``, from ``$TLCOURSE_PROFILE``: the notebooks' version of
    ``python -m tlcourse reproduce ... --profile full``. Chapters 2 and 3 then train on the real
    benchmarks at the full budget; the expected ranges, measured offline, are not checked."""
    value = os.environ.get(PROFILE_VAR, "offline") or "offline"
    if value not in ("offline", "full"):
        raise ValueError(f"${PROFILE_VAR} must be 'offline' or 'full', got {value!r}.")
    return value


def expected_range(experiment: str, name: str, grading: bool | None = None) -> tuple[float, float]:
    """The ``(low, high)`` range of one result; a clear KeyError if it is not in the file.

    With ``grading`` (default: `autograding()`), the range measured at the grading budget is used when
    the experiment has one (``[EXPERIMENT.grading_ranges]``).
    """
    grading = autograding() if grading is None else grading
    entry = load_expected().get(experiment, {})
    if grading and name in entry.get("grading_ranges", {}):
        low, high = entry["grading_ranges"][name]
        return float(low), float(high)
    ranges = expected_ranges()
    if experiment not in ranges:
        raise KeyError(f"No expected ranges for experiment {experiment!r}; known: {sorted(ranges)}.")
    if name not in ranges[experiment]:
        raise KeyError(f"No expected range for {experiment!r} result {name!r}; known: {sorted(ranges[experiment])}.")
    low, high = ranges[experiment][name]
    return float(low), float(high)


def check_result(experiment: str, name: str, value: float, grading: bool | None = None) -> float:
    """Return ``value`` if it lies in its expected range, else raise an AssertionError that says why.

    The message gives the range, where it came from, and what usually puts a number outside it.
    Under the full profile (`profile`) nothing is checked: the ranges were measured offline.
    """
    if profile() == "full":
        print(f"{experiment}: {name} = {value:.4f} (full profile: the offline ranges do not apply)")
        return value
    low, high = expected_range(experiment, name, grading)
    if not low <= value <= high:
        entry = load_expected()[experiment]
        raise AssertionError(
            f"{experiment}: {name} = {value:.4f} is outside its expected range [{low}, {high}] "
            f"(measured with `{entry.get('command', '?')}` over seeds {entry.get('seeds', '?')}). "
            "If you changed a budget (images, epochs, learning rate) or the code, run the chapter again with "
            "the defaults; if the number is still off, the implementation is likely wrong."
        )
    return value


#: The gains a chapter claims: ``{experiment: {method: baseline}}``, "``method`` beats ``baseline``". Such a
#: claim is checked on the **paired** difference ``method - baseline`` of one seed: seed-to-seed spread
#: moves both numbers together, so the single ranges of the two overlap while the gain stays positive.
CLAIMED_GAINS: dict[str, dict[str, str]] = {
    "fine-tuning": {"linear_probe": "scratch", "lp_ft": "scratch", "full_fine_tune": "scratch"},
    "dann": {
        "dann": "source_only",
        "entropy_min": "source_only",
        "fixmatch": "dann",
        "source_augment": "source_only",
        "self_training": "source_augment",
    },  # the unlabelled target adds to the prior
    "dann-long": {"dann": "source_only"},
    "dann-font-digits": {
        "entropy_min": "source_only",
        "vada": "source_only",
        "dirt_t": "source_only",
        # not "fixmatch": "dann": since DANN's Adam took beta1 = 0.5, DANN beats FixMatch on held-out seed 5
        "self_training": "source_augment",
    },
    "label-shift": {"em_calibrated": "unadapted", "bbse": "unadapted"},
    # DANN *hurts* in the partial setting: on every calibration seed, not on every seed (docs/decisions/universal-da.md)
    "universal-da": {"partial_source_only": "partial_dann"},
    # TTT (one image at a time): online TTT gains on noise; its test-time steps *hurt* on the clean source
    "test-time": {
        "bn_adapt": "source_only",
        "tent": "source_only",
        "ttt_online_noise": "ttt_joint_noise",
        "ttt_joint_source": "ttt_source",
    },
    "domain-generalization": {"single_source_augment": "single_source_erm", "colored_irm": "colored_erm"},
    # Chapter 6: with 1,000 labels, fine-tuning all layers beats the frozen probe on the same 1,000 labels
    "text-transfer": {"fine_tuned_all_1000": "frozen_probe_1000"},
}
#: The least gain a claimed gain's range allows: a method that only ties its baseline fails the check.
GAIN_FLOOR = 0.005


def gain_key(method: str, baseline: str) -> str:
    """The key of a paired gain in ``expected.toml``: ``"<method>_over_<baseline>"``."""
    return f"{method}_over_{baseline}"


def paired_gains(experiment: str, runs: list[dict]) -> list[dict]:
    """Each run's claimed gains (`CLAIMED_GAINS`) as runs of their own: ``{"results": {gain_key: diff}}``."""
    claims = CLAIMED_GAINS.get(experiment, {})
    return [
        {
            "seed": run.get("seed"),
            "results": {
                gain_key(m, b): run["results"][m] - run["results"][b]
                for m, b in claims.items()
                if m in run["results"] and b in run["results"]
            },
        }
        for run in runs
    ]


def gain_range(stats: dict[str, float]) -> list[float]:
    """A claimed gain's range: the rule of `range_from_summary` (clipped to [0, 1]), but never below `GAIN_FLOOR`."""
    low, high = range_from_summary("gain", stats)
    return [max(low, GAIN_FLOOR), high]


def check_gain(
    experiment: str, method: str, baseline: str, value: float, baseline_value: float, grading: bool | None = None
) -> float:
    """Return the gain ``value - baseline_value`` if it lies in its range, else raise an AssertionError.

    The range is ``[EXPERIMENT.gains]`` (``[EXPERIMENT.grading_gains]`` while autograding, where there is
    one); the full profile (`profile`) checks nothing.
    """
    gain = value - baseline_value
    key = gain_key(method, baseline)
    if profile() == "full":
        print(f"{experiment}: {key} = {gain:+.4f} (full profile: the offline ranges do not apply)")
        return gain
    grading = autograding() if grading is None else grading
    entry = load_expected().get(experiment, {})
    table = (
        entry.get("grading_gains", {}) if grading and key in entry.get("grading_gains", {}) else entry.get("gains", {})
    )
    if key not in table:
        raise KeyError(f"No claimed gain {key!r} for experiment {experiment!r}; known: {sorted(table)}.")
    low, high = table[key]
    if not low <= gain <= high:
        raise AssertionError(
            f"{experiment}: {method} - {baseline} = {gain:+.4f} on this seed, outside its range [{low}, {high}] "
            f"(paired gains measured with `{entry.get('command', '?')}` over seeds {entry.get('seeds', '?')}). "
            f"The chapter claims that {method} beats {baseline}; if it does not, check the implementation."
        )
    return gain


def claim(statement: str, holds: bool, evidence: str = "") -> None:
    """Print a sentence that the chapter states about its own run, and fail when the run no longer bears it out.

    ``statement`` is the sentence as the text says it ("X beats Y on this seed"), ``holds`` the check of it on
    the live numbers, ``evidence`` the numbers themselves. A claim that holds prints ``claim holds: ...``; one
    that does not raises an AssertionError naming the sentence, so that nbval (and a maintainer) sees the text
    go stale. While nbgrader autogrades (`autograding`), or under the full profile (`profile`), where the
    budget differs from the one the claim was checked at, a false claim is only printed: it costs a student
    nothing. Returns nothing, so that a claim on a cell's last line prints no ``True``.
    """
    holds = bool(holds)
    line = statement + (f" ({evidence})" if evidence else "")
    if holds:
        print(f"claim holds: {line}")
    elif autograding() or profile() == "full":
        print(f"claim NOT borne out by this run (not checked at this budget): {line}")
    else:
        raise AssertionError(
            f"claim no longer holds: {line}. The text beside this check says so; rerun with the chapter's "
            "defaults, and if it still fails, the text (or the code) has to change."
        )


def read_runs(paths: list[str | os.PathLike[str]]) -> list[dict]:
    """The `reproduce --json` outputs of one experiment, for ``expected --calibrate``, checked: each file
    exists, holds JSON with ``experiment``, ``seed`` and numeric ``results``, and all name one experiment.
    Anything else is a one-line ValueError naming the file."""
    fix = "give the JSON files that `python -m tlcourse reproduce EXPERIMENT --seed S --json FILE` wrote"
    runs = []
    for path in map(Path, paths):
        try:
            run = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"--calibrate: no file {path}; {fix}.") from None
        except IsADirectoryError:
            raise ValueError(f"--calibrate: {path} is a folder; {fix}.") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--calibrate: cannot read {path} ({error}); {fix}.") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"--calibrate: {path} is not JSON ({error}); {fix}.") from None
        results = run.get("results") if isinstance(run, dict) else None
        if (
            not isinstance(run, dict)
            or not isinstance(run.get("experiment"), str)
            or not isinstance(run.get("seed"), int)
            or not isinstance(results, dict)
            or not results
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in results.values())
        ):
            raise ValueError(
                f"--calibrate: {path} is not a `reproduce --json` output "
                "(it needs experiment, seed and numeric results); " + fix + "."
            )
        runs.append(run)
    experiments = sorted({run["experiment"] for run in runs})
    if len(experiments) != 1:
        raise ValueError(
            f"--calibrate takes the runs of one experiment, got {experiments}; give one experiment's files."
        )
    return runs


def summarize_runs(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, min and max of each result over runs (the JSON that `reproduce` writes)."""
    import statistics

    names = list(dict.fromkeys(name for run in runs for name in run["results"]))
    summary = {}
    for name in names:
        values = [run["results"][name] for run in runs if name in run["results"]]
        summary[name] = {
            "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }
    return summary


SPREAD, MARGIN = 3.0, 0.02


def range_from_summary(name: str, stats: dict[str, float]) -> list[float]:
    """The rule behind every range: ``[min - (3 sd + 0.02), max + (3 sd + 0.02)]``, rounded outward.

    Wider than the observed runs by three standard deviations and a fixed margin, so that seeds that
    were not measured still land inside; clipped to what the quantity can be (accuracies to [0, 1],
    proxy A-distances to [-2, 2], rank correlations to [-1, 1]; LogME, a log-evidence, is unbounded, an
    H-score of source features is non-negative).
    """
    import math

    pad = SPREAD * stats["sd"] + MARGIN
    low, high = math.floor((stats["min"] - pad) * 1000) / 1000, math.ceil((stats["max"] + pad) * 1000) / 1000
    if name.startswith("pad_"):
        return [max(low, -2.0), min(high, 2.0)]
    if name.startswith("kendall_tau_"):
        return [max(low, -1.0), min(high, 1.0)]
    if name.startswith(("mmd_", "logme_")):
        return [low, high]
    if name.startswith("hscore_") or name.endswith(("_mse", "_error", "_seconds")):  # non-negative, not bounded by 1
        return [max(low, 0.0), high]
    return [max(low, 0.0), min(high, 1.0)]


def calibration_toml(experiment: str, runs: list[dict], command: str) -> str:
    """The ``expected.toml`` section for one experiment, from its runs (see `range_from_summary`)."""
    summary = summarize_runs(runs)
    seeds = sorted(run["seed"] for run in runs)
    lines = [
        f"[{experiment}]",
        f'command = "{command}"',
        f"seeds = {seeds}",
        f'rule = "[min - ({SPREAD:g} sd + {MARGIN:g}), max + ({SPREAD:g} sd + {MARGIN:g})] over the seeds"',
        "",
        f"[{experiment}.ranges]",
    ]
    lines += [f"{name} = {range_from_summary(name, stats)}" for name, stats in summary.items()]
    lines += ["", f"[{experiment}.observed]  # mean, sd, min, max over the seeds"]
    lines += [
        f"{name} = [{s['mean']:.4f}, {s['sd']:.4f}, {s['min']:.4f}, {s['max']:.4f}]" for name, s in summary.items()
    ]
    gains = summarize_runs(paired_gains(experiment, runs))
    if gains:
        lines += [
            "",
            f"[{experiment}.gains]  # claimed gains, paired by seed: [min - (3 sd + 0.02), max + ...], "
            f"at least {GAIN_FLOOR}",
        ]
        lines += [f"{name} = {gain_range(stats)}" for name, stats in gains.items()]
        lines += ["", f"[{experiment}.gains_observed]  # mean, sd, min, max over the seeds"]
        lines += [
            f"{name} = [{s['mean']:.4f}, {s['sd']:.4f}, {s['min']:.4f}, {s['max']:.4f}]" for name, s in gains.items()
        ]
    return "\n".join(lines) + "\n"


def _percent(name: str) -> bool:
    """Results stored as fractions that read better as percentages (accuracies, chapter 4's open-set H-scores)."""
    return not name.startswith(("mmd_", "pad_", "hscore_", "logme_", "kendall_tau_")) and not name.endswith(
        ("_mse", "_error", "_seconds")
    )


def results_markdown() -> str:
    """Every experiment's multi-seed results as Markdown tables, from ``expected.toml``.

    One table per experiment: mean ± sd, min..max over the calibration seeds, the expected range, and
    the published number where the section has a ``[EXPERIMENT.paper]`` table (with its ``source``).
    ``python -m tlcourse expected --markdown > RESULTS.md`` regenerates the results page.
    """
    out = [
        "# Results",
        "",
        "Generated from `tlcourse/experiments/expected.toml` by `python -m tlcourse expected --markdown > RESULTS.md`.",
        "Accuracies and H-scores in %; each row is the mean ± standard deviation over the calibration seeds, then",
        "the lowest and highest seed, then the range the tests check "
        "(rule: [min - (3 sd + 0.02), max + (3 sd + 0.02)]).",
        "A *paired gain* row is a method's accuracy minus its baseline's on the same seed, for each gain a chapter",
        "claims; its range never allows less than +0.5 points, so a method that only ties its baseline fails.",
        "",
    ]
    for experiment, entry in load_expected().items():
        observed = entry.get("observed", {})
        if not observed:
            continue
        paper = {k: v for k, v in entry.get("paper", {}).items() if k != "source"}
        out += [f"## `{experiment}`", ""]
        out.append(
            f"Command: `{entry.get('command', '?')}`, seeds {entry.get('seeds', '?')}"
            + (
                f", held-out seeds {entry['held_out_seeds']} (all inside the ranges)"
                if "held_out_seeds" in entry
                else ""
            )
            + "."
        )
        if "machine" in entry:
            out.append(f"Machine: {entry['machine']}.")
        if "note" in entry:
            out.append(entry["note"])
        out.append("")
        header = "| result | mean ± sd | min .. max | expected range |"
        rule = "|---|---|---|---|"
        if paper:
            header += " published |"
            rule += "---|"
        out += [header, rule]
        for name, (mean, sd, low, high) in observed.items():
            scale, fmt = (100, "{:.1f}") if _percent(name) else (1, "{:.3f}")
            r = entry.get("ranges", {}).get(name)
            cells = [
                f"`{name}`",
                f"{fmt.format(scale * mean)} ± {fmt.format(scale * sd)}",
                f"{fmt.format(scale * low)} .. {fmt.format(scale * high)}",
                f"[{fmt.format(scale * r[0])}, {fmt.format(scale * r[1])}]" if r else "",
            ]
            if paper:
                cells.append(str(paper.get(name, "")))
            out.append("| " + " | ".join(cells) + " |")
        for key, (mean, sd, low, high) in entry.get("gains_observed", {}).items():
            r = entry.get("gains", {}).get(key)
            cells = [
                f"`{key.replace('_over_', ' - ')}` (paired gain)",
                f"{100 * mean:+.1f} ± {100 * sd:.1f}",
                f"{100 * low:+.1f} .. {100 * high:+.1f}",
                f"[{100 * r[0]:+.1f}, {100 * r[1]:+.1f}]" if r else "",
            ]
            out.append("| " + " | ".join(cells + ([""] if paper else [])) + " |")
        if paper:
            out += ["", f"Published: {entry['paper'].get('source', '?')}"]
        out.append("")
    return "\n".join(out)
