"""Kernel counter files read many times a second: opened once, read with pread from 0.

The job's clock samples a handful of cgroup and /proc files at every call into the
student's code (hundreds a grading). Opening each by path every time (a path walk, an
open, a close) was a quarter of the trusted side's CPU in a grading; a pread on a kept
descriptor re-reads the file as a fresh open would (seq files restart at offset 0).
Not for a cgroup v1 `tasks` or `cgroup.procs` file: the kernel keeps the pid list it made
for an open file for about a second and serves it again (measured: the job's threads
born after the first read were missed).
"""

from __future__ import annotations

import os

CHUNK = 65536


def pread_all(fd: int) -> bytes:
    """The whole file behind fd, from its start."""
    chunks, offset = [], 0
    while True:
        chunk = os.pread(fd, CHUNK, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


class KernelFiles:
    """Read handles kept open by path; a file that fails to read is dropped (and reopened)."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._closed = False  # after close, reads still work but keep nothing open

    def __len__(self) -> int:
        return len(self._fds)

    def read(self, path: str) -> bytes | None:
        """The file's content now, or None where it cannot be opened or read."""
        fd = self._fds.get(path)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
            if self._closed:
                try:
                    return pread_all(fd)
                except OSError:
                    return None
                finally:
                    os.close(fd)
            self._fds[path] = fd
        try:
            return pread_all(fd)
        except OSError:  # the task ended, the cgroup went away
            self.forget(path)
            return None

    def keep_only(self, paths: set[str]) -> None:
        """Close the handles of every path not in paths (tasks that have ended)."""
        for path in [p for p in self._fds if p not in paths]:
            self.forget(path)

    def forget(self, path: str) -> None:
        """Close one handle."""
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Close every handle (safe to call twice)."""
        self._closed = True
        for path in list(self._fds):
            self.forget(path)
