"""`grader grade` against Otter-Grader's `otter run` on the same notebook, this machine, no containers.

    python benchmarks/versus_otter.py [--runs 5] [--venv DIR] [--otter-version 7.0]

The notebook is 02_autograd's reference solution (grader.notebooks.module_to_notebook). The
first time, a virtual environment of its own is made (default
~/.cache/torchgrade-bench/otter-7.0) with `pip install otter-grader[grading]==7.0
torch==2.13.0` (`grading` brings the kernel that `otter run` executes the notebook in;
torch==2.13.0 is the local CPU build). An Otter autograder zip is built by hand in a
temporary folder: otter_config.json and OK-format tests that check the same functions as
four of 02's public tests (quadratic_grad, graph_info, jacobian, train_two_layer_autograd).

One untimed run of each side first checks that both grade for real and give full marks,
and prints the scores; then the two commands run interleaved --runs times (the order
alternates), and the medians and the ratio otter/grader are printed. `grader grade` runs
every test (public and hidden) in the full sandbox; `otter run` executes the notebook and
its four tests with no sandbox. The grader measured is the one this interpreter imports
(its path is printed): set PYTHONPATH to measure another checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat

import grader
from grader.assignment import find
from grader.notebooks import module_to_notebook

ASSIGNMENT = "02_autograd"
TORCH = "torch==2.13.0"  # the CPU build on local disk; a bare `torch` could pull a CUDA build

# OK-format tests (doctests in a `test` dict): the same checks as four of 02's public tests.
OK_TESTS = {
    "q1_quadratic_grad": """
        >>> import torch
        >>> x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
        >>> y, g = quadratic_grad(x)
        >>> abs(float(y) - 54.0) < 1e-6
        True
        >>> torch.allclose(g, 2 * x + 2)
        True
    """,
    "q2_graph_info": """
        >>> import torch
        >>> got = graph_info(torch.tensor([5.0]), torch.tensor([0.5]), torch.tensor([-0.2]))
        >>> tuple(got["is_leaf"])
        (True, True, True, False, False)
        >>> tuple(got["grad_fn"])
        (None, None, None, 'MulBackward0', 'AddBackward0')
        >>> torch.allclose(got["w_grad"], torch.tensor([5.0]))
        True
        >>> torch.allclose(got["b_grad"], torch.tensor([1.0]))
        True
    """,
    "q3_jacobian": """
        >>> import torch
        >>> x = torch.tensor([[2.0, 3.0]], requires_grad=True)
        >>> y = x.pow(2) + x.flip(1) * torch.tensor([[3.0, 2.0]])
        >>> torch.allclose(jacobian(y, x), torch.tensor([[4.0, 3.0], [2.0, 6.0]]))
        True
    """,
    "q4_train_two_layer_autograd": """
        >>> import torch
        >>> gen = torch.Generator().manual_seed(2024)
        >>> x, y = torch.randn(8, 10, generator=gen), torch.randn(8, 3, generator=gen)
        >>> w1, w2 = torch.randn(10, 6, generator=gen), torch.randn(6, 3, generator=gen)
        >>> h1, h2 = w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)
        >>> losses = train_two_layer_autograd(x, y, h1, h2, learning_rate=1e-3, steps=10)
        >>> len(losses)
        10
        >>> first = float((x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum())
        >>> abs(float(losses[0]) - first) <= 1e-5 * abs(first)
        True
        >>> float(losses[-1]) < float(losses[0]), torch.equal(h1.detach(), w1), h1.grad is not None
        (True, False, True)
    """,
}


def venv_python(venv: Path) -> Path:
    """The interpreter of the virtual environment."""
    return venv / "bin" / "python"


def ensure_venv(venv: Path, otter_version: str) -> Path:
    """Make the virtual environment with otter-grader and torch the first time; its python."""
    python = venv_python(venv)
    probe = [str(python), "-c", "import otter, torch, ipykernel; print(otter.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True, env=_otter_env())
        if done.returncode == 0:
            return python
    print(f"making {venv} (otter-grader {otter_version}, {TORCH}); this takes a few minutes",
          flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-qq",
                    f"otter-grader[grading]=={otter_version}", TORCH], check=True, env=_otter_env())
    subprocess.run(probe, check=True, env=_otter_env())
    return python


def _otter_env() -> dict[str, str]:
    """This environment without PYTHONPATH, so the venv imports only its own packages."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def write_autograder(folder: Path) -> Path:
    """An Otter autograder zip: otter_config.json and the OK tests under tests/."""
    path = folder / "autograder.zip"
    config = {"lang": "python", "pdf": False, "print_summary": True, "show_stdout": True}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("otter_config.json", json.dumps(config))
        for name, code in OK_TESTS.items():
            spec = {"name": name, "points": 1,
                    "suites": [{"type": "doctest", "scored": True,
                                "cases": [{"code": code, "hidden": False, "locked": False}]}]}
            zf.writestr(f"tests/{name}.py", f"OK_FORMAT = True\n\ntest = {spec!r}\n")
    return path


def write_notebook(folder: Path) -> Path:
    """02_autograd's reference solution as a notebook."""
    path = folder / "submission.ipynb"
    source = find(ASSIGNMENT).solution.read_text()
    nbformat.write(module_to_notebook(source), str(path))
    return path


def run_grader(notebook: Path, *, server: bool = True) -> tuple[float, str]:
    """Seconds for `grader grade --json` on the notebook, and its score as 'got/max (tests)'.

    With server, the command goes through the user's warm grading server (started by the
    untimed first run, as a student's first `grader check` starts it); without, it is
    `--no-server`: a fresh process that imports the engine and starts its own sandbox.
    """
    root = Path(grader.__file__).resolve().parent.parent
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(notebook),
                           "--assignment", ASSIGNMENT, "--json",
                           *([] if server else ["--no-server"])],
                          cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"grader grade failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(done.stdout[done.stdout.index("{"):])
    if result["score"] != result["max_score"]:
        raise RuntimeError(f"grader grade gave {result['score']}/{result['max_score']}: "
                           f"{result.get('messages')}")
    return elapsed, f"{result['score']:g}/{result['max_score']:g} ({len(result['tests'])} tests)"


def run_otter(python: Path, notebook: Path, autograder: Path, out: Path) -> tuple[float, str]:
    """Seconds for `otter run` on the notebook, and its score as 'got/max (tests)'."""
    results = out / "results.json"
    results.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run([str(python), "-m", "otter", "run", "-a", str(autograder), "-o", str(out),
                           "--no-logo", str(notebook)],
                          cwd=out, capture_output=True, text=True, env=_otter_env())
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or not results.exists():
        raise RuntimeError(f"otter run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    report = json.loads(results.read_text())
    tests = [t for t in report["tests"] if "max_score" in t]  # one entry per test file
    got, most = sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)
    if len(tests) != len(OK_TESTS) or got != most:
        raise RuntimeError(f"otter run gave {got}/{most} over {len(tests)} tests:\n{done.stdout}")
    return elapsed, f"{got:g}/{most:g} ({len(tests)} tests)"


def main() -> int:
    """Build both sides, check they grade for real, and print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--otter-version", default="7.0")
    parser.add_argument("--venv", type=Path, default=None,
                        help="virtual environment for otter (default ~/.cache/torchgrade-bench/"
                             "otter-VERSION)")
    args = parser.parse_args()
    venv = args.venv or Path.home() / ".cache" / "torchgrade-bench" / f"otter-{args.otter_version}"
    python = ensure_venv(venv.expanduser(), args.otter_version)
    with tempfile.TemporaryDirectory(prefix="torchgrade-vs-otter-") as tmp:
        folder = Path(tmp)
        notebook, autograder = write_notebook(folder), write_autograder(folder)
        out = folder / "otter-out"
        out.mkdir()
        print(f"grader: {Path(grader.__file__).resolve().parent}")
        print(f"otter:  {python}")
        _, grader_score = run_grader(notebook)
        _, otter_score = run_otter(python, notebook, autograder, out)
        print(f"untimed check: grader grade {grader_score}, otter run {otter_score}")
        grader_s: list[float] = []
        cold_s: list[float] = []
        otter_s: list[float] = []
        for i in range(args.runs):
            sides = [lambda: grader_s.append(run_grader(notebook)[0]),
                     lambda: cold_s.append(run_grader(notebook, server=False)[0]),
                     lambda: otter_s.append(run_otter(python, notebook, autograder, out)[0])]
            for side in sides if i % 2 == 0 else reversed(sides):
                side()
    g, c, o = (statistics.median(s) for s in (grader_s, cold_s, otter_s))
    print(f"{ASSIGNMENT} notebook, medians of {args.runs} interleaved runs")
    print(f"grader grade (warm server): {g:.3f} s (min {min(grader_s):.3f})")
    print(f"grader grade --no-server:   {c:.3f} s (min {min(cold_s):.3f})")
    print(f"otter run:                  {o:.3f} s (min {min(otter_s):.3f})")
    print(f"ratio otter/grader: {o / g:.2f} warm, {o / c:.2f} --no-server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
