"""How the runner waits for the server: in select(), and watching who blocks it.

psycopg2's wait callback runs while a query is on the server. Waiting in select() keeps
SIGTERM/SIGINT handled mid-statement (runner.interrupts cancels the query). When a
statement has waited a while, the callback asks a second connection which sessions
block it (pg_blocking_pids), so that a lock timeout can name the blocker: by the time
a person reads the message, the runner has exited and the evidence is gone. The
blocker's query is reported without its literals: it is another session's SQL, and may
hold a password (CREATE ROLE ... PASSWORD '...') or customer data.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import Callable, Optional

import psycopg2
import psycopg2.extensions as ext

from runner.redaction import without_literals

FIRST_LOOK = 0.25  # seconds a statement waits before the first look at its blockers
LOOK_EVERY = 1.0
# libpq ignores connect_timeout when the application polls the connection (PQconnectPoll),
# which psycopg2 does once a wait callback is set: the callback bounds connection attempts.
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Blocker:
    pid: int
    application_name: str
    state: str
    seconds: int  # how long its transaction (or query) has been running
    query: str

    def describe(self) -> str:
        query = " ".join(without_literals(self.query).split())
        if len(query) > 200:
            query = query[:200] + "..."
        name = self.application_name or "no application_name"
        return f"pid {self.pid} ({name}, {self.state or 'unknown state'}, for {self.seconds}s): {query}"


class BlockerWatch:
    """The process-wide wait callback; it watches one connection (the runner's)."""

    def __init__(self) -> None:
        self.watched = None
        self.open_side: Optional[Callable[[], object]] = None
        self.side = None
        self.blockers: tuple[Blocker, ...] = ()
        self.looked = False
        self.look_failed = ""  # why the last look could not be made
        self.connect_timeout = CONNECT_TIMEOUT

    def install(self) -> None:
        ext.set_wait_callback(self)

    def watch(self, connection, open_side: Callable[[], object]) -> None:
        self.watched, self.open_side = connection, open_side

    def forget(self) -> None:
        """Start a new attempt: what an earlier one saw no longer counts."""
        self.blockers = ()
        self.looked = False
        self.look_failed = ""

    def unseen(self) -> str:
        """Why no blocker can be named, truthfully."""
        if self.look_failed:
            return ("the blocking session could not be identified: the second connection that looks it up "
                    f"failed ({self.look_failed})")
        if not self.looked:
            return f"the blocking session was not looked up (each wait ended within {FIRST_LOOK:g}s)"
        return "the blocking session was not seen (it may have finished)"

    def close(self) -> None:
        if self.side is not None and not self.side.closed:
            self.side.close()
        self.side = None
        self.watched = None

    def __call__(self, connection) -> None:
        watched = connection is self.watched
        started = time.monotonic()
        next_look = started + FIRST_LOOK
        give_up = started + self.connect_timeout if connection.status == ext.STATUS_SETUP else None
        while True:
            state = connection.poll()
            if state == ext.POLL_OK:
                return
            readers, writers = ([connection.fileno()], []) if state == ext.POLL_READ else ([], [connection.fileno()])
            timeout = max(0.0, next_look - time.monotonic()) if watched else None
            if give_up is not None:
                if time.monotonic() >= give_up:
                    raise psycopg2.OperationalError(
                        f"timeout expired: the server did not complete the connection within {self.connect_timeout:g}s")
                timeout = give_up - time.monotonic()
            select.select(readers, writers, [], timeout)
            if watched and time.monotonic() >= next_look:
                self._look(connection)
                next_look = time.monotonic() + LOOK_EVERY

    def _look(self, connection) -> None:
        self.looked = True
        try:
            if self.side is None or self.side.closed:
                self.side = self.open_side()
            with self.side.cursor() as cursor:
                # Bytes, decoded here: another database's query need not be valid in ours
                # (a SQL_ASCII database holds any bytes).
                ext.register_type(ext.BYTES, cursor)
                cursor.execute(
                    "SELECT pid, coalesce(application_name, ''), coalesce(state, ''), "
                    "coalesce(extract(epoch FROM now() - coalesce(xact_start, query_start))::int, 0), "
                    "coalesce(query, '') FROM pg_stat_activity WHERE pid = ANY (pg_blocking_pids(%s)) ORDER BY pid",
                    (connection.get_backend_pid(),),
                )
                found = tuple(Blocker(pid, _text(name), _text(state), seconds, _text(query))
                              for pid, name, state, seconds, query in cursor.fetchall())
            self.look_failed = ""
            if found:
                self.blockers = found
        except psycopg2.Error as exc:
            # A look is best effort; the statement's own outcome decides. Say why it failed.
            self.side = None
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            self.look_failed = lines[0] if lines else type(exc).__name__


def _text(value) -> str:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return value or ""
