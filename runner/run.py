"""The runner's core: find files, take the lock, compare with history, apply what is pending."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Optional, Sequence

from runner import connection as db
from runner import discovery, history, lock, snapshot
from runner.errors import (
    DriftError,
    IncompleteMigration,
    MigrationFileError,
    OutOfOrderMigration,
    RenamedMigration,
    UsageError,
)
from runner.executor import BATCH_BYTES, BATCH_FILES, Executor, Outcome, RetryPolicy, invalid_indexes
from runner.interrupts import StopSignal
from runner.migration import Migration
from runner.output import Reporter, plural
from runner.statements import KEEP_BYTES, MemoryBudget, Script, plan_listed
from runner.status import Comparison, compare
from runner.waiting import BlockerWatch

# A PostgreSQL duration as the runner sends it at connection start: digits and a unit, no
# space (the server splits startup options at spaces), or 0. A bare number would be read
# as milliseconds, so a unit is required.
_DURATION = re.compile(r"^(?:0|(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>us|ms|s|min|h|d))\Z")  # ASCII digits, as the server
_MS_PER_UNIT = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_MAX_MS = 2**31 - 1  # the settings are 32-bit integers of milliseconds


def duration_problem(value: str) -> Optional[str]:
    """Why `value` is not a duration the server accepts as lock_timeout and the like, or None."""
    match = _DURATION.match(value)
    if not match:
        return "is not a PostgreSQL duration: a number and a unit (us, ms, s, min, h, d) with no space, or 0"
    if match.group("number") is None:
        return None
    milliseconds = float(match.group("number")) * _MS_PER_UNIT[match.group("unit")]
    if milliseconds > _MAX_MS:
        return "is longer than PostgreSQL allows (2147483647ms, about 24 days)"
    if round(milliseconds) == 0 and milliseconds > 0:
        return "is shorter than 1ms; PostgreSQL would round it to 0, which disables the timeout"
    return None


@dataclass(frozen=True)
class Options:
    directory: Optional[str] = None
    lock_timeout: str = "5s"
    statement_timeout: str = "5min"
    idle_in_transaction_timeout: str = "60s"
    lock_retries: int = 3
    retry_delay: float = 1.0
    wait_for_db: float = 60.0
    wait_for_lock: float = 120.0
    sslmode: Optional[str] = None
    accept_changed: bool = False
    allow_out_of_order: bool = False
    snapshot: Optional[str] = None  # loaded first into an empty database (runner.snapshot)

    def validate(self) -> None:
        for flag, env, value in (
            ("--lock-timeout", "MIGRATION_LOCK_TIMEOUT", self.lock_timeout),
            ("--statement-timeout", "MIGRATION_STATEMENT_TIMEOUT", self.statement_timeout),
            ("--idle-in-transaction-timeout", "MIGRATION_IDLE_IN_TRANSACTION_TIMEOUT", self.idle_in_transaction_timeout),
        ):
            problem = duration_problem(value)
            if problem:
                raise UsageError(
                    f"{flag} ({env}) {value!r} {problem}",
                    hint="write it like 5s, 500ms or 10min; 0 disables it (in the stack: migrations.lockTimeout, "
                    "migrations.statementTimeout)",
                )
        if self.lock_retries < 0:
            raise UsageError("--lock-retries must be 0 or more")
        for flag, value in (("--wait-for-db", self.wait_for_db), ("--wait-for-lock", self.wait_for_lock)):
            if value < 0:
                raise UsageError(f"{flag} must be 0 or more seconds")


@dataclass
class Result:
    """What a command did: a sentence for people and counts for machines."""

    command: str
    text: str
    counts: dict = field(default_factory=dict)
    duration_ms: int = 0
    applied: list[Outcome] = field(default_factory=list)


class Session:
    """The runner's sessions with the target database.

    `connection` is the runner's own: it holds the migration lock and reads and writes the
    history. Migrations run on a second session, `migrations()`, opened only when something is
    pending: a migration can then end its session's state however it likes (`DISCARD ALL`,
    `pg_advisory_unlock_all()`) without releasing the lock under a second runner's nose.
    """

    def __init__(self, options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal):
        options.validate()
        self.options = options
        self.reporter = reporter
        self.stop = stop
        self.target = db.target_from_env(environ, options.sslmode)
        self.watch = BlockerWatch()
        self.connection = None
        self.migration_connection = None
        self.lock_token: Optional[int] = None  # the run's token (runner.lock), while the lock is held
        self.display = self.target.display

    def _connect(self, options: str, optional: tuple[str, ...] = (), watched: bool = True):
        return db.connect(
            self.target,
            options=options,
            wait_seconds=self.options.wait_for_db,
            stop=self.stop,
            watch=self.watch,
            optional=optional,
            watched=watched,
            on_retry=lambda attempt, reason, delay: self.reporter.event(
                "connect_retry", database=self.target.display, reason=reason, attempt=attempt, retry_in_s=delay
            ),
        )

    def _session_options(self) -> str:
        """The user's startup options (options= in DATABASE_URL, or PGOPTIONS), then the runner's."""
        return db.session_options(self.options.lock_timeout, self.options.statement_timeout,
                                  self.options.idle_in_transaction_timeout, self.target.options)

    def __enter__(self) -> "Session":
        for name, value in db.settings_in_options(self.target.options).items():
            if name in db.RUNNER_SETTINGS:
                self.reporter.event("note", text=f"the connection's options set {name}={value}; migrations use the "
                                                 "runner's own value (--lock-timeout, --statement-timeout, "
                                                 "--idle-in-transaction-timeout)")
        # The lock session gets the user's options too (a role=, say), but its own search_path last.
        self.connection = self._connect(db.lock_session_options(self._session_options()), db.LOCK_SESSION_OPTIONAL,
                                        watched=False)
        self.display = db.display_connected(self.connection, self.target)
        self.reporter.event("connected", database=self.display)
        return self

    def migrations(self):
        """The session migrations run on (the blocker watch looks at its lock waits)."""
        if self.migration_connection is None:
            self.migration_connection = self._connect(self._session_options())
            db.refuse_other_server(self.connection, self.migration_connection, self.display)
        return self.migration_connection

    def __exit__(self, *exc_info) -> None:
        self.watch.close()
        for connection in (self.migration_connection, self.connection):
            if connection is not None and not connection.closed:
                connection.close()
        self.stop.connection = None

    def cursor(self):
        return self.connection.cursor()

    def locked(self):
        return _Locked(self)


class _Locked:
    def __init__(self, session: Session):
        self.session = session

    def __enter__(self) -> Session:
        session = self.session
        db.refuse_read_only(session.connection, session.display)
        session.lock_token = lock.acquire(
            session.connection,
            wait_seconds=session.options.wait_for_lock,
            stop=session.stop,
            on_wait=lambda: session.reporter.event("lock_wait", wait_s=session.options.wait_for_lock),
        )
        session.reporter.event("lock_acquired")
        return session

    def __exit__(self, *exc_info) -> None:
        lock.release(self.session.connection)


def load_migrations(options: Options, reporter: Reporter) -> tuple[str, list[Migration]]:
    directories = discovery.find_directories(options.directory or None)
    migrations = discovery.load_directories(
        directories,
        on_conflict=lambda name, replaced, kept: reporter.event(
            "conflict", migration=name, replaced=str(replaced), kept=str(kept)),
    )
    where = os.pathsep.join(str(d) for d in directories)
    reporter.event("directory", directory=where, count=len(migrations))
    return where, migrations


def plan_all(migrations: Sequence[Migration]) -> dict[str, Script]:
    """Every file's statements, checked before the first one runs; every problem named. Each
    file is read here once, and what runs is what was read; close the scripts when done."""
    scripts: dict[str, Script] = {}
    problems: list[str] = []
    budget = MemoryBudget(KEEP_BYTES)
    for migration in migrations:
        try:
            scripts[migration.name] = plan_listed(migration, budget)
        except MigrationFileError as exc:
            problems.append(str(exc).replace("\n", "\n    "))
    if problems:
        close_all(scripts)
        if len(problems) == 1:
            raise MigrationFileError(problems[0] + "\nnothing was applied")
        raise MigrationFileError(f"{len(problems)} migrations cannot run; nothing was applied:\n"
                                 + "\n".join(f"  - {p}" for p in problems))
    return scripts


def close_all(scripts: dict[str, Script]) -> None:
    for script in scripts.values():
        script.close()


def apply(options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal,
          dry_run: bool = False) -> Result:
    started = time.monotonic()
    directory, migrations = load_migrations(options, reporter)
    with Session(options, environ, reporter, stop) as session:
        if dry_run:
            with session.cursor() as cursor:
                if options.snapshot and history.Tracking.find(cursor) is None:
                    reporter.event("note", text=f"would load snapshot {options.snapshot} if the database is empty")
                comparison = compare(migrations, history.load_if_present(cursor))
            return _dry_run(comparison, reporter, options.allow_out_of_order)
        with session.locked():
            if options.snapshot:
                snapshot.load_into_empty(session.migrations(), options.snapshot, reporter,
                                         check=lambda cursor: _check_loaded(cursor, migrations, options))
            result = _apply_locked(session, migrations, options, reporter, stop)
    result.duration_ms = _elapsed_ms(started)
    return result


def _history(cursor, migrations: list[Migration], reporter: Reporter,
             allow_out_of_order: Optional[bool]) -> tuple[history.Tracking, Comparison]:
    """The tracking table (made or adopted) and the files compared with it; stops on a history
    that must not be built on (an incomplete or renamed migration; files out of order unless
    allowed, or None: not applying them)."""
    tracking, added = history.Tracking.ensure(cursor)
    if added:
        reporter.event("table_adopted", columns=added)
    comparison = compare(migrations, tracking.load(cursor))
    check_history(comparison, allow_out_of_order, invalid_indexes(cursor) if comparison.incomplete else ())
    return tracking, comparison


def _check_loaded(cursor, migrations: list[Migration], options: Options) -> None:
    """What the first run after loading a snapshot would stop at, found before it commits."""
    tracking = history.Tracking.find(cursor)
    comparison = compare(migrations, tracking.load(cursor) if tracking else {})
    check_history(comparison, options.allow_out_of_order)
    if comparison.changed and not options.accept_changed:
        raise drift_error(comparison)


def _apply_locked(session: Session, migrations: list[Migration], options: Options,
                  reporter: Reporter, stop: StopSignal) -> Result:
    with session.cursor() as cursor:
        tracking, comparison = _history(cursor, migrations, reporter, options.allow_out_of_order)
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
        reporter.event("out_of_order", migration=migration.name, newest_applied=comparison.newest_applied)

    scripts = plan_all(comparison.pending)
    already = len(comparison.applied) + len(comparison.changed)
    outcomes = []
    try:
        if comparison.pending:
            executor = Executor(session.migrations(), session.connection, tracking, stop,
                                RetryPolicy(options.lock_retries, options.retry_delay), reporter.event, session.watch,
                                session.lock_token)
            stop.connection = session.migration_connection  # a signal cancels the migration's statement

            def applied(outcome: Outcome) -> None:
                scripts.pop(outcome.name).close()
                outcomes.append(outcome)
                reporter.event("applied", migration=outcome.name, statements=outcome.statements,
                               duration_ms=outcome.duration_ms, attempts=outcome.attempts)

            for batch in batches(comparison.pending, scripts, executor.batchable):
                stop.check()
                if len(batch) == 1:
                    applied(executor.apply(batch[0], scripts[batch[0].name]))
                else:
                    executor.apply_batch([(migration, scripts[migration.name]) for migration in batch], applied)
    finally:
        close_all(scripts)
    if outcomes:
        text = f"applied {plural(len(outcomes), 'migration')}; {already} already applied"
    else:
        text = f"nothing to apply; {plural(already, 'migration')} already applied"
    return Result("apply", text, {"applied": len(outcomes), "already_applied": already}, applied=outcomes)


def batches(pending: Sequence[Migration], scripts: dict[str, Script],
            batchable: Callable[[Script], bool]) -> Iterator[list[Migration]]:
    """The pending files in order, in groups sent in one round trip each (Executor.apply_batch):
    consecutive batchable files, at most BATCH_FILES of them and BATCH_BYTES together; every
    other file alone."""
    batch: list[Migration] = []
    size = 0
    for migration in pending:
        script = scripts[migration.name]
        if not batchable(script):
            if batch:
                yield batch
            batch, size = [], 0
            yield [migration]
            continue
        length = len(script.kept.raw)
        if batch and (len(batch) == BATCH_FILES or size + length > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(migration)
        size += length
    if batch:
        yield batch


def _dry_run(comparison: Comparison, reporter: Reporter, allow_out_of_order: bool) -> Result:
    check_history(comparison, allow_out_of_order)
    if comparison.changed:
        raise drift_error(comparison)
    scripts = plan_all(comparison.pending)
    close_all(scripts)
    for migration in comparison.pending:
        reporter.event("would_apply", migration=migration.name, statements=scripts[migration.name].count,
                       transaction=scripts[migration.name].transactional)
    pending, applied = len(comparison.pending), len(comparison.applied)
    return Result("apply --dry-run",
                  f"dry run: {plural(pending, 'migration')} would be applied; {applied} already applied",
                  {"pending": pending, "already_applied": applied})


def validate(options: Options, reporter: Reporter) -> Result:
    """Everything that can be checked without a database: names, encoding, statements, and,
    where pglast is installed (development and CI, not the Job), PostgreSQL's own syntax."""
    started = time.monotonic()
    _, migrations = load_migrations(options, reporter)
    scripts = plan_all(migrations)
    from runner import syntax

    try:
        checked = syntax.check(migrations, scripts)
    finally:
        close_all(scripts)
    if not checked:
        reporter.event("note", text="syntax not checked: pglast (PostgreSQL's parser) is not installed; "
                                    "the server checks it when the migration runs")
    statements = sum(s.count for s in scripts.values())
    text = (f"{plural(len(migrations), 'migration')} valid ({plural(statements, 'statement')}"
            f"{', syntax checked by PostgreSQL' + chr(39) + 's parser' if checked else ''})")
    return Result("validate", text, {"migrations": len(migrations), "statements": statements},
                  _elapsed_ms(started))


