"""Command line: ``python -m tlcourse {reproduce,expected,data,course,grade,hub,benchmark} ...``.

Every sub-command is a thin layer over the package (the experiments, the library's data tools, the
classroom), so the notebooks, the tests and the command line run the same code. It is the one module
that may import every shelf.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
from pathlib import Path


def _non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{value} is not positive; give 1 or more (leave the option out for the default)"
        )
    return value


def _reproduce(args: argparse.Namespace) -> int:
    from tlcourse.experiments import run_experiment
    from tlcourse.library.data.store.writable import check_writable_file

    if args.json:  # before the run, which may take an hour: a bad path must not cost it
        check_writable_file(args.json, "--json", example=f"{args.experiment}-{args.seed}.json")
        if args.json.exists() and not args.force:
            raise ValueError(f"--json {args.json} exists: give another path, or --force to replace that result.")

    # Only experiments with several tasks take --task: the others keep their old call.
    options = {"task": args.task} if args.task is not None else {}
    if args.profile != "offline":
        options["profile"] = args.profile
    result = run_experiment(args.experiment, seed=args.seed, progress=not args.quiet, **options)
    print(result.format_table())
    if args.json:
        result.save(args.json)
        print(f"wrote {args.json}")
    return 0


def _expected(args: argparse.Namespace) -> int:
    from tlcourse.experiments.expected import (
        calibration_toml,
        expected_ranges,
        load_expected,
        read_runs,
        results_markdown,
    )

    if args.calibrate:
        runs = read_runs(args.calibrate)
        experiment = runs[0]["experiment"]
        command = f"python -m tlcourse reproduce {experiment} --seed S --json runs/{experiment}-S.json"
        print(calibration_toml(experiment, runs, command), end="")
        return 0
    if args.markdown:
        from tlcourse.classroom.benchmark import budgets_markdown

        print(results_markdown() + "\n" + budgets_markdown())
        return 0
    if args.json:
        print(json.dumps(expected_ranges(), indent=2))
        return 0
    for name, entry in load_expected().items():
        print(f"{name}: measured with `{entry.get('command', '?')}`, seeds {entry.get('seeds', '?')}")
        for result, (low, high) in entry.get("ranges", {}).items():
            print(f"  {result:<24} [{low}, {high}]")
    return 0


def _data(args: argparse.Namespace) -> int:
    from tlcourse.library.data import catalog

    if args.action == "list":
        for row in catalog.list_datasets():
            print(f"{row['name']:<14} {row['status']:<8} {row.get('location', '')}  {row['description']}")
        return 0
    if not args.name:
        print(
            f"error: `python -m tlcourse data {args.action}` needs a dataset name; see `python -m tlcourse data list`.",
            file=sys.stderr,
        )
        return 2
    if args.action == "check":
        return 0 if catalog.check_dataset(args.name) else 1
    path = catalog.fetch_dataset(args.name, allow_unverified=args.allow_unverified)
    print(f"{args.name}: ready in {path}")
    return 0


def _course(args: argparse.Namespace) -> int:
    from tlcourse.classroom.course import chapter_notebooks, run_course
    from tlcourse.library.data.store.writable import check_writable_folder

    check_writable_folder(args.output, "--output")
    chapter_notebooks(Path(args.notebooks), args.chapters)  # a typo in --chapters fails here, before any run
    return run_course(
        Path(args.notebooks), Path(args.output), chapters=args.chapters, timeout=args.timeout, jobs=args.jobs
    )


def _instructors_only(command: str) -> None:
    """Stop with a clear message where the instructor's tools are left out (the student edition)."""
    if importlib.util.find_spec("tlcourse.classroom.instructor") is None:
        raise ValueError(
            f"`python -m tlcourse {command}` is for instructors, and this is the student edition of tlcourse, "
            "which leaves the instructor's tools out: run it in the full course repository."
        )


def _benchmark(args: argparse.Namespace) -> int:
    _instructors_only("benchmark")
    from tlcourse.classroom.benchmark import run_benchmark
    from tlcourse.library.data.store.writable import check_writable_folder

    check_writable_folder(args.output, "--output")
    return run_benchmark(
        Path(args.notebooks),
        Path(args.output),
        experiments=not args.no_experiments,
        chapters=args.chapters,
        test_command=Path(args.repository) if args.test_command else None,
        run_notebooks=not args.no_notebooks,
        course=not args.no_course,
        command=shlex.join(["python", "-m", "tlcourse", *sys.argv[1:]]),
    )


