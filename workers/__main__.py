"""`python -m workers worker --queue cpu|gpu`, `python -m workers sweep`, `python -m workers status`.

`grader worker --queue Q ...` execs the first of these. Flags become TORCHGRADE_*
environment variables before the Celery app is made, so pool children see them too.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys


def _apply(args: argparse.Namespace) -> None:
    if args.broker:
        os.environ["TORCHGRADE_BROKER"] = args.broker
    if args.database:
        os.environ["TORCHGRADE_DATABASE"] = args.database


def cmd_worker(args: argparse.Namespace) -> int:
    """Start a Celery worker consuming one queue."""
    from workers.gpu import NoGPU, require_gpus

    concurrency = args.concurrency
    if args.queue == "gpu":
        try:
            gpus = require_gpus()
        except NoGPU as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if concurrency and concurrency != len(gpus):
            print(f"note: gpu workers run one task per GPU; concurrency {len(gpus)}, not {concurrency}",
                  file=sys.stderr)
        concurrency = len(gpus)
    os.environ["TORCHGRADE_WORKER_QUEUE"] = args.queue
    from workers.celery_app import get_app

    argv = ["worker", "-Q", args.queue, "-n", args.hostname or f"{args.queue}@{socket.gethostname()}",
            "-P", "prefork", "--loglevel", args.loglevel, "--without-gossip", "--without-mingle"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    get_app().worker_main(argv)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Sweep once: requeue expired leases, resend queued work whose message was lost."""
    from workers.celery_app import get_app, settings_of
    from workers.db import get_engine
    from workers.models import create_schema
    from workers.service import sweep

    app = get_app()
    settings = settings_of(app)
    engine = get_engine(settings.database_url)
    create_schema(engine)
    report = sweep(engine, app=app, settings=settings)
    if not report.swept:
        print(f"not swept: {report.holder or 'another process'} is sweeping now (one at a time)")
        return 0
    print(f"requeued {report.requeued}, failed {report.failed}, resent {report.resent}"
          + (f"; {report.still_waiting} queued long but still in the broker" if report.still_waiting else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print each worker node's state and what it grades, and each queue's consumers."""
    import sqlalchemy.exc
    from sqlalchemy import inspect

    from workers.config import Settings
    from workers.db import get_engine
    from workers.health import queue_health, worker_health

    engine = get_engine(Settings.from_env().database_url)
    try:
        if not inspect(engine).has_table("worker_heartbeats"):
            print("no worker has started on this database yet (it has no torchgrade tables): start "
                  "one with `python -m workers worker`, or `python -m web init-db`")
            return 0
        workers, queues = worker_health(engine), queue_health(engine)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        print(f"error: cannot read the database ({type(exc).__name__}: "
              f"{str(exc).splitlines()[0]})", file=sys.stderr)
        return 1
    if not workers:
        print("no worker has beaten its heart in the last hour")
    for w in workers:
        print(f"{w.hostname:30} {w.status:7} queues={w.queues} last_seen={w.last_seen_at:%Y-%m-%d %H:%M:%S} "
              f"grading={w.grading}")
    for q in queues:
        note = "  <- NO WORKER TAKES THIS QUEUE" if q.unserved else ""
        print(f"queue {q.queue:6} consumers={q.consumers} waiting={q.waiting}{note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `python -m workers`."""
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--broker", help="broker URL (default $TORCHGRADE_BROKER or SQLite)")
    common.add_argument("--database", help="database URL (default $TORCHGRADE_DATABASE or SQLite)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("worker", parents=[common], help=cmd_worker.__doc__)
    p.add_argument("--queue", "-Q", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--concurrency", "-c", type=int, default=0, help="pool processes (default: CPUs)")
    p.add_argument("--hostname", "-n", help="worker node name (default QUEUE@host)")
    p.add_argument("--loglevel", "-l", default="INFO")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("sweep", parents=[common], help=cmd_sweep.__doc__)
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("status", parents=[common], help=cmd_status.__doc__)
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m workers`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:  # `grader worker --queue Q -- --broker ...` passes a separator through
        argv.remove("--")
    args = build_parser().parse_args(argv)
    _apply(args)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