def check_history(comparison: Comparison, allow_out_of_order: Optional[bool] = False,
                  invalid_indexes: Sequence[str] = ()) -> None:
    if comparison.incomplete:
        migration, row = comparison.incomplete[0]
        leftovers = (f"; INVALID indexes in the database now (a concurrent index build that did not finish leaves "
                     f"one): {', '.join(invalid_indexes)}" if invalid_indexes else "")
        raise IncompleteMigration(
            f"{row.name} is a no-transaction migration that stopped after {plural(row.statements or 0, 'statement')}; "
            f"running it again could repeat them, so nothing was applied{leftovers}",
            hint=("drop the INVALID indexes it left (DROP INDEX CONCURRENTLY ...); " if invalid_indexes else "")
            + f"check the database by hand, then run `python -m runner resolve {row.name} --applied` "
            f"if it is complete, or `python -m runner resolve {row.name} --pending` to run it again",
        )
    if comparison.renamed:
        pairs = "; ".join(f"{m.name} has the content of {row.name}" for m, row in comparison.renamed)
        first_new, first_old = comparison.renamed[0][0].name, comparison.renamed[0][1].name
        raise RenamedMigration(
            f"renamed migrations: {pairs} (applied, and its file is gone); applying them again would run "
            "the same SQL twice, so nothing was applied",
            hint=f"if it is a rename, record it: `python -m runner rename {first_old} {first_new}`; if the "
            "content is meant to run again, change the new file",
        )
    if comparison.out_of_order and allow_out_of_order is False:
        raise out_of_order_error(comparison)


