"""Apply one migration: in one transaction with its tracking row, or statement by statement.

Two sessions take part. The migration session runs migrations. The lock session (opened by
runner.run) holds the migration lock, where no migration can release it (`DISCARD ALL` and
`pg_advisory_unlock_all()` release only their own session's locks), and writes the history
of no-transaction migrations, never inside a transaction block of theirs.

A transactional migration is sent as its own statements, in one query when it is small and in
segments of whole statements when it is large: BEGIN, the statements, the tracking row and a
read-back of that row and of the lock. PostgreSQL's parser splits the text, exactly as psql
would. Only when the row reads back as written and the lock session still holds the lock is
COMMIT sent, so statements and row commit together or not at all, and never without the lock.

Between statements the query carries a marker, `pg_advisory_lock(MARK_CLASS, n)`: a session-
level advisory lock is not released by ROLLBACK, so after a failure the runner reads which
statement completed last. Every statement runs at most once per attempt, and an error with
no position (a constraint, a timeout, an error raised in a function) still names its
statement and line. The markers are released with the session reset after every migration.

A no-transaction migration runs statement by statement. A `BEGIN ... COMMIT` block in it runs
as psql runs it: progress is recorded only between blocks, a failure rolls the whole block
back, and a lock timeout inside it retries the block from its BEGIN. A failed concurrent index
build leaves an INVALID index behind: the runner drops what the failed statement left before
retrying or reporting, and an index that `IF NOT EXISTS` skipped is checked to be valid.

A lock timeout (55P03), a deadlock (40P01) or a serialization failure (40001) rolls the
migration back and retries it with backoff.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import psycopg2
import psycopg2.errorcodes as codes
import psycopg2.extensions as ext

from runner import characters, history, lock
from runner.errors import (
    ConnectionLost,
    Interrupted,
    InvalidIndex,
    LockLost,
    LockTimeoutsExhausted,
    MigrationFailed,
    MigrationFileError,
    SessionEndedByMigration,
    TrackingFailed,
)
from runner.interrupts import StopSignal
from runner.migration import Migration
from runner.statements import Script, Segment, Statement, index_if_not_exists
from runner.waiting import BlockerWatch

Event = Callable[..., None]
RETRIED = {codes.LOCK_NOT_AVAILABLE, codes.DEADLOCK_DETECTED, codes.SERIALIZATION_FAILURE}

# The statement markers: two-int advisory keys (pg_locks.objsubid 2) in a class of their own,
# apart from the bigint migration lock (objsubid 1).
MARK_CLASS = 0x72756E  # "run"

# What DISCARD ALL resets (history.RESET_SESSION), and the session's advisory locks: the
# migration session's markers and whatever a migration took. Never sent to the lock session.
RESET_SESSION = history.RESET_SESSION + "; SELECT pg_catalog.pg_advisory_unlock_all()"
_LAST_MARK = (
    "SELECT pg_catalog.max(objid::pg_catalog.int8) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
    f"AND pid = pg_catalog.pg_backend_pid() AND classid = {MARK_CLASS} AND objsubid = 2 AND granted"
)
# Indexes left INVALID, not being built right now by another session.
_INVALID_INDEXES = (
    "SELECT i.indexrelid::pg_catalog.int8, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
    "OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
    "WHERE NOT i.indisvalid AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_progress_create_index p "
    "WHERE p.index_relid OPERATOR(pg_catalog.=) i.indexrelid AND p.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid())"
)
_INDEX_OF_TABLE = (
    "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) "
    "pg_catalog.quote_ident(c.relname), i.indisvalid, (SELECT p.pid FROM pg_catalog.pg_stat_progress_create_index p "
    "WHERE p.index_relid OPERATOR(pg_catalog.=) c.oid LIMIT 1) FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
    "WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s) AND c.relname OPERATOR(pg_catalog.=) %s"
)


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
class _Undone:
    """What a failed attempt of a no-transaction statement undid and left behind."""

    block_start: Optional[Statement] = None  # the BEGIN of the transaction block rolled back
    left_behind: list[str] = field(default_factory=list)
    all_dropped: bool = True


class Executor:
    def __init__(self, connection, control, tracking: history.Tracking, stop: StopSignal, retry: RetryPolicy,
                 event: Event, watch: Optional[BlockerWatch] = None):
        self.connection = connection  # the migration session
        self.control = control  # the lock session: holds the migration lock, writes progress
        self.lock_pid = control.get_backend_pid()
        self.tracking = tracking
        self.stop = stop
        self.retry = retry
        self.event = event
        self.watch = watch

    def apply(self, migration: Migration, script: Script) -> Outcome:
        started = time.monotonic()
        delay = self.retry.first_delay
        attempt = 0
        while True:
            attempt += 1
            if self.watch:
                self.watch.forget()
            try:
                if migration.transactional:
                    self._apply_in_transaction(migration, script)
                else:
                    self._apply_without_transaction(migration, script)
                return Outcome(migration.name, script.count, _elapsed_ms(started), attempt)
            except _Retry as retry:
                if attempt > self.retry.lock_retries:
                    raise self._exhausted(retry.failure, attempt, started) from None
                self.event("lock_timeout_retry", migration=migration.name, attempt=attempt, retry_in_s=delay,
                           sqlstate=retry.failure.sqlstate, blockers=self._blockers(),
                           statement=retry.failure.statement_number or None, rolled_back="migration",
                           block_start=None, left_behind=[])
                self.stop.sleep(delay)
                delay *= 2

    # -- transactional ---------------------------------------------------------------

    def _apply_in_transaction(self, migration: Migration, script: Script) -> None:
        begin = _terminated(script.opener or "BEGIN") + "\n"
        with self.connection.cursor() as cursor:
            try:
                for index, segment, last in _with_last(script.segments()):
                    self.stop.check()
                    prefix = begin if index == 0 else ""
                    tail = self._tail(cursor, migration, script) if last else ""
                    try:
                        cursor.execute(_marked(prefix, segment, tail))
                    except psycopg2.Error as exc:
                        completed = self._rollback(cursor)
                        raise self._transactional_failure(exc, migration, script, segment, len(prefix), completed)
                self._commit(cursor, migration, script)
            except BaseException:
                if self._in_block():
                    self._rollback(cursor)
                raise

    def _tail(self, cursor, migration: Migration, script: Script) -> str:
        """The tracking row, then one row: (did it land as written, does the lock session still hold the lock)."""
        record = self.tracking.record_sql(cursor, migration.name, migration.checksum, script.count)
        landed = self.tracking.landed_sql(cursor, migration.name, migration.checksum)
        return f"\n{record};\nSELECT ({landed}), ({lock.held_by_sql(self.lock_pid)})"

    def _commit(self, cursor, migration: Migration, script: Script) -> None:
        landed, locked = cursor.fetchone()
        if not locked:
            if _ends_sessions(script):
                raise _lock_session_ended_by(migration, "it was rolled back")
            raise LockLost(
                f"lost the migration lock while applying {migration.name}: the session holding it ended (someone "
                f"ended it, or its connection broke); {migration.name} was rolled back and nothing more was applied",
                hint="run again (the Job does so by itself); another run may have started meanwhile, and the lock "
                "makes the two take turns",
            )
        if not landed:
            raise history.tracking_not_landed(
                self.tracking, f"migration {migration.name} ran, but its row", "the migration was rolled back")
        try:
            cursor.execute("COMMIT; " + RESET_SESSION)
        except psycopg2.Error as exc:
            self._rollback(cursor)
            self._raise_unless_sql(exc, migration, script)
            failure = self._failure(migration, script, None, None, exc, None, at_commit=True)
            if exc.pgcode in RETRIED:
                raise _Retry(failure) from None
            raise failure from None

    def _transactional_failure(self, exc: psycopg2.Error, migration: Migration, script: Script, segment: Segment,
                               shift: int, completed: Optional[int]) -> Exception:
        """The failure to raise (after the rollback): which statement failed, from the error's
        position when it has one, else from the last statement marker that completed."""
        self._raise_unless_sql(exc, migration, script)
        at = _position(exc) - 1 - shift if _position(exc) else None
        offset = _unmarked_offset(segment, at) if at is not None and at >= 0 else None
        if at is None:
            # Refused before parsing (a character the database's encoding lacks): no position and
            # no statement ran, so the character is found in the text.
            offset = characters.offset_in(str(exc.diag.message_primary), segment.text)
        if offset is not None:
            statement: Optional[Statement] = _statement_at(segment, offset)
        elif at is not None and at < 0:
            statement = None  # in the file's own BEGIN
        elif completed is not None and completed >= script.count and exc.pgcode not in RETRIED:
            return TrackingFailed(
                f"migration {migration.name} ran, but its row in {self.tracking.schema}.schema_migrations "
                f"could not be written: SQLSTATE {exc.pgcode}: {_first_line(exc)}; it was rolled back",
                hint="the role the runner logs in as must be able to write schema_migrations",
            )
        else:
            number = (completed or 0) + 1
            statement = next((s for s in segment.statements if s.number == number), None)
        failure = self._failure(migration, script, segment, statement, exc, offset)
        return _Retry(failure) if exc.pgcode in RETRIED else failure

    # -- no transaction ------------------------------------------------------------------

    def _apply_without_transaction(self, migration: Migration, script: Script) -> None:
        started = time.monotonic()
        self._record(lambda c: self.tracking.start_incomplete(c, migration.name, migration.checksum), migration,
                     script, "nothing of it ran")
        done = 0  # statements that ran and committed, as the history says
        block: list[tuple[Segment, Statement]] = []  # the open transaction block, its BEGIN first
        with self.connection.cursor() as cursor:
            try:
                for segment in script.segments():
                    for statement in segment.statements:
                        if block:
                            block.append((segment, statement))
                        self._run_one(cursor, migration, script, segment, statement, block, done)
                        if self._in_block():
                            block = block or [(segment, statement)]
                            continue
                        block = []
                        self._record(lambda c: self.tracking.mark_progress(c, migration.name, statement.number),
                                     migration, script, f"statement {statement.number} ran, and the row still counts {done}")
                        done = statement.number
                if self._in_block():
                    opened = block[0][1]
                    raise MigrationFileError(
                        f"{migration.name}:{opened.line}: the transaction block begun at statement {opened.number} "
                        f"was still open at the end of the file; it was rolled back (as psql does when it exits), "
                        f"and the {done} statements before it stay applied",
                        hint=f"end the block with COMMIT; then `python -m runner resolve {migration.name} --pending`",
                    )
            except Interrupted as stopped:
                self._abandon(cursor, migration, script, done)
                raise Interrupted(
                    stopped.signum,
                    f"{stopped.message.split(';')[0]} during no-transaction migration {migration.name}, "
                    f"after {done} of {script.count} statements; it is recorded as incomplete",
                    hint=f"see `python -m runner status`, then `python -m runner resolve {migration.name} ...`",
                ) from None
            except BaseException:
                self._abandon(cursor, migration, script, done)
                raise
            self._record(lambda c: self.tracking.mark_applied(
                c, migration.name, migration.checksum, _elapsed_ms(started), done), migration, script,
                f"all {done} statement{'' if done == 1 else 's'} ran, and the row still says incomplete "
                f"(once the table is fixed: `python -m runner resolve {migration.name} --applied`)")
            cursor.execute(RESET_SESSION)

    def _run_one(self, cursor, migration: Migration, script: Script, segment: Segment, statement: Statement,
                 block: list, done: int) -> None:
        """One statement; a lock timeout retries it on its own, or, inside a transaction block,
        the block from its BEGIN (what ran before stays applied)."""
        delay = self.retry.first_delay
        attempt = 0
        watch_indexes = not block and statement.words[:1] in (("CREATE",), ("REINDEX",))
        while True:
            attempt += 1
            replay = block if block and attempt > 1 else [(segment, statement)]
            before = self._invalid_indexes(cursor) if watch_indexes else None
            current = replay[0]
            try:
                for current in replay:
                    self.stop.check()
                    cursor.execute(current[1].text(current[0]))
                if watch_indexes:
                    self._check_skipped_index(cursor, migration, script, segment, statement, done)
                return
            except psycopg2.Error as exc:
                undone = _Undone(block[0][1] if block else None)
                if block:
                    self._rollback(cursor)
                self._raise_unless_sql(exc, migration, script, rolled_back=False, statement=current[1])
                if before is not None:
                    self._drop_leftovers(cursor, before, undone)
                failed_segment, failed = current
                offset = failed.offset + _position(exc) - 1 if _position(exc) else None
                if offset is None:
                    # Refused before parsing (a character the database's encoding lacks): no
                    # position, so the character is found in the statement's text.
                    found = characters.offset_in(str(exc.diag.message_primary), failed.text(failed_segment))
                    offset = failed.offset + found if found is not None else None
                failure = self._failure(migration, script, failed_segment, failed, exc, offset, rolled_back=False,
                                        outcome=_no_transaction_outcome(migration, script, done, undone),
                                        left_behind=tuple(undone.left_behind))
                if exc.pgcode not in RETRIED or not undone.all_dropped:
                    raise failure from None
                if attempt > self.retry.lock_retries:
                    raise LockTimeoutsExhausted(
                        f"{failure.message}\n  gave up after {attempt} attempts{self._blocked_by()}",
                        hint="the statements before it are applied; see `python -m runner status`",
                    ) from None
                self.event("lock_timeout_retry", migration=migration.name, attempt=attempt, retry_in_s=delay,
                           sqlstate=exc.pgcode, blockers=self._blockers(), statement=failed.number,
                           rolled_back="block" if block else "nothing",
                           block_start=block[0][1].number if block else None, left_behind=undone.left_behind)
                self.stop.sleep(delay)
                delay *= 2

    def _in_block(self) -> bool:
        """Is a transaction open on the migration session (libpq knows; no round trip)?"""
        return not self.connection.closed and \
            self.connection.get_transaction_status() != ext.TRANSACTION_STATUS_IDLE

    def _invalid_indexes(self, cursor) -> set[int]:
        cursor.execute(_INVALID_INDEXES)
        return {oid for oid, _ in cursor.fetchall()}

    def _drop_leftovers(self, cursor, before: set[int], undone: _Undone) -> None:
        """Drop the INVALID indexes the failed statement left (a failed CREATE INDEX or REINDEX
        CONCURRENTLY), as a transaction would have undone them; name what could not be dropped."""
        try:
            cursor.execute(_INVALID_INDEXES)
            left = [name for oid, name in cursor.fetchall() if oid not in before]
        except psycopg2.Error:
            return
        for name in left:
            try:
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                undone.left_behind.append(f"INVALID index {name}, which was dropped")
            except psycopg2.Error as exc:
                undone.all_dropped = False
                undone.left_behind.append(
                    f"INVALID index {name}, which could not be dropped ({_first_line(exc)}): drop it with "
                    f"DROP INDEX CONCURRENTLY {name}")

    def _check_skipped_index(self, cursor, migration: Migration, script: Script, segment: Segment,
                             statement: Statement, done: int) -> None:
        """CREATE INDEX ... IF NOT EXISTS skips an index of that name even when it is INVALID (an
        earlier build failed): then nothing was built, and it must not be recorded as applied."""
        target = index_if_not_exists(statement.text(segment))
        if target is None:
            return
        index, table = target
        name = index[1:-1].replace('""', '"') if index.startswith('"') else index.lower()
        cursor.execute(_INDEX_OF_TABLE, (table, name))
        found = cursor.fetchone()
        if found is None or found[1]:
            return
        qualified, _, builder = found
        why = (f"another session (pid {builder}) is building it right now" if builder
               else "an earlier concurrent build of it failed")
        raise InvalidIndex(
            f"migration {migration.name}, statement {statement.number} of {script.count} "
            f"({migration.name}:{statement.line}): index {qualified} exists but is INVALID ({why}), so IF NOT EXISTS "
            f"skipped it and nothing was built; this no-transaction migration is recorded as incomplete after "
            f"{done} statement{'' if done == 1 else 's'}",
            hint=(f"wait for pid {builder} to finish, then " if builder else "")
            + f"drop it: DROP INDEX CONCURRENTLY {qualified}; then `python -m runner resolve {migration.name} "
            "--pending` and run again",
        )

    def _record(self, write: Callable, migration: Migration, script: Script, ran: str = "") -> None:
        """A history write on the lock session (`ran`: what had run, for the message when the row
        does not land); its failure to answer means the lock is gone."""
        try:
            with self.control.cursor() as cursor:
                write(cursor)
        except TrackingFailed as exc:
            raise TrackingFailed(f"{exc.message}; {ran}" if ran else exc.message, exc.hint) from None
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            if not self.control.closed and exc.pgcode and not _connection_lost(exc, self.control):
                raise
            if _ends_sessions(script):
                raise _lock_session_ended_by(migration, "this no-transaction migration stopped part-way: see "
                                             "`python -m runner status`") from None
            raise LockLost(
                f"lost the migration lock while applying no-transaction migration {migration.name}: the session "
                f"holding it ended ({_first_line(exc)}); the schema_migrations row may count fewer statements than ran",
                hint="see `python -m runner status`; the row says incomplete, so the next run stops until "
                f"`python -m runner resolve {migration.name} ...` settles it",
            ) from None

    def _abandon(self, cursor, migration: Migration, script: Script, done: int) -> None:
        """After a failure: roll back an open block, reset the session, and record the progress."""
        if self._in_block():
            self._rollback(cursor)
        try:
            self._record(lambda c: self.tracking.mark_progress(c, migration.name, done), migration, script)
        except (psycopg2.Error, LockLost, SessionEndedByMigration, TrackingFailed):
            pass  # the row already says `incomplete`; the failure being raised says the rest

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
                    hint=SPARE_THE_RUNNER + ("" if rolled_back else "; this no-transaction migration stopped "
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

    def _failure(self, migration: Migration, script: Script, segment: Optional[Segment],
                 statement: Optional[Statement], exc: psycopg2.Error, offset: Optional[int], rolled_back: bool = True,
                 outcome: Optional[str] = None, at_commit: bool = False, left_behind: tuple[str, ...] = ()
                 ) -> MigrationFailed:
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
        if statement is None or segment is None:
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
            outcome=outcome,
            at_commit=at_commit,
            left_behind=left_behind,
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

    def _rollback(self, cursor) -> Optional[int]:
        """Roll back and reset the session; return how many statements the markers say completed."""
        if self.connection.closed:
            return None
        try:
            cursor.execute(f"ROLLBACK; {_LAST_MARK}")
            completed = cursor.fetchone()[0]
            cursor.execute(RESET_SESSION)
            return completed or 0
        except psycopg2.Error:
            return None  # a dead connection has no transaction left to roll back


def invalid_indexes(cursor) -> list[str]:
    """The INVALID indexes of the database that no session is building: a failed concurrent build's."""
    cursor.execute(_INVALID_INDEXES)
    return sorted(name for _, name in cursor.fetchall())


