"""Apply one migration: in one transaction with its tracking row, or statement by statement.

A transactional migration is sent as its own bytes, in one query when it is small (BEGIN,
the file, the tracking row and COMMIT in one round trip) and in segments of whole
statements when it is large, so PostgreSQL's parser splits it, exactly as psql would
have. Its statements and its schema_migrations row commit together or not at all. A
large segment goes as a query of its own, the bytes as read (no copy of it is made on
the way to libpq), so one large statement costs about what it costs psql.

When a statement fails, PostgreSQL names the position for parse errors; for errors that
carry no position (a unique violation, a missing table), the migration is rolled back
and run again one statement at a time, inside a transaction that is rolled back too,
to name the statement and its line.

A lock timeout (55P03), a deadlock (40P01) or a serialization failure (40001) rolls the
migration back and retries it with backoff.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import psycopg2
import psycopg2.errorcodes as codes

from runner import characters, history
from runner.errors import (
    ConnectionLost,
    FileChanged,
    IncompleteMigration,
    Interrupted,
    LockTimeoutsExhausted,
    MigrationFailed,
    MigrationFileError,
    SessionEndedByMigration,
    TrackingFailed,
    UsageError,
)
from runner.interrupts import StopSignal
from runner.migration import Migration
from runner.statements import READING_SETTINGS, Script, Segment, Statement
from runner.waiting import BlockerWatch

Event = Callable[..., None]
RETRIED = {codes.LOCK_NOT_AVAILABLE, codes.DEADLOCK_DETECTED, codes.SERIALIZATION_FAILURE}
# A segment larger than this is sent as a query of its own, not joined with BEGIN and the tracking row.
ALONE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Outcome:
    name: str
    statements: int
    duration_ms: int  # wall time, every attempt included
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    lock_retries: int = 3
    first_delay: float = 1.0


class _Retry(Exception):
    def __init__(self, failure: MigrationFailed):
        self.failure = failure


@dataclass
class _Failed:
    exc: psycopg2.Error
    segment: Segment
    index: int  # which segment of the script
    shift: Optional[int]  # characters sent before the segment's text in the same query; None: not in it


class Executor:
    def __init__(self, connection, tracking: history.Tracking, stop: StopSignal, retry: RetryPolicy,
                 event: Event, watch: Optional[BlockerWatch] = None):
        self.connection = connection
        self.tracking = tracking
        self.stop = stop
        self.retry = retry
        self.event = event
        self.watch = watch
        # The file's bytes go as they are when the session's client encoding is the files' own.
        # (UTF8, or SQL_ASCII whose codec is UTF-8: runner.connection)
        self.send_bytes = connection.encoding in ("UTF8", "SQL_ASCII", "SQLASCII")
        self.reading = _reading_settings(connection)
        if self.reading[0] not in ("on", None):
            raise UsageError(
                "standard_conforming_strings is off in the runner's session (a database or role setting, or "
                "PGOPTIONS): PostgreSQL would read a backslash in '...' as an escape, unlike the runner's checks "
                "and every tool that assumes the default; nothing was applied",
                hint="turn it back to the default for this database or role, e.g. "
                "ALTER DATABASE <name> RESET standard_conforming_strings (or ALTER ROLE <role> RESET ...)",
            )

    def apply(self, migration: Migration, script: Script) -> Outcome:
        started = time.monotonic()
        delay = self.retry.first_delay
        attempt = 0
        while True:
            attempt += 1
            if self.watch:
                self.watch.forget()
            try:
                if script.transactional:
                    self._apply_in_transaction(migration, script)
                else:
                    self._apply_without_transaction(migration, script)
                return Outcome(migration.name, script.count, _elapsed_ms(started), attempt)
            except _Retry as retry:
                if attempt > self.retry.lock_retries:
                    raise self._exhausted(retry.failure, attempt, started) from None
                self.event("lock_timeout_retry", migration=migration.name, attempt=attempt, retry_in_s=delay,
                           sqlstate=retry.failure.sqlstate, blockers=self._blockers())
                self.stop.sleep(delay)
                delay *= 2

    # -- transactional ---------------------------------------------------------------

    def _apply_in_transaction(self, migration: Migration, script: Script) -> None:
        begin = _terminated(script.opener or "BEGIN")
        failed: Optional[_Failed] = None
        with self.connection.cursor() as cursor:
            try:
                for index, segment, last in _with_last(script.segments()):
                    self.stop.check()
                    if index:
                        self._check_reading(migration, "it was rolled back")
                    prefix = begin + "\n" if index == 0 else ""
                    suffix = ""
                    if last:
                        record = self.tracking.record_sql(cursor, migration.name, script.checksum, script.count)
                        suffix = f"\n;\n{record}; COMMIT; {history.RESET_SESSION}"
                    failed = self._send(cursor, prefix, segment, suffix, index)
                    if failed:
                        break
            except FileChanged as changed:
                self._rollback(cursor)
                raise FileChanged(changed.file, changed.line, "it was rolled back: nothing of it is applied") from None
            except BaseException:
                self._rollback(cursor)
                raise
            if failed is None:
                return
            self._rollback(cursor)
            exc = failed.exc
            self._raise_unless_sql(exc, migration, script)
            position = _position(exc) if failed.shift is not None else 0
            # Refused before parsing (a character the database's encoding lacks): no position, so
            # the character is found in the text.
            body = position - 1 - failed.shift if position else \
                characters.offset_in(str(exc.diag.message_primary), failed.segment.text)
            if body is not None and 0 <= body < len(failed.segment.text):
                failure = self._failure(migration, script, failed.segment, _statement_at(failed.segment, body), exc,
                                        body)
            elif exc.pgcode in RETRIED:
                # Retried as a whole; which statement waited matters less than who blocked it.
                failure = self._failure(migration, script, failed.segment, None, exc, None)
            else:
                failure = self._locate(cursor, migration, script, begin, failed)
            if exc.pgcode in RETRIED:
                raise _Retry(failure)
            raise failure

    def _send(self, cursor, prefix: str, segment: Segment, suffix: str, index: int) -> Optional[_Failed]:
        """One query of prefix, segment and suffix; or, for a large segment, each as a query of its
        own, so its bytes reach libpq without a copy being made of them."""
        raw = segment.raw if self.send_bytes else None
        if raw is not None and len(raw) <= ALONE_BYTES:
            parts = [(prefix.encode() + raw + suffix.encode(), len(prefix))]
        elif raw is None and len(segment.text) <= ALONE_BYTES:
            parts = [(prefix + segment.text + suffix, len(prefix))]
        else:
            parts = [(prefix, None), (raw if raw is not None else segment.text, 0), (suffix, None)]
        for query, shift in parts:
            if query:
                try:
                    cursor.execute(query)
                except psycopg2.Error as exc:
                    return _Failed(exc, segment, index, shift)
        return None

    def _check_reading(self, migration: Migration, outcome: str) -> None:
        """Stop before the server reads more of a file with a setting the file changed (through SQL
        the checks could not see): it would read the rest differently from the runner's checks."""
        now = _reading_settings(self.connection)
        for setting, before, after in zip(READING_SETTINGS, self.reading, now):
            if before != after:
                raise MigrationFileError(
                    f"{migration.name} turned {setting} {after} (it was {before}) part-way, which changes how "
                    f"PostgreSQL reads the statements after it; the runner sends a file in pieces and the rest "
                    f"would be read differently from its checks and from psql; {outcome}",
                    hint="do not change standard_conforming_strings or client_encoding in a migration",
                )

    def _locate(self, cursor, migration: Migration, script: Script, begin: str, failed: _Failed) -> MigrationFailed:
        """Run the migration again one statement at a time, rolled back whatever happens,
        to name the statement that fails. Only on the failure path."""
        self.event("locating", migration=migration.name)
        try:
            cursor.execute(begin)
            for index, segment in enumerate(script.segments()):
                statements = [(s, s.text(segment)) for s in segment.statements] if index >= failed.index \
                    else [(None, segment.text)]
                for statement, text in statements:
                    self.stop.check()
                    try:
                        cursor.execute(text)
                    except psycopg2.Error as exc:
                        self._rollback(cursor)
                        self._raise_unless_sql(exc, migration, script)
                        where = statement or segment.statement_at(max(0, _position(exc) - 1))
                        offset = where.offset + _position(exc) - 1 if statement and _position(exc) else None
                        return self._failure(migration, script, segment, where, exc, offset)
                if index >= failed.index:
                    break
            try:
                cursor.execute(self.tracking.record_sql(cursor, migration.name, script.checksum, script.count))
            except psycopg2.Error as exc:
                self._rollback(cursor)
                self._raise_unless_sql(exc, migration, script)
                raise TrackingFailed(
                    f"migration {migration.name} ran, but its row in {self.tracking.schema}.schema_migrations "
                    f"could not be written: SQLSTATE {exc.pgcode}: {_first_line(exc)}; it was rolled back",
                    hint="the role the runner logs in as must be able to write schema_migrations",
                ) from None
        except BaseException:
            self._rollback(cursor)
            raise
        self._rollback(cursor)
        # It did not fail again (a deadlock, or a lock that is gone): say what we know.
        return self._failure(migration, script, failed.segment, None, failed.exc, None)

    # -- no transaction ------------------------------------------------------------------

    def _apply_without_transaction(self, migration: Migration, script: Script) -> None:
        started = time.monotonic()
        done = 0
        with self.connection.cursor() as cursor:
            self.tracking.start_incomplete(cursor, migration.name, script.checksum)
            for segment in self._verified(script, lambda: done):
                for statement in segment.statements:
                    try:
                        self.stop.check()
                        if done:
                            self._check_reading(migration, f"it stopped after {done} of {script.count} statements "
                                                "and is recorded as incomplete")
                        self._run_one(cursor, migration, script, segment, statement)
                    except Interrupted as stopped:
                        self._note_progress(cursor, migration, done)
                        raise Interrupted(
                            stopped.signum,
                            f"{stopped.message.split(';')[0]} during no-transaction migration {migration.name}, "
                            f"after {done} of {script.count} statements; it is recorded as incomplete",
                            hint=f"see `python -m runner status`, then `python -m runner resolve {migration.name} ...`",
                        ) from None
                    except BaseException:
                        self._note_progress(cursor, migration, done)
                        raise
                    done += 1
                    self.tracking.mark_progress(cursor, migration.name, done)
            self.tracking.mark_applied(cursor, migration.name, script.checksum, _elapsed_ms(started), done)
            cursor.execute(history.RESET_SESSION)

    def _verified(self, script: Script, done: Callable[[], int]) -> Iterator[Segment]:
        try:
            yield from script.segments()
        except FileChanged as changed:
            raise IncompleteMigration(
                f"{changed.file} changed while the runner was applying it: its bytes from line {changed.line} on are "
                f"not the ones it read and checked; it is a no-transaction migration, {done()} of {script.count} "
                "statements ran, and it is recorded as incomplete",
                hint=f"check the database, then `python -m runner resolve {script.name} --applied` or `--pending`",
            ) from None

    def _run_one(self, cursor, migration: Migration, script: Script, segment: Segment, statement: Statement) -> None:
        """One statement, retried on its own when it hits a lock timeout (those before it stay applied)."""
        delay = self.retry.first_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                cursor.execute(statement.text(segment))
                return
            except psycopg2.Error as exc:
                self._raise_unless_sql(exc, migration, script, rolled_back=False, statement=statement)
                offset = statement.offset + _position(exc) - 1 if _position(exc) else None
                found = characters.offset_in(str(exc.diag.message_primary), statement.text(segment))
                if offset is None and found is not None:
                    offset = statement.offset + found
                failure = self._failure(migration, script, segment, statement, exc, offset, rolled_back=False)
                if exc.pgcode not in RETRIED:
                    raise failure from None
                if attempt > self.retry.lock_retries:
                    raise LockTimeoutsExhausted(
                        f"{failure.message}\n  gave up after {attempt} attempts{self._blocked_by()}",
                        hint="the statements before it are applied; see `python -m runner status`",
                    ) from None
                self.event("lock_timeout_retry", migration=migration.name, attempt=attempt, retry_in_s=delay,
                           sqlstate=exc.pgcode, blockers=self._blockers())
                self.stop.sleep(delay)
                delay *= 2

    def _note_progress(self, cursor, migration: Migration, done: int) -> None:
        try:
            self.tracking.mark_progress(cursor, migration.name, done)
        except psycopg2.Error:
            pass  # the connection is gone; the row already says `incomplete`

    # -- errors --------------------------------------------------------------------------

    def _raise_unless_sql(self, exc: psycopg2.Error, migration: Migration, script: Script,
                          rolled_back: bool = True, statement: Optional[Statement] = None) -> None:
        """Raise the failures that are not about the SQL itself; return for SQL errors."""
        if self.stop.requested:
            raise self.stop.interrupted() from None
        if _connection_lost(exc, self.connection):
            where = f" (statement {statement.number} of {script.count})" if statement else ""
            # pg_terminate_backend's FATAL (57P01); psycopg2 often has only its text, no SQLSTATE.
            terminated = exc.pgcode == codes.ADMIN_SHUTDOWN or "due to administrator command" in str(exc)
            if terminated and _ends_sessions(script):
                raise SessionEndedByMigration(
                    f"lost the connection to the database while applying {migration.name}{where}: {_first_line(exc)}; "
                    "this migration calls pg_terminate_backend, which most likely ended the runner's own session, "
                    "so running it again would end the same way",
                    hint="spare the runner's session: add `AND pid <> pg_backend_pid()` to the query that picks "
                    "the sessions to end" + ("" if rolled_back else "; this no-transaction migration stopped "
                                              "part-way: see `python -m runner status`"),
                ) from None
            raise ConnectionLost(
                f"lost the connection to the database while applying {migration.name}{where}: {_first_line(exc)}",
                hint=(
                    "the server rolled back the migration's transaction; running again is safe"
                    if rolled_back
                    else "this no-transaction migration stopped part-way; see `python -m runner status`"
                ),
            ) from None

    def _failure(self, migration: Migration, script: Script, segment: Segment, statement: Optional[Statement],
                 exc: psycopg2.Error, offset: Optional[int], rolled_back: bool = True) -> MigrationFailed:
        diag = exc.diag
        hint = diag.message_hint
        if exc.pgcode == characters.UNTRANSLATABLE:
            hint = characters.hint(str(diag.message_primary))
        if exc.pgcode == codes.ACTIVE_SQL_TRANSACTION:
            hint = (
                "this statement cannot run inside a transaction: make `-- runner:no-transaction` "
                "a comment line above the first statement (then its statements run one by one, uncommitted work "
                "is not rolled back, and a failure needs `python -m runner resolve`)"
            )
        if statement is None:
            line, number, text = None, 0, ""
        else:
            line = segment.line_at(offset) if offset is not None else statement.line
            number, text = statement.number, statement.text(segment)
        return MigrationFailed(
            file=migration.name,
            statement_number=number,
            statement_count=script.count,
            line=line,
            sqlstate=exc.pgcode,
            server_message=diag.message_primary or _first_line(exc),
            detail=diag.message_detail,
            hint=hint,
            context=diag.context,
            statement=text,
            rolled_back=rolled_back,
        )

    def _exhausted(self, failure: MigrationFailed, attempts: int, started: float) -> LockTimeoutsExhausted:
        return LockTimeoutsExhausted(
            f"{failure.message}\n  gave up after {attempts} attempts in {_elapsed_ms(started) / 1000:.1f}s: another "
            f"session kept holding a lock this migration needs{self._blocked_by()}",
            hint="stop or wait for the blocking session (SELECT pg_terminate_backend(<pid>) if it is stuck), "
            "or raise the lock timeout (--lock-timeout / MIGRATION_LOCK_TIMEOUT; in the stack: migrations.lockTimeout); "
            "the Job retries this attempt by itself",
        )

    def _blockers(self) -> list[str]:
        return [b.describe() for b in self.watch.blockers] if self.watch else []

    def _blocked_by(self) -> str:
        blockers = self._blockers()
        if not blockers:
            return f"; {self.watch.unseen()}" if self.watch else ""
        return "; blocked by " + "; ".join(blockers)

    def _rollback(self, cursor) -> None:
        if self.connection.closed:
            return
        try:
            cursor.execute(f"ROLLBACK; {history.RESET_SESSION}")
        except psycopg2.Error:
            pass  # a dead connection has no transaction left to roll back