def out_of_order_error(comparison: Comparison) -> OutOfOrderMigration:
    names = ", ".join(m.name for m in comparison.out_of_order)
    newest = comparison.newest_applied
    older_release = newest not in comparison.files
    return OutOfOrderMigration(
        f"{names} {'is' if len(comparison.out_of_order) == 1 else 'are'} older than {newest}, which is already "
        "applied; applying "
        f"{'it' if len(comparison.out_of_order) == 1 else 'them'} now would run migrations in another order than "
        "every database built from scratch, so nothing was applied"
        + (f" ({newest} is not among these files: is this an older release than the one that last migrated the "
           "database?)" if older_release else ""),
        hint="give the file a version newer than every applied one (`python -m runner new NAME`, then move its SQL) "
        "if no database applied it yet; or, once you have checked it does not conflict with what ran after it, "
        "run once with `python -m runner apply --allow-out-of-order` (env MIGRATION_ALLOW_OUT_OF_ORDER=true)",
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
            name: str, as_applied: bool) -> Result:
    """Settle an incomplete no-transaction migration after a person checked the database."""
    _, migrations = load_migrations(options, reporter)
    by_name = {m.name: m for m in migrations}
    with Session(options, environ, reporter, stop) as session, session.locked():
        with session.cursor() as cursor:
            tracking = history.Tracking.find(cursor)
            row = history.lookup(tracking.load(cursor), name) if tracking else None
            if row is None or row.status != history.INCOMPLETE:
                raise UsageError(f"{name} is not an incomplete migration", hint="see `python -m runner status`")
            if as_applied:
                migration = by_name.get(name)
                checksum = migration.checksum if migration else row.checksum
                tracking.mark_applied(cursor, row.name, checksum, None, row.statements or 0)
                return Result("resolve", f"{row.name} marked as applied", {"resolved": 1})
            tracking.forget(cursor, row.name)
            return Result("resolve", f"{row.name} marked as pending; the next run applies it from the start",
                          {"resolved": 1})


