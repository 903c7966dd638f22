"""Never import from the working directory: a folder of submissions is not code to run.

`python -m grader.cli` (or `-m workers`, `-m web`) puts the working directory first on
sys.path, so a submission saved there as `numpy.py` or `pytest.py` would run in the
trusted process, as root. `install()` puts a finder first on sys.meta_path that looks
for top-level modules everywhere but there; a module found only there is refused.

The `.pth` file that scripts/install.sh writes (`PTH_LINE`) installs the finder at
interpreter start-up, before the working directory is on the path, when the process runs
one of our modules (`-m grader...`, `-m workers`, `-m web`). Where that file is missing
(a plain `pip install`), importing `grader` installs it for those processes, which covers
every import after ours but not a file named like our package itself (`grader.py`) or
one imported before it: the README says to use the `grader` command or `python -P`.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import sysconfig
from pathlib import Path

OUR_PACKAGES = ("grader", "workers", "web")
PTH_NAME = "torchgrade-safe-path.pth"
# One line, run by the site module at start-up (a .pth line that starts with "import").
# Importing grader installs the finder for our entry points; only `-m` runs pay for the
# import, and an uninstalled grader is silent.
PTH_LINE = ("import sys; exec(\"if any(a.startswith('-m') for a in sys.orig_argv[1:]):\\n try:"
            "\\n  import grader\\n except Exception:\\n  pass\")\n")


def _is_cwd(entry: str) -> bool:
    try:
        return entry in ("", ".") or os.path.realpath(entry) == os.path.realpath(os.getcwd())
    except OSError:
        return True


class NoWorkingDirFinder:
    """Finds top-level modules on sys.path less the working directory."""

    def find_spec(self, fullname, path=None, target=None):
        """Look everywhere but the working directory; refuse what is only there."""
        if path is not None:
            return None  # a submodule: its package's own folders decide
        entries = [p for p in sys.path if not _is_cwd(p)]
        spec = importlib.machinery.PathFinder.find_spec(fullname, entries, target)
        if spec is not None or len(entries) == len(sys.path):
            return spec
        for finder in sys.meta_path:
            if finder is self or finder is importlib.machinery.PathFinder:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, None, target) if find else None
            if spec is not None:
                return spec
        if importlib.machinery.PathFinder.find_spec(fullname, sys.path, target) is not None:
            raise ImportError(f"refusing to import {fullname!r} from the working directory "
                              f"{os.getcwd()}: the grader never runs code found there")
        return None


def runs_our_module(argv: list[str] | None = None) -> bool:
    """Whether this interpreter was started as `python -m` one of our packages."""
    argv = list(sys.orig_argv if argv is None else argv)
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 1].partition(".")[0] in OUR_PACKAGES
        if arg.startswith("-m") and len(arg) > 2 and not arg.startswith("--"):
            return arg[2:].partition(".")[0] in OUR_PACKAGES
    return False


def install_for_entry_points() -> None:
    """Install the finder when this process runs one of our modules with `-m`."""
    if runs_our_module():
        install()


def install() -> None:
    """Put the finder first on sys.meta_path (once)."""
    if not any(isinstance(f, NoWorkingDirFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, NoWorkingDirFinder())
        sys.path_importer_cache.clear()


def write_pth() -> Path:
    """Write the start-up hook into this interpreter's site-packages (scripts/install.sh)."""
    path = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    path.write_text(PTH_LINE)
    return path
