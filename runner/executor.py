"""Apply one migration: in one transaction with its tracking row, or statement by statement.

A transactional migration's statements and its schema_migrations row commit together or
not at all. A statement that fails rolls everything of that migration back. A lock
timeout (SQLSTATE 55P03) is retried with backoff. If a statement fails to parse, the
split may be sqlparse's mistake, so the whole file is sent once as one batch and the
server's own parser decides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import psycopg2
import psycopg2.errorcodes as codes

from runner import history
from runner.errors import (
    ConnectionLost,
    Interrupted,
    LockTimeoutsExhausted,
    MigrationFailed,
)
from runner.interrupts import StopSignal
from runner.migration import Migration
from runner.statements import Script, Statement, line_at

Event = Callable[..., None]


@dataclass(frozen=True)
class Outcome:
    name: str
    statements: int
    duration_ms: int
    attempts: int
    ran_as_batch: bool


@dataclass(frozen=True)
class RetryPolicy:
    lock_retries: int = 3
    first_delay: float = 1.0


class _LockTimeout(Exception):
    def __init__(self, failure: MigrationFailed):
        self.failure = failure


class Executor:
    def __init__(self, connection, tracking: history.Tracking, stop: StopSignal, retry: RetryPolicy, event: Event):
        self.connection = connection
        self.tracking = tracking
        self.stop = stop
        self.retry = retry
        self.event = event

    def apply(self, migration: Migration, script: Script) -> Outcome:
        if migration.transactional:
            return self._with_lock_retries(migration, script)
        return self._apply_without_transaction(migration, script)

    # -- transactional ---------------------------------------------------------------

    def _with_lock_retries(self, migration: Migration, script: Script) -> Outcome:
        delay = self.retry.first_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._apply_in_transaction(migration, script, attempt)
            except _LockTimeout as timeout:
                if attempt > self.retry.lock_retries:
                    raise LockTimeoutsExhausted(
                        f"{timeout.failure.message}\n  gave up after {attempt} attempts: another "
                        "session kept holding a lock this migration needs",
                        hint="find the blocker with `SELECT pid, state, query FROM pg_stat_activity "
                        "WHERE pid = ANY (pg_blocking_pids(<runner pid>))`, or retry in a quieter "
                        "moment; the Job retries this attempt by itself",
                    ) from None
                self.event(
                    "lock_timeout_retry",
                    migration=migration.name,
                    attempt=attempt,
                    retry_in_s=delay,
                    statement=timeout.failure.statement_number,
                )
                self.stop.sleep(delay)
                delay *= 2

    def _apply_in_transaction(self, migration: Migration, script: Script, attempt: int) -> Outcome:
        started = time.monotonic()
        # BEGIN travels with the first statement: one round trip less per file.
        begin = (script.opener.text if script.opener else "BEGIN;") + "\n"
        with self.connection.cursor() as cursor:
            try:
                failed: Optional[tuple[Statement, psycopg2.Error, int]] = None
                if not script.statements:
                    cursor.execute(begin)
                for index, statement in enumerate(script.statements):
                    self.stop.check()
                    prefix = begin if index == 0 else ""
                    try:
                        cursor.execute(prefix + statement.text)
                    except psycopg2.Error as exc:
                        failed = (statement, exc, len(prefix))
                        break
                if failed is None:
                    try:
                        self._record_and_commit(cursor, migration, script.count, started)
                    except psycopg2.Error as exc:
                        self._rollback(cursor)
                        if _connection_lost(exc, self.connection):
                            raise ConnectionLost(
                                f"lost the connection to the database while committing {migration.name}: "
                                f"{_first_line(exc)}",
                                hint="the migration and its schema_migrations row commit together, so the "
                                "next run applies it again only if the commit did not happen",
                            ) from None
                        raise
                    return self._outcome(migration, script.count, started, attempt, False)
            except BaseException:
                self._rollback(cursor)
                raise
            self._rollback(cursor)
            statement, exc, shift = failed
            self._raise_for(exc, migration, script, statement)
            if exc.pgcode == codes.SYNTAX_ERROR and script.count > 1:
                return self._apply_as_batch(cursor, migration, script, started, attempt)
            raise self._failure(migration, script, statement, exc, shift=shift)

    def _apply_as_batch(self, cursor, migration: Migration, script: Script, started, attempt) -> Outcome:
        self.event("batch_fallback", migration=migration.name)
        cursor.execute(script.opener.text if script.opener else "BEGIN")
        try:
            cursor.execute(script.body_text)
            self._record_and_commit(cursor, migration, script.count, started)
        except psycopg2.Error as exc:
            self._rollback(cursor)
            offset = script.body_offset + max(0, _position(exc) - 1)
            statement = _statement_at(script, offset)
            self._raise_for(exc, migration, script, statement)
            failure = self._failure(migration, script, statement, exc, offset=offset if _position(exc) else None)
            if not _position(exc):
                failure.locate_unknown()  # PostgreSQL does not say which statement of a batch failed
            raise failure from None
        except BaseException:
            self._rollback(cursor)
            raise
        return self._outcome(migration, script.count, started, attempt, True)

    def _record_and_commit(self, cursor, migration: Migration, count: int, started: float) -> None:
        self.tracking.record_and_commit(cursor, migration.name, migration.checksum, _elapsed_ms(started), count)

    # -- no transaction ------------------------------------------------------------------

    def _apply_without_transaction(self, migration: Migration, script: Script) -> Outcome:
        started = time.monotonic()
        done = 0
        with self.connection.cursor() as cursor:
            self.tracking.start_incomplete(cursor, migration.name, migration.checksum)
            for statement in script.statements:
                try:
                    self.stop.check()
                    self._run_with_lock_retries(cursor, migration, script, statement)
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
            self.tracking.mark_applied(cursor, migration.name, migration.checksum, _elapsed_ms(started), done)
            cursor.execute("RESET ALL")
        return self._outcome(migration, done, started, 1, False)

    def _run_with_lock_retries(self, cursor, migration: Migration, script: Script, statement: Statement) -> None:
        delay = self.retry.first_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                cursor.execute(statement.text)
                return
            except psycopg2.Error as exc:
                try:
                    self._raise_for(exc, migration, script, statement, rolled_back=False)
                except _LockTimeout as timeout:
                    if attempt > self.retry.lock_retries:
                        raise LockTimeoutsExhausted(
                            f"{timeout.failure.message}\n  gave up after {attempt} attempts",
                            hint="the statements before it are applied; "
                            "see `python -m runner status`",
                        ) from None
                    self.event("lock_timeout_retry", migration=migration.name, attempt=attempt,
                               retry_in_s=delay, statement=statement.number)
                    self.stop.sleep(delay)
                    delay *= 2
                    continue
                raise self._failure(migration, script, statement, exc, rolled_back=False) from None

    def _note_progress(self, cursor, migration: Migration, done: int) -> None:
        try:
            self.tracking.mark_progress(cursor, migration.name, done)
        except psycopg2.Error:
            pass  # the connection is gone; the row already says `incomplete`

    # -- errors --------------------------------------------------------------------------

    def _raise_for(self, exc: psycopg2.Error, migration: Migration, script: Script,
                   statement: Statement, rolled_back: bool = True) -> None:
        """Raise the failures that are not about the SQL itself; return for SQL errors."""
        if self.stop.requested:
            raise self.stop.interrupted() from None
        if _connection_lost(exc, self.connection):
            raise ConnectionLost(
                f"lost the connection to the database while applying {migration.name} "
                f"(statement {statement.number} of {script.count}): {_first_line(exc)}",
                hint=(
                    "the server rolled back the migration's transaction; running again is safe"
                    if rolled_back
                    else "this no-transaction migration stopped part-way; see `python -m runner status`"
                ),
            ) from None
        if exc.pgcode == codes.LOCK_NOT_AVAILABLE:
            raise _LockTimeout(self._failure(migration, script, statement, exc, rolled_back=rolled_back))

    def _failure(self, migration: Migration, script: Script, statement: Statement, exc: psycopg2.Error,
                 offset: Optional[int] = None, rolled_back: bool = True, shift: int = 0) -> MigrationFailed:
        """`shift`: characters sent before the statement in the same query (the BEGIN)."""
        diag = exc.diag
        if offset is None and _position(exc) > shift:
            offset = statement.offset + _position(exc) - 1 - shift
        line = line_at(migration.text, offset) if offset is not None else statement.line
        hint = diag.message_hint
        if exc.pgcode == codes.ACTIVE_SQL_TRANSACTION:
            hint = (
                "this statement cannot run inside a transaction: make `-- runner:no-transaction` "
                "the first line of the file (then its statements run one by one, uncommitted work "
                "is not rolled back, and a failure needs `python -m runner resolve`)"
            )
        return MigrationFailed(
            file=migration.name,
            statement_number=statement.number,
            statement_count=script.count,
            line=line,
            sqlstate=exc.pgcode,
            server_message=diag.message_primary or _first_line(exc),
            detail=diag.message_detail,
            hint=hint,
            context=diag.context,
            statement=statement.text,
            rolled_back=rolled_back,
        )

    def _rollback(self, cursor) -> None:
        if self.connection.closed:
            return
        try:
            cursor.execute("ROLLBACK; RESET ALL")
        except psycopg2.Error:
            pass  # a dead connection has no transaction left to roll back

    @staticmethod
    def _outcome(migration: Migration, count: int, started: float, attempts: int, batch: bool) -> Outcome:
        return Outcome(migration.name, count, _elapsed_ms(started), attempts, batch)


def _elapsed_ms(started: float) -> int:
    return int(round((time.monotonic() - started) * 1000))


def _position(exc: psycopg2.Error) -> int:
    try:
        return int(exc.diag.statement_position or 0)
    except (TypeError, ValueError):
        return 0


def _statement_at(script: Script, offset: int) -> Statement:
    chosen = script.statements[0]
    for statement in script.statements:
        if statement.offset <= offset:
            chosen = statement
    return chosen


def _connection_lost(exc: psycopg2.Error, connection) -> bool:
    code = exc.pgcode or ""
    return bool(connection.closed) or code.startswith("08") or code in {
        codes.ADMIN_SHUTDOWN, codes.CRASH_SHUTDOWN, codes.CANNOT_CONNECT_NOW,
    } or (exc.pgcode is None and isinstance(exc, psycopg2.OperationalError))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
