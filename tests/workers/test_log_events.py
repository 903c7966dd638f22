"""The worker's log filter (workers.log_events): one line per event, on real log records."""

from __future__ import annotations

import io
import logging

import redis

from workers.log_events import OneLinePerEvent


def _logger(window_s: float = 60.0) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(OneLinePerEvent(window_s))
    logger = logging.getLogger(f"test-log-events-{id(out)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [handler]
    return logger, out


def test_repeats_of_a_fault_are_counted_not_printed():
    logger, out = _logger(window_s=0.2)
    for i in range(50):
        logger.warning("submission %s: OperationalError: connection refused; retry %s", i, i)
    assert out.getvalue().count("\n") == 1
    import time

    time.sleep(0.25)
    logger.warning("submission %s: OperationalError: connection refused; retry %s", 99, 1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "(and 49 more like it in 0.2 s)" in lines[1], lines
    logger.info("Task %s received", 1)
    logger.info("Task %s received", 2)
    assert len(out.getvalue().splitlines()) == 4  # ordinary INFO lines are each an event


def test_a_broker_outage_is_one_line_without_a_traceback():
    logger, out = _logger()
    try:
        redis.Redis(port=1, socket_connect_timeout=1).ping()  # a real refused connection
    except redis.ConnectionError:
        logger.warning("consumer: Connection to broker lost. Trying to re-establish the connection...",
                       exc_info=True)
    text = out.getvalue()
    assert "Traceback" not in text and text.count("\n") == 1, text
    assert "Connection to broker lost" in text and "ConnectionError" in text
