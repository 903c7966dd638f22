"""Bounds on everything a result stores, whatever the submission printed or returned.

A result is stored per submission and shown on pages: its size must not follow the
student's output. Each part has its own cap (a test's message, the whole-submission
messages, the log, the executed notebook) and the whole JSON is kept under
`MAX_RESULT_BYTES`, dropping the least useful part first.
"""

from __future__ import annotations

from grader.results import GradeResult

MAX_RESULT_BYTES = 1 << 20
MAX_TEST_MESSAGE = 2000
MAX_TEST_DETAIL = 6000
MAX_MESSAGES, MAX_SUBMISSION_MESSAGE = 40, 3000
MAX_LOG_BYTES = 256 << 10
MAX_NOTEBOOK_BYTES = 512 << 10


def clip(text: str, limit: int, what: str = "message") -> str:
    """Text cut to at most `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    note = f"... [{what} cut: {len(text) - limit:,} more characters]"
    return text[:max(limit - len(note), 0)] + note


def _clip_log(log: str) -> str:
    data = log.encode("utf-8", "replace")
    if len(data) <= MAX_LOG_BYTES:
        return log
    kept = data[:MAX_LOG_BYTES].decode("utf-8", "ignore")
    return kept + f"\n[log cut: {len(data) - MAX_LOG_BYTES:,} more bytes]"


def bound_result(result: GradeResult) -> GradeResult:
    """The result with every part within its cap and the whole JSON under 1 MB."""
    for test in result.tests:
        test.message = clip(test.message, MAX_TEST_MESSAGE)
        test.detail = clip(test.detail, MAX_TEST_DETAIL, "detail")
        test.name = clip(test.name, 300, "name")
    extra = len(result.messages) - MAX_MESSAGES
    result.messages = [clip(m, MAX_SUBMISSION_MESSAGE) for m in result.messages[:MAX_MESSAGES]]
    if extra > 0:
        result.messages.append(f"[{extra} more messages were left out]")
    result.log = _clip_log(result.log)
    notebook = result.executed_notebook
    if notebook is not None and len(notebook.encode("utf-8", "replace")) > MAX_NOTEBOOK_BYTES:
        result.executed_notebook = None
        result.messages.append(f"the executed notebook was over {MAX_NOTEBOOK_BYTES >> 10} KB with "
                               "its outputs and was not kept; print less in your cells")
    if len(result.to_json().encode()) > MAX_RESULT_BYTES:
        result.executed_notebook = None
        result.log = clip(result.log, 16 << 10, "log")
    if len(result.to_json().encode()) > MAX_RESULT_BYTES:
        for test in result.tests:
            test.detail = clip(test.detail, 500, "detail")
    if len(result.to_json().encode()) > MAX_RESULT_BYTES:  # only many tests with long names
        for test in result.tests:
            test.message = clip(test.message, 200)
    return result

