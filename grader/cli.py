"""The `grader` command: check, grade, validate, release, and the service's entry points.

Each subcommand parses its arguments and calls one module's function; the engine
never imports web/ or workers/ (`grader worker` and `grader submit` hand over to
them by process or HTTP).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from grader.assignment import (
    MANIFEST,
    Assignment,
    assignments_root,
    discover,
    find,
    load_assignment,
)
from grader.errors import GraderError
from grader.results import GradeResult, TestResult

GREEN, RED, YELLOW, DIM, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m"
DETAIL_LINES = 12  # of a failure's traceback, from its end


def _color(text: str, code: str) -> str:
    return f"{code}{text}{RESET}" if sys.stdout.isatty() and not os.environ.get("NO_COLOR") else text


def _resolve_assignment(name: str | None, submission: Path | None = None) -> Assignment:
    """A slug of the course, a folder (a released assignment), or found beside the file."""
    if name and Path(name).is_dir():
        return load_assignment(Path(name))
    if name:
        return find(name)
    here = (submission or Path.cwd()).resolve()
    for folder in [here.parent, *here.parents] if here.is_file() else [here, *here.parents]:
        if (folder / MANIFEST).is_file():
            return load_assignment(folder)
    raise GraderError("which assignment? pass --assignment SLUG (or the released assignment's "
                      f"folder), or run from inside it; known here: {', '.join(discover()) or 'none'}")


def _progress(result: TestResult, done: int, total: int, out=None, *, detail: bool = False) -> None:
    mark = _color("PASS", GREEN) if result.passed else _color(
        "SKIP" if result.skipped else "FAIL", YELLOW if result.skipped else RED)
    out = out or sys.__stdout__  # pytest's own output is redirected while tests run
    print(f"[{done}/{total}] {mark} {result.points:g}/{result.max_points:g}  {result.name}", file=out)
    if result.message:
        for line in result.message.splitlines()[:8]:
            print(f"        {line}", file=out)
    if detail and result.detail and not result.skipped:
        # The failure as pytest would show it: only where every file in it is the reader's
        # own (see the callers), never in what the service shows a student.
        for line in result.detail.rstrip().splitlines()[-DETAIL_LINES:]:
            print(_color(f"        | {line}", DIM), file=out)
    out.flush()


def _print_result(result: GradeResult, *, show_tests: bool, out=None) -> None:
    out = out or sys.stdout
    for message in result.messages:
        print(_color("note: ", YELLOW) + message, file=out)
    if show_tests:  # `grader grade`: run by the course staff, who have the hidden tests
        for i, t in enumerate(result.tests, 1):
            _progress(t, i, len(result.tests), out, detail=True)
    score = f"{result.score:g}/{result.max_score:g}"
    print(f"{result.assignment}: {_color(score, GREEN if result.score == result.max_score else RED)}"
          f"  ({result.status}, {result.duration_s:.2f} s, seed {result.seed})", file=out)


def run_check(file: Path, assignment: Assignment, out) -> int:
    """Check file against the assignment's public tests, printing to out; the exit code."""
    from grader.engine import LOCAL, grade

    print(f"Checking {file} against {assignment.title} (public tests)", file=out, flush=True)
    # Only the public tests run here, on the student's own machine, from files they have:
    # pytest's view of a failure (the assertion's values, the lines) is theirs to read.
    result = grade(file, assignment, mode=LOCAL, suites=("public",),
                   on_result=lambda r, done, total: _progress(r, done, total, out, detail=True))
    _print_result(result, show_tests=False, out=out)
    return 0 if result.score == result.max_score else 1


def _through_server(args: argparse.Namespace, assignment: Assignment, *extra: str) -> int | None:
    """Run this check or grade in the warm server (grader.cli_server); None: run it here."""
    from grader import cli_server

    if args.no_server or not cli_server.enabled() or not args.file.is_file():
        return None
    argv = [args.command, str(args.file.resolve()), "--assignment", str(assignment.path), *extra]
    return cli_server.run(argv, color=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))


