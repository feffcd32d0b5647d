"""Apply one migration: in one transaction with its tracking row, or statement by statement.

Two sessions take part. The migration session runs migrations. The lock session (opened by
runner.run) holds the migration lock, where no migration can release it (`DISCARD ALL` and
`pg_advisory_unlock_all()` release only their own session's locks), and writes the history
of no-transaction migrations, never inside a transaction block of theirs.

A transactional migration is sent as its own bytes, in one query when it is small and in
segments of whole statements when it is large: BEGIN, the statements, the tracking row, a
check, COMMIT and the session reset, in one round trip for a small file. PostgreSQL's parser
splits the text, exactly as psql would. The check reads the row back and asks whether the
lock session still holds the migration lock (runner.lock's token); if either is not so it
raises an error, so COMMIT, later in the same query, never runs: statements and row commit
together or not at all, and never without the lock. A large segment of one statement goes
as a query of its own, the bytes as read, so one large statement costs about what it costs
psql.

Between two statements of one query the query carries a marker, `pg_advisory_lock(MARK_CLASS,
n)`: a session-level advisory lock is not released by ROLLBACK, so after a failure the runner
reads which statement completed last. The tail carries one after the last statement and one
after the check. Every statement runs at most once per attempt, and an error with no position
(a constraint, a timeout, an error raised in a function) still names its statement and line.
A query of one statement needs no marker: a one-line migration carries only the tail's two.
The markers are released with the session reset after every migration.

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
from typing import Callable, Iterator, Optional, Sequence

import psycopg2
import psycopg2.errorcodes as codes
import psycopg2.extensions as ext

from runner import characters, history, lock
from runner.errors import (
    ConnectionLost,
    FileChanged,
    IncompleteMigration,
    Interrupted,
    InvalidIndex,
    LockLost,
    LockTimeoutsExhausted,
    MigrationFailed,
    MigrationFileError,
    SessionEndedByMigration,
    TrackingFailed,
    UsageError,
)
from runner.interrupts import StopSignal
from runner.migration import Migration
from runner.statements import READING_SETTINGS, Script, Segment, Statement, index_if_not_exists
from runner.waiting import BlockerWatch

Event = Callable[..., None]
RETRIED = {codes.LOCK_NOT_AVAILABLE, codes.DEADLOCK_DETECTED, codes.SERIALIZATION_FAILURE}
# A segment of one statement larger than this is sent as a query of its own, not joined with
# BEGIN and the tail (no copy of it is made on the way to libpq).
ALONE_BYTES = 256 * 1024
# What the tail's check raises (an integer that does not parse: SQL has no RAISE without
# plpgsql); the executor recognises its own words in the error.
_LOCK_LOST = "runner: the migration lock is no longer held"
_NOT_LANDED = "runner: the tracking row did not land"

# The statement markers: two-int advisory keys (pg_locks.objsubid 2) in a class of their own,
# apart from the bigint migration lock (objsubid 1).
MARK_CLASS = 0x72756E  # "run"

# Batches (Executor.apply_batch): a file joins one when it is at most BATCH_FILE_BYTES; a batch
# holds at most BATCH_FILES files and BATCH_BYTES of them (the memory of a batch is its text).
# 400 rather than 100: one round trip and one read-back of the rows per 400 small files took
# 10,000 one-line files from 1.33x psql + tracking row to 1.19-1.29x (BENCHMARKS.md, Run J).
BATCH_FILE_BYTES = 16 * 1024
BATCH_FILES = 400
BATCH_BYTES = 1024 * 1024
# A file's marker keys in a batch: its place (1, 2, ...) shifted by this, plus the statement
# number (a batched file has far fewer than 2**20 statements; 2**11 files fit in an int4 key).
_FILE_SHIFT = 20

# What DISCARD ALL resets (history.RESET_SESSION), and the session's advisory locks: the
# migration session's markers and whatever a migration took. Never sent to the lock session.
RESET_SESSION = history.RESET_SESSION + "; SELECT pg_catalog.pg_advisory_unlock_all()"
# The reset at the start of a batched file's transaction (the advisory locks follow, with its
# first marker). UNLISTEN * is not here: inside a transaction it takes effect at COMMIT, so it
# ends the previous file's transaction instead.
_RESET_IN_TRANSACTION = history.RESET_SESSION.replace(" UNLISTEN *;", "").replace(" SET SESSION AUTHORIZATION DEFAULT;", "")
# What a transaction takes when it starts: a batched file's BEGIN would take what the file
# before it set for its session (SET SESSION CHARACTERISTICS, SET default_transaction_*), before
# its own reset can run. So its BEGIN names them, as the session had them after its reset.
_TRANSACTION_DEFAULTS = ("SELECT pg_catalog.current_setting('default_transaction_isolation'), "
                         "pg_catalog.current_setting('default_transaction_read_only'), "
                         "pg_catalog.current_setting('default_transaction_deferrable')")
# When a batched file's transaction began: now() is the start of the whole query, the same for
# every file of a batch. Epoch seconds, which read back the same whatever DateStyle or TimeZone
# the file set.
FILE_STARTED = "runner.file_started"
_MARK_FILE_START = (f", pg_catalog.set_config('{FILE_STARTED}', "
                    "pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())::pg_catalog.text, true)")
_FILE_START = f"pg_catalog.to_timestamp(pg_catalog.current_setting('{FILE_STARTED}')::pg_catalog.float8)"
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
                 event: Event, watch: Optional[BlockerWatch] = None, lock_token: Optional[int] = None):
        self.connection = connection  # the migration session
        self.control = control  # the lock session: holds the migration lock, writes progress
        # Is the migration lock still held (runner.lock's token; pg_locks without one: slower)?
        self.lock_held = (lock.still_held_sql(lock_token) if lock_token is not None
                          else f"({lock.held_by_sql(control.get_backend_pid())})")
        self.tracking = tracking
        self.stop = stop
        self.retry = retry
        self.event = event
        self.watch = watch
        # The file's bytes go as they are when the session's client encoding is the files' own.
        # (UTF8, or SQL_ASCII whose codec is UTF-8: runner.connection)
        self.send_bytes = connection.encoding in ("UTF8", "SQL_ASCII", "SQLASCII")
        self.reading = _reading_settings(connection)
        self._batch_begin: Optional[str] = None  # apply_batch's BEGIN, once per run
        if self.reading[0] not in ("on", None):
            raise UsageError(
                "standard_conforming_strings is off in the runner's session (a database or role setting, or "
                "PGOPTIONS): PostgreSQL would read a backslash in '...' as an escape, unlike the runner's checks "
                "and every tool that assumes the default; nothing was applied",
                hint="turn it back to the default for this database or role, e.g. "
                "ALTER DATABASE <name> RESET standard_conforming_strings (or ALTER ROLE <role> RESET ...)",
            )

    def apply(self, migration: Migration, script: Script, failed: Optional[_Retry] = None) -> Outcome:
        """Apply one file, retrying it after a lock timeout; `failed`: its first attempt, made in
        a batch (apply_batch), ended in one."""
        started = time.monotonic()
        delay = self.retry.first_delay
        attempt = 0
        while True:
            attempt += 1
            if failed is None:
                if self.watch:
                    self.watch.forget()
                try:
                    if script.transactional:
                        self._apply_in_transaction(migration, script)
                    else:
                        self._apply_without_transaction(migration, script)
                    return Outcome(migration.name, script.count, _elapsed_ms(started), attempt)
                except _Retry as retry:
                    failed = retry
            if attempt > self.retry.lock_retries:
                raise self._exhausted(failed.failure, attempt, started) from None
            self.event("lock_timeout_retry", migration=migration.name, attempt=attempt, retry_in_s=delay,
                       sqlstate=failed.failure.sqlstate, blockers=self._blockers(),
                       statement=failed.failure.statement_number or None, rolled_back="migration",
                       block_start=None, left_behind=[])
            failed = None
            self.stop.sleep(delay)
            delay *= 2

    # -- several small transactional files in one round trip -------------------------------

    def batchable(self, script: Script) -> bool:
        """Whether a file may share a round trip with others: a small transactional file kept in
        memory since it was listed (nothing to read again, so nothing can change under it), that
        does not end sessions (which would end the batch's and the lock session's alike: alone,
        its failure names it)."""
        return (self.send_bytes and script.transactional and script.kept is not None and script.opener is None
                and len(script.kept.raw) <= BATCH_FILE_BYTES and not _ends_sessions(script))

    def apply_batch(self, batch: Sequence[tuple[Migration, Script]], applied: Callable[[Outcome], None]) -> None:
        """Apply several batchable files in one query, each in its own transaction: BEGIN, the
        session reset (for all but the first), a marker naming the file, its statements, its
        tail with COMMIT; then the session reset and the batch's rows read back. PostgreSQL stops
        a query at its first error: the files before the failing one are committed, it is rolled
        back, the later ones do not run. `applied` is called for each file once its row is read
        back from the history; a failure is raised as applying that file alone would raise it.

        PostgreSQL parses a query whole before running any of it: a syntax error anywhere in the
        batch (or a character the database's encoding lacks) runs nothing, and then the files
        are applied one per round trip, which finds the failing one exactly as before."""
        if self.watch:
            self.watch.forget()
        parts: list[bytes] = []
        queries: list[_Query] = []
        starts: list[int] = []  # where each file's own bytes start in the query, in bytes
        length = 0
        with self.connection.cursor() as cursor:
            for index, (migration, script) in enumerate(batch, start=1):
                base = index << _FILE_SHIFT
                segment = next(script.segments())
                begin = self._begin_for_batch(cursor)
                if index == 1:  # the session was reset after the query before this one
                    prefix = f"{begin}SELECT pg_catalog.pg_advisory_lock({MARK_CLASS}, {base}){_MARK_FILE_START};\n"
                else:
                    # The previous file's tail made the login role current again, for the session.
                    prefix = (f"{begin}{_RESET_IN_TRANSACTION}; SELECT pg_catalog.pg_advisory_unlock_all(), "
                              f"pg_catalog.pg_advisory_lock({MARK_CLASS}, {base}){_MARK_FILE_START};\n")
                query = _Query(prefix, segment, base, base)  # its first marker releases the file's own
                query.tail = self._tail(cursor, migration, script, query.last_marker, base,
                                        end="UNLISTEN *; COMMIT;\n", started=_FILE_START)
                queries.append(query)
                head = prefix.encode()
                parts.append(head)
                starts.append(length + len(head))
                length += len(head)
                for _, piece in query.pieces():
                    parts.append(piece)
                    length += len(piece)
                tail = query.tail.encode()
                parts.append(tail)
                length += len(tail)
            names = [migration.name for migration, _ in batch]
            parts.append(f"{RESET_SESSION};\n{self.tracking.applied_rows_sql(cursor, names)}".encode())
            text = b"".join(parts)
            try:
                cursor.execute(text)
                rows = dict(cursor.fetchall())
            except psycopg2.Error as exc:
                self._batch_failed(cursor, batch, queries, starts, text, exc, applied)
                return
            except BaseException:
                if self._in_block():  # the open file's transaction; those before it committed
                    self._rollback(cursor)
                raise
            for migration, script in batch:
                if migration.name not in rows:
                    raise history.tracking_not_landed(
                        self.tracking, f"migration {migration.name} committed, but its row",
                        "it is applied and the next run would apply it again")
                applied(Outcome(migration.name, script.count, rows[migration.name] or 0, 1))

    def _begin_for_batch(self, cursor) -> str:
        """BEGIN with the transaction characteristics the session has after its reset (the
        database's and role's defaults), read once per run (the session is reset before)."""
        if self._batch_begin is None:
            cursor.execute(_TRANSACTION_DEFAULTS)
            isolation, read_only, deferrable = cursor.fetchone()
            self._batch_begin = (f"BEGIN ISOLATION LEVEL {isolation.upper()} "
                                 f"{'READ ONLY' if read_only == 'on' else 'READ WRITE'} "
                                 f"{'DEFERRABLE' if deferrable == 'on' else 'NOT DEFERRABLE'};\n")
        return self._batch_begin

    def _batch_failed(self, cursor, batch: Sequence[tuple[Migration, Script]], queries: list["_Query"],
                      starts: list[int], text: bytes, exc: psycopg2.Error, applied: Callable[[Outcome], None]) -> None:
        """After a failed batch: which files committed (read from the history, not assumed),
        which one failed and where (its markers, or the error's position), what to raise."""
        names = [migration.name for migration, _ in batch]
        mark, rows = self._rollback_batch(cursor, names)
        if rows is None:  # the migration session is gone: ask the lock session what committed
            rows = self._committed_on_control(names)
        if rows is None:
            if self.stop.requested:
                raise self.stop.interrupted() from None
            raise ConnectionLost(
                f"lost the connection to the database while applying {len(batch)} migrations in one round trip "
                f"({names[0]} to {names[-1]}): {_first_line(exc)}",
                hint="each of them committed whole or not at all, and schema_migrations says which; running again "
                "is safe (see `python -m runner status`)",
            ) from None
        committed = 0
        while committed < len(batch) and batch[committed][0].name in rows:
            committed += 1
        if any(name in rows for name in names[committed:]):
            raise TrackingFailed(
                f"a batch of {len(batch)} migrations ({names[0]} to {names[-1]}) failed, and schema_migrations "
                f"holds rows for some after the first one that has none: {_first_line(exc)}",
                hint="a migration of the batch changed schema_migrations; see `python -m runner status`")
        for migration, script in batch[:committed]:
            applied(Outcome(migration.name, script.count, rows[migration.name] or 0, 1))
        if committed == len(batch):
            # Every file committed; the session reset after them failed. Nothing is pending.
            self._raise_unless_sql(exc, batch[-1][0], batch[-1][1])
            raise TrackingFailed(f"every migration of the batch ({names[0]} to {names[-1]}) was applied, then "
                                 f"resetting the session failed: {_first_line(exc)}")
        if committed == 0 and mark is None and not _connection_lost(exc, self.connection) \
                and self._refused_after_first(queries, starts, text, exc):
            # Refused before anything ran (PostgreSQL parses the whole query first), at a file
            # after the first: one file per round trip applies those before it and fails there.
            for migration, script in batch:
                applied(self.apply(migration, script))
            return
        migration, script = batch[committed]
        base = (committed + 1) << _FILE_SHIFT
        if mark is not None and mark >> _FILE_SHIFT == committed + 1:
            completed: Optional[int] = mark - base
        else:
            completed = 0  # before the file's first marker, or the file released the markers itself
        shift = len(text[:starts[committed]].decode("utf-8", errors="replace"))
        failure = self._transactional_failure(exc, migration, script, queries[committed], shift, completed)
        if not isinstance(failure, _Retry):
            raise failure
        # A lock timeout: this file is retried on its own, as apply() retries; the rest follow. The
        # sessions seen blocking during the round trip may have blocked a file before it: not
        # named for this one.
        if committed and self.watch:
            self.watch.forget()
        applied(self.apply(migration, script, failed=failure))
        rest = batch[committed + 1:]
        if len(rest) > 1:
            self.apply_batch(rest, applied)
        elif rest:
            applied(self.apply(*rest[0]))

    def _rollback_batch(self, cursor, names: list[str]) -> tuple[Optional[int], Optional[dict]]:
        """Roll back, read the marker held and reset the session, then read the batch's rows from
        the history: (the marker, {name: duration}); (None, None) when the session is gone."""
        if self.connection.closed:
            return None, None
        try:
            cursor.execute(f"ROLLBACK; {_LAST_MARK}")
            mark = cursor.fetchone()[0]
            cursor.execute(f"{RESET_SESSION}; {self.tracking.applied_rows_sql(cursor, names)}")
            return mark, dict(cursor.fetchall())
        except psycopg2.Error:
            return None, None

    def _committed_on_control(self, names: list[str]) -> Optional[dict]:
        try:
            with self.control.cursor() as cursor:
                cursor.execute(self.tracking.applied_rows_sql(cursor, names))
                return dict(cursor.fetchall())
        except psycopg2.Error:
            return None

    def _refused_after_first(self, queries: list["_Query"], starts: list[int], text: bytes,
                             exc: psycopg2.Error) -> bool:
        """Whether an error that ran nothing of the batch lies after its first file: its position
        (a syntax error), or the character the database's encoding lacks, found in the text."""
        position = _position(exc)
        if position:
            first_end = len(text[:starts[1]].decode("utf-8", errors="replace")) if len(starts) > 1 else None
            return first_end is not None and position - 1 >= first_end
        if characters.offset_in(str(exc.diag.message_primary), queries[0].segment.text) is not None:
            return False
        return any(characters.offset_in(str(exc.diag.message_primary), query.segment.text) is not None
                   for query in queries[1:])

    # -- transactional ---------------------------------------------------------------

    def _apply_in_transaction(self, migration: Migration, script: Script) -> None:
        begin = _terminated(script.opener or "BEGIN") + "\n"
        held: Optional[int] = None  # the statement marker held now
        with self.connection.cursor() as cursor:
            try:
                for index, segment, last in _with_last(script.segments()):
                    self.stop.check()
                    if index:
                        self._check_reading(migration, "it was rolled back")
                    query = _Query(begin if index == 0 else "", segment, held)
                    if last:
                        query.tail = self._tail(cursor, migration, script, query.last_marker)
                    failed = query.send(cursor, self.send_bytes)
                    if failed is not None:
                        exc, shift = failed
                        completed = self._rollback(cursor)
                        raise self._transactional_failure(exc, migration, script, query, shift, completed)
                    held = query.last_marker
            except FileChanged as changed:
                if self._in_block():
                    self._rollback(cursor)
                raise FileChanged(changed.file, changed.line, "it was rolled back: nothing of it is applied") from None
            except BaseException:
                if self._in_block():
                    self._rollback(cursor)
                raise

    def _tail(self, cursor, migration: Migration, script: Script, held: Optional[int], base: int = 0,
              end: str = "COMMIT; " + RESET_SESSION, started: str = "now()") -> str:
        """After the last statement: a marker (every statement completed), the tracking row, the
        check (the row landed as written, the lock is held; else an error, and COMMIT does not
        run) with a marker (the check passed), then `end`: COMMIT and the session reset. `base`:
        the file's marker keys in a batch (apply_batch)."""
        count = script.count
        released = f", pg_catalog.pg_advisory_unlock({MARK_CLASS}, {held})" if held is not None else ""
        record = self.tracking.record_sql(cursor, migration.name, script.checksum, count,
                                          also=f", pg_catalog.pg_advisory_lock({MARK_CLASS}, {base + count}){released}",
                                          started=started)
        landed = self.tracking.landed_sql(cursor, migration.name, script.checksum)
        return (f"\n;\n{record};\n"
                # No FROM: a subquery there cost more server time than the check itself.
                f"SELECT CAST(CASE WHEN NOT {self.lock_held} THEN '{_LOCK_LOST}' WHEN NOT ({landed}) "
                f"THEN '{_NOT_LANDED}' ELSE '0' END AS pg_catalog.int4), "
                f"pg_catalog.pg_advisory_lock({MARK_CLASS}, {base + count + 1}), "
                f"pg_catalog.pg_advisory_unlock({MARK_CLASS}, {base + count});\n"
                f"{end}")

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

    def _transactional_failure(self, exc: psycopg2.Error, migration: Migration, script: Script, query: "_Query",
                               shift: Optional[int], completed: Optional[int]) -> Exception:
        """The failure to raise (after the rollback): which statement failed, from the error's
        position when it has one, else from the last statement marker that completed."""
        self._raise_unless_sql(exc, migration, script)
        segment = query.segment
        # Every statement of the queries before this one completed; the markers say how many of this one's.
        completed = max(completed or 0, segment.first_number - 1)
        position = _position(exc) if shift is not None else 0
        relative = position - 1 - shift if position else None  # characters after the prefix
        offset: Optional[int] = None
        if relative is not None and relative >= 0:
            offset = query.segment_offset(relative)  # None: in a marker or the tail
        elif relative is None and shift is not None:
            # Refused before parsing (a character the database's encoding lacks): no position and
            # no statement ran, so the character is found in the text.
            offset = characters.offset_in(str(exc.diag.message_primary), segment.text)
        message = str(exc.diag.message_primary or "")
        if offset is not None:
            statement: Optional[Statement] = _statement_at(segment, offset)
        elif relative is not None and relative < 0:
            statement = None  # in the file's own BEGIN
        elif completed > script.count:
            # The check passed: COMMIT failed (a deferred constraint, a serialization failure).
            failure = self._failure(migration, script, None, None, exc, None, at_commit=True)
            return _Retry(failure) if exc.pgcode in RETRIED else failure
        elif completed == script.count and _LOCK_LOST in message:
            if _ends_sessions(script):
                return _lock_session_ended_by(migration, "it was rolled back")
            return LockLost(
                f"lost the migration lock while applying {migration.name}: the session holding it ended (someone "
                f"ended it, or its connection broke); {migration.name} was rolled back and nothing more was applied",
                hint="run again (the Job does so by itself); another run may have started meanwhile, and the lock "
                "makes the two take turns",
            )
        elif completed == script.count and _NOT_LANDED in message:
            return history.tracking_not_landed(
                self.tracking, f"migration {migration.name} ran, but its row", "the migration was rolled back")
        elif completed >= script.count and exc.pgcode not in RETRIED:
            return TrackingFailed(
                f"migration {migration.name} ran, but its row in {self.tracking.schema}.schema_migrations "
                f"could not be written: SQLSTATE {exc.pgcode}: {_first_line(exc)}; it was rolled back",
                hint="the role the runner logs in as must be able to write schema_migrations",
            )
        else:
            number = completed + 1
            statement = next((s for s in segment.statements if s.number == number), None)
        failure = self._failure(migration, script, segment, statement, exc, offset)
        return _Retry(failure) if exc.pgcode in RETRIED else failure

    # -- no transaction ------------------------------------------------------------------

    def _apply_without_transaction(self, migration: Migration, script: Script) -> None:
        started = time.monotonic()
        self._record(lambda c: self.tracking.start_incomplete(c, migration.name, script.checksum), migration,
                     script, "nothing of it ran")
        done = 0  # statements that ran and committed, as the history says
        block: list[tuple[Segment, Statement]] = []  # the open transaction block, its BEGIN first
        with self.connection.cursor() as cursor:
            try:
                for segment in self._verified(script, lambda: done):
                    for statement in segment.statements:
                        if done and not block:
                            self._check_reading(migration, f"it stopped after {done} of {script.count} statements "
                                                "and is recorded as incomplete")
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
                c, migration.name, script.checksum, _elapsed_ms(started), done), migration, script,
                f"all {done} statement{'' if done == 1 else 's'} ran, and the row still says incomplete "
                f"(once the table is fixed: `python -m runner resolve {migration.name} --applied`)")
            cursor.execute(RESET_SESSION)

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