def _reading_settings(connection) -> tuple[Optional[str], ...]:
    """The settings as the server last reported them (libpq keeps them: no round trip)."""
    return tuple(connection.get_parameter_status(setting) for setting in READING_SETTINGS)


def _statement_at(segment: Segment, offset: int) -> Statement:
    """The statement at `offset`; for an offset in the comments between two, the one after."""
    statement = segment.statement_at(offset)
    if offset >= statement.end:
        later = [s for s in segment.statements if s.offset > offset]
        return later[0] if later else statement
    return statement


def _ends_sessions(script: Script) -> bool:
    """Whether the migration calls pg_terminate_backend (read again only on this failure path)."""
    return any("pg_terminate_backend" in segment.text.lower() for segment in script.segments())


def _with_last(segments: Iterator[Segment]) -> Iterator[tuple[int, Segment, bool]]:
    current = next(segments, None)
    index = 0
    while current is not None:
        following = next(segments, None)
        yield index, current, following is None
        current = following
        index += 1


def _terminated(statement: str) -> str:
    return statement if statement.rstrip().endswith(";") else statement + ";"


def _elapsed_ms(started: float) -> int:
    return int(round((time.monotonic() - started) * 1000))


def _position(exc: psycopg2.Error) -> int:
    try:
        return int(exc.diag.statement_position or 0)
    except (TypeError, ValueError):
        return 0


def _connection_lost(exc: psycopg2.Error, connection) -> bool:
    code = exc.pgcode or ""
    return bool(connection.closed) or code.startswith("08") or code in {
        codes.ADMIN_SHUTDOWN, codes.CRASH_SHUTDOWN, codes.CANNOT_CONNECT_NOW,
    } or (exc.pgcode is None and isinstance(exc, psycopg2.OperationalError))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