def _marker(number: int) -> str:
    """Statement `number` completed: hold mark `number`, release the one before (one at a time,
    so a long file does not fill the server's lock table)."""
    release = f", pg_catalog.pg_advisory_unlock({MARK_CLASS}, {number - 1})" if number > 1 else ""
    return f"\nSELECT pg_catalog.pg_advisory_lock({MARK_CLASS}, {number}){release};\n"


def _marked_pieces(segment: Segment) -> Iterator[tuple[bool, str, int]]:
    """The segment's statements with a marker after each: (is it the file's text, the text, its
    offset in the segment's text)."""
    position = 0
    text = segment.text
    for number, end in enumerate(segment.ends, start=segment.first_number):
        yield True, text[position:end], position
        # Only the file's last statement may lack its `;` (a comment may end the line).
        yield False, ("" if text[end - 1:end] == ";" else "\n;") + _marker(number), end
        position = end


def _marked(prefix: str, segment: Segment, tail: str) -> str:
    """One query: the prefix, the segment's statements with their markers, the tail (joined
    once: a large statement is copied once, not once per concatenation)."""
    return "".join([prefix, *(piece for _, piece, _ in _marked_pieces(segment)), tail])


def _unmarked_offset(segment: Segment, offset: int) -> Optional[int]:
    """Where a character of the segment part of `_marked` is in the segment's own text; None in a marker."""
    for ours, piece, start in _marked_pieces(segment):
        if offset < len(piece):
            return start + offset if ours and offset >= 0 else None
        offset -= len(piece)
    return None