def _reading_settings(connection) -> tuple[Optional[str], ...]:
    """The settings as the server last reported them (libpq keeps them: no round trip)."""
    return tuple(connection.get_parameter_status(setting) for setting in READING_SETTINGS)


def invalid_indexes(cursor) -> list[str]:
    """The INVALID indexes of the database that no session is building: a failed concurrent build's."""
    cursor.execute(_INVALID_INDEXES)
    return sorted(name for _, name in cursor.fetchall())


def _marker(number: int, release: Optional[int]) -> str:
    """Statement `number` completed: hold mark `number`, release the one held before (one at a
    time, so a long file does not fill the server's lock table)."""
    released = f", pg_catalog.pg_advisory_unlock({MARK_CLASS}, {release})" if release is not None else ""
    return f"\nSELECT pg_catalog.pg_advisory_lock({MARK_CLASS}, {number}){released};\n"


class _Query:
    """One query of a transactional migration: the prefix (the file's BEGIN, for its first
    segment), the segment's statements with a marker between two of them, and the tail (after
    its last segment)."""

    def __init__(self, prefix: str, segment: Segment, held: Optional[int], base: int = 0):
        self.prefix = prefix
        self.segment = segment
        self.held = held  # the marker held before this query
        self.base = base  # added to the statement numbers in the marker keys (a file's place in a batch)
        self.tail = ""
        self.marked = segment.count > 1
        # The marker held after it: the one after its last statement but one.
        self.last_marker = base + segment.first_number + segment.count - 2 if self.marked else held

    def pieces(self) -> Iterator[tuple[bool, bytes]]:
        """The segment's bytes and the markers: (is it the file's, the bytes)."""
        raw = self.segment.raw
        if not self.marked:
            yield True, raw
            return
        view = memoryview(raw)  # slices without copies; the join copies once
        position = 0
        held = self.held
        ends = self.segment.ends
        for index, end in enumerate(ends[:-1]):
            number = self.base + self.segment.first_number + index
            yield True, view[position:end]
            # Only the file's last statement may lack its `;` (a comment may end the line).
            yield False, (b"" if raw[end - 1:end] == b";" else b"\n;") + _marker(number, held).encode()
            held = number
            position = end
        yield True, view[position:]

    def send(self, cursor, send_bytes: bool) -> Optional[tuple[psycopg2.Error, Optional[int]]]:
        """Send it; on an error, (the error, how many characters came before the segment in the
        query that failed: None when that query did not hold the segment)."""
        raw = self.segment.raw
        if not self.marked and len(raw) > ALONE_BYTES:
            # One large statement: its bytes as read, in a query of their own.
            parts = [(self.prefix, None), (raw if send_bytes else self.segment.text, 0), (self.tail, None)]
        elif send_bytes:
            parts = [(b"".join([self.prefix.encode(), *(piece for _, piece in self.pieces()), self.tail.encode()]),
                      len(self.prefix))]
        else:
            body = b"".join(piece for _, piece in self.pieces()).decode("utf-8")
            parts = [(self.prefix + body + self.tail, len(self.prefix))]
        for query, shift in parts:
            if query:
                try:
                    cursor.execute(query)
                except psycopg2.Error as exc:
                    return exc, shift
        return None

    def segment_offset(self, offset: int) -> Optional[int]:
        """Where a character `offset` characters after the prefix is in the segment's own text;
        None in a marker or in the tail. Only on the failure path: it decodes the pieces."""
        before = 0  # characters of the segment's text before this piece
        for ours, piece in self.pieces():
            length = len(bytes(piece).decode("utf-8", errors="replace"))
            if offset < length:
                return before + offset if ours else None
            offset -= length
            if ours:
                before += length
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