def baseline(options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal,
             through: Optional[str], names: Sequence[str]) -> Result:
    """Record pending files as applied without running them: taking over a database whose
    schema was made by hand or by another tool."""
    if not through and not names:
        raise UsageError("say which migrations to record: --through VERSION, or file names",
                         hint="e.g. `python -m runner baseline --through 20251202000000`")
    _, migrations = load_migrations(options, reporter)
    known = {m.name for m in migrations}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"no such migration file: {', '.join(unknown)}", hint="see `python -m runner status`")
    if through and not through.isdigit():
        raise UsageError(f"--through {through!r} is not a version (the digits a file name starts with)")
    with Session(options, environ, reporter, stop) as session, session.locked():
        with session.cursor() as cursor:
            tracking, comparison = _history(cursor, migrations, reporter, allow_out_of_order=None)
            chosen = [m for m in comparison.pending
                      if m.name in names or (through and int(m.version) <= int(through))]
            if not chosen:
                raise UsageError("none of those migrations is pending; nothing was recorded",
                                 hint="see `python -m runner status`")
            cursor.execute("BEGIN")
            try:
                for migration in chosen:
                    tracking.record_applied(cursor, migration.name, migration.checksum, None)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
    for migration in chosen:
        reporter.event("baselined", migration=migration.name)
    return Result("baseline", f"recorded {plural(len(chosen), 'migration')} as applied without running "
                  f"{'it' if len(chosen) == 1 else 'them'}", {"baselined": len(chosen)})


