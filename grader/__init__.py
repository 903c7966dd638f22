"""torchgrade's grading engine: assignments, the sandbox, the trusted test session."""

from grader.safe_path import install_for_entry_points

__version__ = "0.1.0"

# `python -m grader.cli` from a folder of submissions: nothing there is imported.
install_for_entry_points()
