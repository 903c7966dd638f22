"""`python -m web serve`: the whole service on one machine; `init-db` and `create-user` for operators.

serve: migrates the database, creates the first instructor `admin` (password from
TORCHGRADE_ADMIN_PASSWORD, which must pass the password policy, or a one-time one printed
once and changed at the first login), starts an embedded CPU worker as a subprocess
(`python -m workers worker`, restarted whenever it exits: web/supervisor.py), and serves
the app with gunicorn. SQLite and the serverless broker under ./instance by default;
DATABASE_URL and BROKER_URL switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from typing import Any

# Where `serve` listens unless told otherwise (grader.submit.DEFAULT_URL points here).
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def _app(config: str | None = None) -> Any:
    from web import create_app

    return create_app(config=config)


def init_db(app: Any) -> None:
    """Migrate the app's database to the newest schema."""
    from web.db import upgrade

    upgrade(app.config["DATABASE_URL"])


class StartupError(Exception):
    """A setting the service cannot start with; the message says what to change."""


def first_instructor(app: Any) -> None:
    """Create `admin` if there is no instructor, printing a generated password once; StartupError if the
    password in TORCHGRADE_ADMIN_PASSWORD fails the policy."""
    from web import db
    from web.services.passwords import WeakPassword
    from web.services.users import ensure_instructor

    with app.app_context():
        given = os.environ.get("TORCHGRADE_ADMIN_PASSWORD")
        try:
            password = ensure_instructor(db.session(), given)
        except WeakPassword as exc:
            raise StartupError(f"TORCHGRADE_ADMIN_PASSWORD is refused: {exc} Set a stronger one, or unset it "
                               "to have a one-time password generated and printed.") from exc
    if password and not given:
        print(f"\n  First instructor: username 'admin', one-time password '{password}' (shown once; you "
              "choose your own at the first login)\n", flush=True)
    elif password:
        print("  First instructor 'admin' created with the password in TORCHGRADE_ADMIN_PASSWORD", flush=True)


def worker_command(app: Any, concurrency: int) -> tuple[list[str], dict[str, str]]:
    """The embedded CPU worker's command and environment: the workers' own, on this app's database."""
    env = dict(os.environ, TORCHGRADE_DATABASE=app.config["DATABASE_URL"],
               TORCHGRADE_BROKER=app.config["BROKER_URL"])
    cmd = [sys.executable, "-m", "workers", "worker", "--queue", "cpu", "-c", str(concurrency),
           "--loglevel", "WARNING"]
    return cmd, env


def start_worker(app: Any, concurrency: int) -> subprocess.Popen:
    """Start the embedded CPU worker under its supervisor (web/supervisor.py), which restarts it."""
    cmd, env = worker_command(app, concurrency)
    # A process group of its own: a Ctrl-C at the terminal reaches serve, which stops it in order.
    return subprocess.Popen([sys.executable, "-m", "web.supervisor", "--parent", str(os.getpid()), "--",
                             *cmd], env=env, process_group=0)


def stop_worker(supervisor: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Stop the supervisor, which stops the worker (SIGTERM, a wait, then SIGKILL); kill it if it hangs."""
    if supervisor.poll() is not None:
        return
    supervisor.send_signal(signal.SIGTERM)
    try:
        supervisor.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(supervisor.pid, signal.SIGKILL)


def serve_http(app: Any, host: str, port: int, workers: int, threads: int) -> None:
    """Serve app with gunicorn (a production WSGI server) in this process."""
    from gunicorn.app.base import BaseApplication

    def post_fork(_server: Any, _worker: Any) -> None:
        # A forked worker must never reuse the parent's pooled connections (a shared socket
        # corrupts both sides): drop them without closing the parent's.
        app.extensions["torchgrade.engine"].dispose(close=False)

    app.extensions["torchgrade.engine"].dispose()

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in dict(bind=f"{host}:{port}", workers=workers, threads=threads,
                                   worker_class="gthread", accesslog=None, timeout=60,
                                   post_fork=post_fork, control_socket_disable=True).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, create the first instructor, start the worker, serve."""
    app = _app(args.config)
    init_db(app)
    first_instructor(app)
    worker = None if args.no_worker else start_worker(app, args.worker_concurrency)
    where = app.config["DATABASE_URL"].split("@")[-1]  # never print a password in the URL
    print(f"torchgrade on http://{args.host}:{args.port}/ (database {where}, "
          f"{'embedded worker supervised by pid ' + str(worker.pid) if worker else 'no embedded worker'})",
          flush=True)
    arbiter = os.getpid()
    try:
        serve_http(app, args.host, args.port, args.workers, args.threads)
    finally:
        # gunicorn's forked HTTP workers leave through here too (their SystemExit): only the
        # arbiter, the process that started it, stops the worker.
        if worker and os.getpid() == arbiter:
            stop_worker(worker)
    return 0


def cmd_init_db(args: argparse.Namespace) -> int:
    """Migrate the database and create the first instructor if there is none."""
    app = _app(args.config)
    init_db(app)
    first_instructor(app)
    print("database is at the newest migration")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    """Create one user (instructor or student)."""
    from web import db
    from web.errors import ServiceError
    from web.services.users import create_user, new_password

    app = _app(args.config)
    password = args.password or new_password(args.username)
    with app.app_context():
        try:
            create_user(db.session(), username=args.username, password=password, role=args.role,
                        must_change=not args.password)
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    shown = "" if args.password else f" with one-time password {password!r} (changed at first login)"
    print(f"created {args.role} {args.username!r}{shown}")
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    """Give any user (an instructor too) a one-time password and end their sessions."""
    from web import db
    from web.errors import ServiceError
    from web.services.users import operator_reset

    app = _app(args.config)
    with app.app_context():
        try:
            password = operator_reset(db.session(), args.username)
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"{args.username!r} now has the one-time password {password!r}; they choose their own at login")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m web`."""
    parser = argparse.ArgumentParser(prog="python -m web", description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("default", "production"), default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help=cmd_serve.__doc__)
    p.add_argument("--host", default=os.environ.get("TORCHGRADE_HOST", DEFAULT_HOST))
    p.add_argument("--port", type=int, default=int(os.environ.get("TORCHGRADE_PORT", DEFAULT_PORT)))
    p.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn process")
    p.add_argument("--worker-concurrency", type=int, default=2, help="grading processes of the worker")
    p.add_argument("--no-worker", action="store_true", help="grading runs on separate worker nodes")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("init-db", help=cmd_init_db.__doc__)
    p.set_defaults(func=cmd_init_db)
    p = sub.add_parser("create-user", help=cmd_create_user.__doc__)
    p.add_argument("username")
    p.add_argument("--role", choices=("student", "instructor"), default="student")
    p.add_argument("--password", help="default: a one-time password, generated and printed")
    p.set_defaults(func=cmd_create_user)
    p = sub.add_parser("reset-password", help=cmd_reset_password.__doc__)
    p.add_argument("username")
    p.set_defaults(func=cmd_reset_password)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