def rename(options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal,
           old: str, new: str) -> Result:
    """Record that an applied file was renamed, keeping its history."""
    _, migrations = load_migrations(options, reporter)
    target = next((m for m in migrations if m.name == new), None)
    if target is None:
        raise UsageError(f"{new}: no such migration file", hint="give the file's new name as it is in the directory")
    with Session(options, environ, reporter, stop) as session, session.locked():
        with session.cursor() as cursor:
            tracking = history.Tracking.find(cursor)
            rows = tracking.load(cursor) if tracking else {}
            row = history.lookup(rows, old)
            if row is None:
                raise UsageError(f"{old} is not recorded as applied", hint="see `python -m runner status`")
            if history.lookup(rows, new) is not None:
                raise UsageError(f"{new} is already recorded; nothing was changed")
            if row.checksum and row.checksum != target.checksum:
                raise DriftError(f"{new} does not hold what {old} held when it was applied; nothing was changed",
                                 hint="a rename keeps the content; for new content add a new migration")
            tracking.rename(cursor, row.name, new)
    reporter.event("renamed", old=row.name, new=new)
    return Result("rename", f"{row.name} is now recorded as {new}", {"renamed": 1})


def reapply(options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal,
            names: Sequence[str]) -> Result:
    """Run recorded migrations again (runner.objects.reapply), under the lock, in the given order."""
    from runner import objects

    _, migrations = load_migrations(options, reporter)
    by_name = {m.name: m for m in migrations}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(f"no such migration file: {', '.join(unknown)}", hint="see `python -m runner status`")
    with Session(options, environ, reporter, stop) as session, session.locked():
        with session.cursor() as cursor:
            if history.Tracking.find(cursor) is None:
                raise UsageError("the database has no migration history; `python -m runner` applies the files")
            tracking, added = history.Tracking.ensure(cursor)  # the old script's table gains its columns
            if added:
                reporter.event("table_adopted", columns=added)
        for name in names:
            objects.reapply(session, tracking, by_name[name], reporter)
    return Result("reapply", f"applied {plural(len(names), 'recorded migration')} again", {"applied": len(names)})


def take_snapshot(options: Options, environ: Mapping[str, str], reporter: Reporter, stop: StopSignal,
                  out: str, pg_dump: Optional[str]) -> Result:
    """Write the database's schema and history to `out` (runner.snapshot)."""
    started = time.monotonic()
    with Session(options, environ, reporter, stop) as session, session.locked():
        count, last = snapshot.take(session.connection, session.target.dsn, session.target.redact, out, pg_dump,
                                    reporter)
    return Result("snapshot", f"snapshot written to {out}: the schema with {plural(count, 'recorded migration')} "
                  f"(the last {last})", {"recorded": count}, _elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return int(round((time.monotonic() - started) * 1000))
