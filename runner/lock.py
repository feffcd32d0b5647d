"""One runner at a time per database: a session-level PostgreSQL advisory lock.

It is held by the runner's own session, never the one that runs migrations: a migration's
`DISCARD ALL` or `pg_advisory_unlock_all()` releases its own session's locks only.

With it, the lock session holds a second advisory lock whose key is drawn at random for the
run (the run's token). The migration session checks before every COMMIT that the token is
still held by someone: pg_try_advisory_xact_lock_shared fails only while the lock session
holds it, and only this run's lock session knows the key. The lock session holds both until
it ends, so the token is held exactly while the migration lock is. The check is a call to a
lock function, not a read of pg_locks, which takes every lock partition of the server and
cost more than a one-line migration.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import psycopg2

from runner.errors import LockNotAcquired
from runner.interrupts import StopSignal

# A fixed key derived from a name, so every copy of the runner agrees on it.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"runner:schema_migrations").digest()[:8], "big", signed=True)
# The class of the run's token (two-int advisory keys, pg_locks.objsubid 2); the executor's
# statement markers have a class of their own.
TOKEN_CLASS = 0x72756C  # "rul"


def acquire(connection, *, wait_seconds: float, stop: StopSignal, on_wait=None) -> int:
    """Poll pg_try_advisory_lock outside any transaction until `wait_seconds` pass; then take
    the run's token (returned).

    Polling instead of a blocking pg_advisory_lock: a runner blocked inside a transaction
    would hold a snapshot that CREATE INDEX CONCURRENTLY in the lock holder waits for.
    """
    assert connection.autocommit, "the advisory lock is polled outside a transaction"
    deadline = time.monotonic() + wait_seconds
    delay = 0.1
    waited = False
    with connection.cursor() as cursor:
        while True:
            stop.check()
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            if cursor.fetchone()[0]:
                token = secrets.randbits(31)
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", (TOKEN_CLASS, token))
                return token
            if not waited and on_wait:
                on_wait()
            waited = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                cursor.execute(
                    "SELECT pid, application_name, extract(epoch FROM now() - backend_start)::int FROM pg_locks l "
                    "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' "
                    "AND l.granted AND l.objsubid = 1 AND l.classid = %s AND l.objid = %s",
                    _key_halves(),
                )
                holder = cursor.fetchone()
                who = f" (held by pid {holder[0]}, {holder[1] or 'unnamed'}, connected {holder[2]}s ago)" if holder else ""
                raise LockNotAcquired(
                    f"another migration run holds the migration lock{who}; gave up after {wait_seconds:g}s",
                    hint="wait for the other run to finish, or raise --wait-for-lock; "
                    "the Job will retry this attempt",
                )
            stop.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)


def release(connection) -> None:
    if connection.closed:
        return
    try:
        with connection.cursor() as cursor:
            # The migration lock and the run's token: the lock session holds nothing else.
            cursor.execute("SELECT pg_advisory_unlock_all()")
    except psycopg2.Error:
        pass  # the session is gone, and its lock with it


def still_held_sql(token: int) -> str:
    """An expression: is the run's token (so the migration lock) still held by its lock session?
    Evaluated in the migration session's transaction (a shared try-lock taken when the token is
    free is released with that transaction)."""
    return f"NOT pg_catalog.pg_try_advisory_xact_lock_shared({TOKEN_CLASS}, {int(token)})"


def held_by_sql(pid: int) -> str:
    """A query: does session `pid` (the lock session) hold the migration lock?"""
    high, low = _key_halves()
    return (f"SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = {int(pid)} "
            f"AND classid = {high} AND objid = {low} AND objsubid = 1)")


def _key_halves() -> tuple[int, int]:
    # pg_locks shows a bigint advisory key as two unsigned 32-bit halves.
    unsigned = LOCK_KEY & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF
