"""Bare run of a submission: import it and make the recorded calls, no sandbox, no tests.

    python benchmarks/replay.py SUBMISSION.py CALLS.frames
"""

from __future__ import annotations

import importlib.util
import sys

from grader.guest.dispatch import Dispatcher
from grader.guest.wire import PREFIX


def main(path: str, frames: str) -> int:
    """Import the module at path and answer each recorded request."""
    spec = importlib.util.spec_from_file_location("submission", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dispatcher = Dispatcher(module)
    data = memoryview(open(frames, "rb").read())
    while data:
        header_len, blob_len = PREFIX.unpack(data[:PREFIX.size])
        start = PREFIX.size
        header = bytes(data[start:start + header_len])
        blob = bytes(data[start + header_len:start + header_len + blob_len])
        dispatcher.answer((header, blob), path)
        data = data[start + header_len + blob_len:]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
