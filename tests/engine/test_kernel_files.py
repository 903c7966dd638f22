"""The kept-open reader of the kernel's counter files reads what a fresh open would."""

from __future__ import annotations

import os
import time

from grader.sandbox.kernel_files import KernelFiles


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def _run_ns(data: bytes | None) -> int:
    assert data is not None
    return int(data.split()[0])


def test_a_kept_file_reads_the_counter_as_it_is_now():
    files = KernelFiles()
    path = f"/proc/{os.getpid()}/schedstat"  # first field: nanoseconds on a CPU
    before = _run_ns(files.read(path))
    _busy(0.05)
    after = _run_ns(files.read(path))
    assert len(files) == 1  # one descriptor, read twice
    assert after - before >= 40_000_000
    with open(path, "rb") as f:
        assert _run_ns(f.read()) >= after
    files.close()


def test_a_file_that_cannot_be_read_is_none_and_not_kept(tmp_path):
    files = KernelFiles()
    assert files.read(str(tmp_path / "missing")) is None
    assert len(files) == 0


def test_after_close_reads_work_and_nothing_stays_open(tmp_path):
    path = tmp_path / "value"
    path.write_text("1\n")
    files = KernelFiles()
    assert files.read(str(path)) == b"1\n"
    files.close()
    assert len(files) == 0
    path.write_text("22\n")
    assert files.read(str(path)) == b"22\n"
    assert len(files) == 0


def test_keep_only_closes_the_rest(tmp_path):
    files = KernelFiles()
    paths = []
    for name in "abc":
        (tmp_path / name).write_text(name)
        paths.append(str(tmp_path / name))
        files.read(paths[-1])
    files.keep_only({paths[0]})
    assert len(files) == 1
    files.close()
