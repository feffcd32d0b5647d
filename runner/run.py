"""The runner's core: find files, take the lock, compare with history, apply what is pending."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from runner import connection as db
from runner import discovery, history, lock
from runner.errors import DriftError, IncompleteMigration, UsageError
from runner.executor import Executor, Outcome, RetryPolicy
from runner.interrupts import StopSignal
from runner.migration import Migration
from runner.output import Reporter
from runner.statements import Script, plan
from runner.status import Comparison, compare

_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


@dataclass(frozen=True)
class Options:
    directory: Optional[str] = None
    lock_timeout: str = "5s"
    statement_timeout: str = "5min"
    lock_retries: int = 3
    retry_delay: float = 1.0
    wait_for_db: float = 60.0
    wait_for_lock: float = 120.0
    sslmode: Optional[str] = None
    accept_changed: bool = False

    def validate(self) -> None:
        for flag, value in (("--lock-timeout", self.lock_timeout), ("--statement-timeout", self.statement_timeout)):
            if not _DURATION.match(value.strip()):
                raise UsageError(
                    f"{flag} {value!r} is not a PostgreSQL duration",
                    hint="use a number with a unit, e.g. 5s, 500ms, 10min; 0 disables it",
                )
        if self.lock_retries < 0:
            raise UsageError("--lock-retries must be 0 or more")
        for flag, value in (("--wait-for-db", self.wait_for_db), ("--wait-for-lock", self.wait_for_lock)):
            if value < 0:
                raise UsageError(f"{flag} must be 0 or more seconds")


@dataclass
class Summary:
    directory: Path
    applied: list[Outcome] = field(default_factory=list)
    already_applied: int = 0
    would_apply: list[Migration] = field(default_factory=list)

    def text(self) -> str:
        total_ms = sum(o.duration_ms for o in self.applied)
        if self.would_apply:
            return f"dry run: {len(self.would_apply)} migrations would be applied; {self.already_applied} already applied"
        if not self.applied:
            return f"nothing to apply; {self.already_applied} migrations already applied"
        return (
            f"applied {len(self.applied)} migrations in {total_ms} ms; "
            f"{self.already_applied} were already applied"
        )


class Session:
    """A connection to the target database, with the environment it came from."""

    def __init__(self, options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal):
        options.validate()
        self.options = options
        self.reporter = reporter
        self.stop = stop
        self.target = db.target_from_env(environ, options.sslmode)
        self.connection = None

    def __enter__(self) -> "Session":
        self.connection = db.connect(
            self.target,
            options=db.session_options(self.options.lock_timeout, self.options.statement_timeout),
            wait_seconds=self.options.wait_for_db,
            stop=self.stop,
            on_retry=lambda attempt, reason, delay: self.reporter.event(
                "connect_retry", database=self.target.display, reason=reason, attempt=attempt, retry_in_s=delay
            ),
        )
        self.reporter.event("connected", database=self.target.display)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.connection is not None and not self.connection.closed:
            self.connection.close()
        self.stop.connection = None

    def cursor(self):
        return self.connection.cursor()


def load_migrations(options: Options, reporter: Reporter) -> tuple[Path, list[Migration]]:
    directory = discovery.find_directory(options.directory or None)
    migrations = discovery.load_directory(directory)
    reporter.event("directory", directory=directory, count=len(migrations))
    return directory, migrations


def apply(options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal,
          dry_run: bool = False) -> Summary:
    directory, migrations = load_migrations(options, reporter)
    with Session(options, environ, reporter, stop) as session:
        if dry_run:
            with session.cursor() as cursor:
                comparison = compare(migrations, history.load_if_present(cursor))
            return _dry_run(directory, comparison, reporter)
        lock.acquire(
            session.connection,
            wait_seconds=options.wait_for_lock,
            stop=stop,
            on_wait=lambda: reporter.event("lock_wait", wait_s=options.wait_for_lock),
        )
        try:
            reporter.event("lock_acquired")
            return _apply_locked(session, directory, migrations, options, reporter, stop)
        finally:
            if not session.connection.closed:
                lock.release(session.connection)


def _apply_locked(session: Session, directory: Path, migrations: list[Migration], options: Options,
                  reporter: Reporter, stop: StopSignal) -> Summary:
    with session.cursor() as cursor:
        tracking, added = history.Tracking.ensure(cursor)
        if added:
            reporter.event("table_adopted", columns=", ".join(added))
        comparison = compare(migrations, tracking.load(cursor))
        check_history(comparison)
        if comparison.changed:
            if not options.accept_changed:
                raise drift_error(comparison)
            for migration, row in comparison.changed:
                tracking.update_checksum(cursor, row.name, migration.checksum)
                reporter.event("changed_accepted", migration=migration.name)
        if comparison.unchecked:
            tracking.fill_checksums(cursor, comparison.unchecked)
            reporter.event("checksums_recorded", count=len(comparison.unchecked))
    for row in comparison.missing:
        reporter.event("missing", migration=row.name)
    for migration in comparison.out_of_order:
        reporter.event("out_of_order", migration=migration.name)

    # Every pending file is split and checked before the first one runs.
    scripts = [(m, plan(m.name, m.text, m.transactional)) for m in comparison.pending]
    executor = Executor(
        session.connection, tracking, stop, RetryPolicy(options.lock_retries, options.retry_delay), reporter.event
    )
    summary = Summary(directory, already_applied=len(comparison.applied) + len(comparison.changed))
    for migration, script in scripts:
        stop.check()
        outcome = executor.apply(migration, script)
        summary.applied.append(outcome)
        reporter.event("applied", migration=outcome.name, statements=outcome.statements, duration_ms=outcome.duration_ms,
                       attempts=outcome.attempts, ran_as_batch=outcome.ran_as_batch)
    return summary


def _dry_run(directory: Path, comparison: Comparison, reporter: Reporter) -> Summary:
    check_history(comparison)
    if comparison.changed:
        raise drift_error(comparison)
    summary = Summary(directory, already_applied=len(comparison.applied))
    for migration in comparison.pending:
        script: Script = plan(migration.name, migration.text, migration.transactional)
        mode = "in one transaction" if migration.transactional else "without a transaction"
        reporter.event("would_apply", migration=migration.name, statements=script.count, mode=mode)
        summary.would_apply.append(migration)
    return summary


def validate(options: Options, reporter: Reporter) -> str:
    """Everything that can be checked without a database: names, encoding, statements."""
    _, migrations = load_migrations(options, reporter)
    statements = sum(plan(m.name, m.text, m.transactional).count for m in migrations)
    return f"{len(migrations)} migrations valid ({statements} statements)"


def check_history(comparison: Comparison) -> None:
    if comparison.incomplete:
        migration, row = comparison.incomplete[0]
        raise IncompleteMigration(
            f"{row.name} is a no-transaction migration that stopped after {row.statements or 0} "
            "statement(s); running it again could repeat them, so nothing was applied",
            hint=f"check the database by hand, then run `python -m runner resolve {row.name} --applied` "
            f"if it is complete, or `python -m runner resolve {row.name} --pending` to run it again",
        )


def drift_error(comparison: Comparison) -> DriftError:
    names = ", ".join(m.name for m, _ in comparison.changed)
    return DriftError(
        f"applied migrations changed since they ran: {names}; nothing was applied",
        hint="restore the original files and add a new migration for the change; if the edit is "
        "harmless (comments, formatting), run once with --accept-changed",
    )


def status(options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal) -> Comparison:
    _, migrations = load_migrations(options, reporter)
    with Session(options, environ, reporter, stop) as session:
        with session.cursor() as cursor:
            return compare(migrations, history.load_if_present(cursor))


def resolve(options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal,
            name: str, as_applied: bool) -> str:
    """Settle an incomplete no-transaction migration after a person checked the database."""
    _, migrations = load_migrations(options, reporter)
    by_name = {m.name: m for m in migrations}
    with Session(options, environ, reporter, stop) as session:
        lock.acquire(session.connection, wait_seconds=options.wait_for_lock, stop=stop)
        try:
            with session.cursor() as cursor:
                tracking = history.Tracking.find(cursor)
                row = history.lookup(tracking.load(cursor), name) if tracking else None
                if row is None or row.status != history.INCOMPLETE:
                    raise UsageError(f"{name} is not an incomplete migration", hint="see `python -m runner status`")
                if as_applied:
                    migration = by_name.get(name)
                    checksum = migration.checksum if migration else row.checksum
                    tracking.mark_applied(cursor, row.name, checksum, 0, row.statements or 0)
                    return f"{row.name} marked as applied"
                tracking.forget(cursor, row.name)
                return f"{row.name} marked as pending; the next run applies it from the start"
        finally:
            lock.release(session.connection)