def cmd_check(args: argparse.Namespace) -> int:
    """Run the public tests on your work, locally, with whatever sandbox this machine has."""
    assignment = _resolve_assignment(args.assignment, args.file)
    code = _through_server(args, assignment)
    return run_check(args.file, assignment, sys.stdout) if code is None else code


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade a submission with every test, as the service would."""
    from grader.engine import LOCAL, SERVICE, grade, write_gradescope

    assignment = _resolve_assignment(args.assignment, args.file)
    extra = [*(["--json"] if args.json else []), *(["--local"] if args.local else []),
             *(["--seed", str(args.seed)] if args.seed is not None else []),
             *(["--gradescope", str(args.gradescope.resolve())] if args.gradescope else [])]
    code = _through_server(args, assignment, *extra)
    if code is not None:
        return code
    result = grade(args.file, assignment, mode=LOCAL if args.local else SERVICE, seed=args.seed)
    if args.gradescope:
        write_gradescope(result, args.gradescope)
    if args.json:
        print(result.to_json(indent=2))
    else:
        _print_result(result, show_tests=True)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Prove assignments sound: reference full, starter zero, thresholds, examples."""
    if args.all:
        assignments = list(discover(args.root).values())
    elif args.slugs:
        assignments = [_resolve_assignment(s) for s in args.slugs]
    else:
        raise GraderError("name the assignments to validate, or pass --all")
    if args.jobs < 1:
        raise GraderError("--jobs must be at least 1")
    failed = []
    if args.jobs == 1 or len(assignments) == 1:
        reports = (_validate_one(a, args.local, echo=True) for a in assignments)
    else:
        reports = _validate_parallel(assignments, args.local, args.jobs)
    for slug, ok, _ in reports:
        if not ok:
            failed.append(slug)
    print(f"{len(assignments) - len(failed)} of {len(assignments)} assignments sound"
          + (f"; failing: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _validate_one(assignment: Assignment, local: bool, *, echo: bool) -> tuple[str, bool, list[str]]:
    """Validate one assignment: (slug, sound, the report's lines), printed as they come if echo."""
    from grader.engine import LOCAL, SERVICE
    from grader.validate import validate

    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if echo:
            print(line, flush=True)

    say(f"== {assignment.slug}: {assignment.title}")
    report = validate(assignment, mode=LOCAL if local else SERVICE, on_check=lambda c: say(
        f"  {_color('ok  ', GREEN) if c.ok else _color('FAIL', RED)} {c.name}"
        + ("" if c.ok else f"\n       {c.detail}")))
    for note in report.skipped:
        say(f"  {_color('NOT RUN', YELLOW)} {note}")
    return assignment.slug, report.ok, lines


def _validate_parallel(assignments: list[Assignment], local: bool,
                       jobs: int) -> Iterator[tuple[str, bool, list[str]]]:
    """Validate in `jobs` processes (each grades one submission at a time); each assignment's
    report is printed whole when it is done. Limits and timing ratios count each job's own
    CPU time, so sharing the machine this way moves no verdict."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from grader.validate import load_examples

    # Most examples first, so the last one to finish is a small one.
    order = sorted(assignments, key=lambda a: -len(load_examples(a)))
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_validate_one, a, local, echo=False) for a in order]
        for future in as_completed(futures):
            slug, ok, lines = future.result()
            print("\n".join(lines), flush=True)
            yield slug, ok, lines


def cmd_release(args: argparse.Namespace) -> int:
    """Write the student-facing files of an assignment."""
    from grader.release import release

    for path in release(_resolve_assignment(args.slug), args.outdir):
        print(path)
    return 0


def cmd_notebook(args: argparse.Namespace) -> int:
    """Rebuild an assignment's starter.ipynb from its percent-format starter.py."""
    from grader.notebooks import write_notebook

    assignment = _resolve_assignment(args.slug)
    write_notebook(assignment.starter_module, assignment.starter_notebook)
    print(assignment.starter_notebook)
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    """Show which sandbox layers this machine offers."""
    from grader.sandbox.layers import probe

    layers = probe()
    for name, ok in layers.as_dict().items():
        print(f"{name:12} {'yes' if ok else 'NO'}")
    missing = layers.missing()
    print("service grading: " + ("allowed" if not missing else f"refused (missing {missing})"))
    return 0 if not missing else 1


def cmd_worker(args: argparse.Namespace) -> int:
    """Start a grading worker for a queue (hands over to the workers package)."""
    argv = [sys.executable, "-m", "workers", "worker", "--queue", args.queue, *args.rest]
    os.execv(sys.executable, argv)
    return 1  # not reached


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit a file to the grading service with your API token."""
    from grader.submit import default_url
    from grader.submit import main as submit

    token = args.token or os.environ.get("TORCHGRADE_TOKEN", "")
    return submit(file=args.file, assignment=args.assignment, url=args.url or default_url(), token=token)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="grader", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help=cmd_check.__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--assignment", "-a", help="slug, or the released assignment's folder")
    p.add_argument("--no-server", action="store_true",
                   help="check in this process, not through the warm server")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("grade", help=cmd_grade.__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--assignment", "-a", required=True)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--gradescope", type=Path, metavar="RESULTS_JSON",
                   help="also write Gradescope's results.json here")
    p.add_argument("--seed", type=int, help="reuse a recorded seed (a reproducible regrade)")
    p.add_argument("--local", action="store_true", help="degrade when sandbox layers are missing")
    p.add_argument("--no-server", action="store_true",
                   help="grade in this process, not through the warm server")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("validate", help=cmd_validate.__doc__)
    p.add_argument("slugs", nargs="*")
    p.add_argument("--all", action="store_true")
    p.add_argument("--root", type=Path, default=None, help="assignments folder")
    p.add_argument("--local", action="store_true", help="degrade when sandbox layers are missing")
    p.add_argument("--jobs", "-j", type=int, default=1,
                   help="assignments validated at once, each in a process of its own")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("release", help=cmd_release.__doc__)
    p.add_argument("slug")
    p.add_argument("outdir", type=Path)
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("notebook", help=cmd_notebook.__doc__)
    p.add_argument("slug")
    p.set_defaults(func=cmd_notebook)

    p = sub.add_parser("layers", help=cmd_layers.__doc__)
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser("worker", help=cmd_worker.__doc__)
    p.add_argument("--queue", "-Q", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="passed on to the worker")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("submit", help=cmd_submit.__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--assignment", "-a", required=True)
    p.add_argument("--url", default=None,
                   help="the course's service (default: TORCHGRADE_URL, else http://127.0.0.1:8000, where "
                        "`python -m web serve` listens)")
    p.add_argument("--token", help="API token (or set TORCHGRADE_TOKEN)")
    p.set_defaults(func=cmd_submit)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `grader` command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GraderError as exc:
        print(_color("error: ", RED) + str(exc), file=sys.stderr)
        # The staff's part (pytest's report on a test file that failed to load): `check`
        # loads only public tests, which the student has; other commands are the staff's.
        if getattr(exc, "detail", ""):
            print(exc.detail, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["assignments_root", "build_parser", "main"]