def _grade(args: argparse.Namespace) -> int:
    _instructors_only(f"grade {args.action}")
    if args.action == "export" and args.folder != "":  # before nbgrader loads
        from tlcourse.library.data.store.writable import check_writable_file

        path = check_writable_file(args.folder or "grades.csv", "grade export", example="grades.csv")
        if path.exists() and not args.force:
            raise ValueError(f"grade export: {path} exists; give another path, or --force to replace it.")
    if args.students is not None and (args.action != "autograde" or not args.students):
        raise ValueError("--students is for `grade autograde` and needs at least one name: --students alice bob")
    if args.action != "autograde" and (args.cell_timeout or args.memory_mib or args.submission_timeout or args.jobs):
        raise ValueError(
            "--cell-timeout, --submission-timeout, --memory-mib and --jobs are for `grade autograde`, "
            f"not `grade {args.action}`."
        )
    if args.folder == "" or (args.folder and args.action not in ("collect", "export")):
        raise ValueError(
            f"`grade {args.action}` takes no folder or file"
            if args.folder
            else "an empty path: give the folder (collect) or the CSV file (export)"
        )
    if args.force and args.action not in ("collect", "export"):
        raise ValueError(f"--force is for `grade collect` and `grade export`, not `grade {args.action}`.")
    if args.regrade and args.action != "autograde":
        raise ValueError(f"--regrade is for `grade autograde`, not `grade {args.action}`.")
    if args.action == "collect" and not args.folder:
        raise ValueError("`grade collect` needs the folder of submissions: grade collect FOLDER")
    from tlcourse.classroom import instructor

    instructor.check_course_root(args.root)
    api = instructor.nbgrader_api(
        args.root,
        cell_timeout=args.cell_timeout or instructor.DEFAULT_CELL_TIMEOUT,
        memory_mib=args.memory_mib or instructor.DEFAULT_MEMORY_MIB,
        submission_timeout=args.submission_timeout or instructor.DEFAULT_SUBMISSION_TIMEOUT,
    )
    if args.action == "release":
        instructor.release(api, args.chapters)
    elif args.action == "collect":
        instructor.collect(api, Path(args.folder), force=args.force)
    elif args.action == "autograde":
        rows = instructor.autograde(api, args.chapters, args.students, regrade=args.regrade, jobs=args.jobs or 1)
        return 1 if any(r.error for r in rows) else 0
    elif args.action == "feedback":
        instructor.feedback(api, args.chapters)
    elif args.action == "export":
        instructor.export(api, Path(args.folder or "grades.csv"), force=args.force)
    return 0


