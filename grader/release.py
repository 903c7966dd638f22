"""`grader release`: write what students receive, never the solution or hidden tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.assignment import MANIFEST, Assignment

# Only these leave the grading side; everything else (solution.py, tests/hidden,
# examples/) stays. An allow-list, so a new file in the folder is private by default.
PUBLIC_FILES = ("starter.py", "starter.ipynb", MANIFEST)
PUBLIC_TEST_FILES = ("tests/conftest.py",)


def release(assignment: Assignment, outdir: Path) -> list[Path]:
    """Copy the student-facing files into outdir/<slug>/; return what was written."""
    target = Path(outdir) / assignment.slug
    if target.exists():
        shutil.rmtree(target)
    written = []
    for name in PUBLIC_FILES + PUBLIC_TEST_FILES:
        source = assignment.path / name
        if source.is_file():
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            written.append(dest)
    public = assignment.test_dir("public")
    for source in sorted(public.rglob("*.py")):
        dest = target / "tests" / "public" / source.relative_to(public)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        written.append(dest)
    # A minimal solution stub so `grader check` can run the public tests offline: the
    # public tests may ask for the `reference` fixture only for inputs, never answers.
    (target / "tests" / "hidden").mkdir(parents=True, exist_ok=True)
    stub = target / "solution.py"
    stub.write_text('"""Not shipped: the reference solution stays with the course staff."""\n')
    written.append(stub)
    return written