def _no_transaction_outcome(migration: Migration, script: Script, done: int, undone: _Undone) -> Optional[str]:
    if undone.block_start is None:
        return None  # MigrationFailed's own sentence for a no-transaction file
    opened = undone.block_start
    return (f"the transaction block begun at statement {opened.number} ({migration.name}:{opened.line}) was rolled "
            f"back; the {done} statement{'' if done == 1 else 's'} before it stay applied, and this no-transaction "
            "migration is recorded as incomplete: see `python -m runner status`")


def _statement_at(segment: Segment, offset: int) -> Statement:
    """The statement at `offset`; for an offset in the comments between two, the one after."""
    statement = segment.statement_at(offset)
    if offset >= statement.end:
        later = [s for s in segment.statements if s.offset > offset]
        return later[0] if later else statement
    return statement


# The runner has two sessions (the migration's and the lock session), both with application_name
# ending in db-migrations (runner.connection.application_name).
SPARE_THE_RUNNER = ("spare the runner's sessions: add `AND pid <> pg_backend_pid() AND application_name NOT LIKE "
                    "'%db-migrations%'` to the query that picks the sessions to end")


def _lock_session_ended_by(migration: Migration, outcome: str) -> SessionEndedByMigration:
    """The lock session ended while a migration that calls pg_terminate_backend ran: it most
    likely ended it (sparing only its own pid), and would again on every retry."""
    return SessionEndedByMigration(
        f"lost the migration lock while applying {migration.name}: this migration calls pg_terminate_backend, which "
        "most likely ended the session that holds the migration lock, so running it again would end the same way; "
        f"{outcome}",
        hint=SPARE_THE_RUNNER,
    )


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