def _hub(args: argparse.Namespace) -> int:
    _instructors_only(f"hub {args.action}")
    from tlcourse.classroom import hub

    if args.action == "start":
        if args.chapters or args.due:
            raise ValueError("--chapters and --due are for `hub release|collect|feedback`, not `hub start`.")
        root = args.root or Path(__file__).resolve().parents[1]
        return hub.serve(args.state, args.roster, course_root=root, port=args.port)
    from tlcourse.classroom import instructor

    if not args.chapters:
        raise ValueError(f"`hub {args.action}` needs the chapters: --chapters 01-domain-shift")
    if args.due and args.action != "release":
        raise ValueError(f"--due is for `hub release`, not `hub {args.action}`.")
    api = hub.hub_api(args.state, args.root)
    chapters = instructor.check_chapters(api, args.chapters)
    if args.action == "release":
        hub.release(api, chapters, hub.parse_deadline(args.due) if args.due else None)
    elif args.action == "collect":
        for chapter in chapters:
            hub.collect(api, chapter)
    else:
        hub.return_feedback(api, chapters)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tlcourse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("reproduce", help="run one chapter experiment and print its table")
    p.add_argument("experiment", help="e.g. domain-shift")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="0 or more (default 0)")
    p.add_argument("--task", help="for experiments with several tasks (e.g. dann: photo-blend, font-digits)")
    p.add_argument(
        "--profile",
        choices=("offline", "full"),
        default="offline",
        help="offline (default): the embedded data and laptop budgets; full: the real benchmarks "
        "(`data fetch` them first), paper-size budgets, the GPU when there is one "
        "(dann and fine-tuning)",
    )
    p.add_argument("--json", type=Path, help="write {experiment, seed, results, seconds} here (a new file)")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("expected", help="print the expected result ranges")
    p.add_argument("--json", action="store_true", help="as {experiment: {result: [low, high]}}")
    p.add_argument(
        "--calibrate",
        nargs="+",
        metavar="RUN.json",
        help="print the expected.toml section computed from these `reproduce --json` outputs",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print every experiment's multi-seed table (the results page, RESULTS.md)",
    )
    p.set_defaults(func=_expected)

    p = sub.add_parser("data", help="list, check or fetch datasets")
    p.add_argument("action", choices=["list", "check", "fetch"])
    p.add_argument("name", nargs="?")
    p.add_argument(
        "--allow-unverified",
        action="store_true",
        help="fetch a dataset that has no published checksum (PACS); its measured sums are recorded",
    )
    p.set_defaults(func=_data)

    p = sub.add_parser("course", help="execute the chapter notebooks headless and print each chapter's results")
    p.add_argument("--notebooks", default="notebooks", help="folder of chapter folders (default: ./notebooks)")
    p.add_argument("--output", default="executed", help="where executed notebooks go (default: ./executed)")
    p.add_argument("--chapters", nargs="*", help="chapter folder names (default: all)")
    p.add_argument("--timeout", type=_positive_int, default=900, help="seconds a single cell may run")
    p.add_argument("--jobs", type=_positive_int, help="notebooks run at once (default: 2 on two or more cores, else 1)")
    p.set_defaults(func=_course)

    p = sub.add_parser("grade", help="instructors: release, collect, autograde, feedback, export (nbgrader)")
    p.add_argument("action", choices=["release", "collect", "autograde", "feedback", "export"])
    p.add_argument("folder", nargs="?", help="collect: the submissions folder; export: the CSV path (grades.csv)")
    p.add_argument("--chapters", nargs="*", help="chapter folder names (default: all)")
    p.add_argument("--students", nargs="*", help="autograde only these students (default: all submitted)")
    p.add_argument("--root", type=Path, help="course root (default: this repository)")
    # Defaults live in tlcourse.classroom.instructor (not imported here: nbgrader is slow to import).
    p.add_argument("--cell-timeout", type=_positive_int, help="seconds one cell of student code may run (default 600)")
    p.add_argument("--memory-mib", type=_positive_int, help="memory one kernel may use, in MiB (default 4096)")
    p.add_argument(
        "--submission-timeout", type=_positive_int, help="seconds one submission may run in all (default 1800)"
    )
    p.add_argument("--jobs", type=_positive_int, help="autograde: submissions graded at once (default 1)")
    p.add_argument(
        "--force",
        action="store_true",
        help="collect: replace submissions that differ from the inbox's; export: replace an existing CSV",
    )
    p.add_argument("--regrade", action="store_true", help="autograde: grade again submissions graded before")
    p.set_defaults(func=_grade)

    p = sub.add_parser(
        "hub",
        help="a class on this machine: start a JupyterHub (127.0.0.1 only); release, collect, return feedback",
    )
    p.add_argument("action", nargs="?", default="start", choices=["start", "release", "collect", "feedback"])
    p.add_argument("--roster", type=Path, default=Path("roster.txt"), help="one name a line (default roster.txt)")
    p.add_argument("--state", type=Path, default=Path("hub-state"), help="the hub's folder (default hub-state)")
    p.add_argument("--port", type=_positive_int, default=8000, help="the hub's port on 127.0.0.1 (default 8000)")
    p.add_argument("--root", type=Path, help="course root (default: this repository)")
    p.add_argument("--chapters", nargs="*", help="release, collect, feedback: chapter folder names")
    p.add_argument("--due", help="release: the deadline, e.g. 2026-12-01T17:00 (UTC)")
    p.set_defaults(func=_hub)

    p = sub.add_parser(
        "benchmark", help="time every notebook and experiment, and their peak memory, against the budgets"
    )
    p.add_argument("--notebooks", default="notebooks", help="folder of chapter folders (default: ./notebooks)")
    p.add_argument("--output", default="benchmarks/results", help="where benchmark.json and executed copies go")
    p.add_argument("--chapters", nargs="*", help="chapter folder names (default: all)")
    p.add_argument("--no-experiments", action="store_true", help="no reproduce experiments")
    p.add_argument("--no-notebooks", action="store_true", help="no notebooks")
    p.add_argument(
        "--no-course", action="store_true", help="not the whole course (run quiet, then beside a busy process)"
    )
    p.add_argument(
        "--test-command",
        action="store_true",
        help="also time the README's test command (.ci/run) in a fresh clone of HEAD, installs included "
        "(about 18 minutes; its output goes to OUTPUT/test-command.log)",
    )
    p.add_argument("--repository", default=".", help="the git repository --test-command clones (default: .)")
    p.set_defaults(func=_benchmark)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tlcourse.classroom.errors import GradingError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, PermissionError, GradingError) as error:
        # Errors of ours carry the fix in their message: show it without a traceback.
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C); what was finished is kept, the step under way was not", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
