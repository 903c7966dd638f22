"""torchgrade's grading engine: assignments, the sandbox, the trusted test session."""

__version__ = "0.1.0"
