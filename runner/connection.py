"""Connect to PostgreSQL from the backend's environment, waiting for it with backoff."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Optional

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from runner.errors import DatabaseUnavailable, UsageError
from runner.interrupts import StopSignal

APPLICATION_NAME = "db-migrations"
_CLIENT_CHECK = "client_connection_check_interval=1000"


@dataclass(frozen=True)
class ConnectionTarget:
    dsn: str  # holds the password: never print it
    display: str  # user@host:port/dbname, safe for logs


def target_from_env(environ: Mapping[str, str], sslmode: Optional[str] = None) -> ConnectionTarget:
    """DATABASE_URL if set, else the backend's POSTGRES_* variables.

    The DSN is built by libpq's own rules (psycopg2's make_dsn), so passwords holding
    `@ : / ?` or spaces need no escaping.
    """
    extra = {"application_name": APPLICATION_NAME}
    if sslmode:
        extra["sslmode"] = sslmode
    url = environ.get("DATABASE_URL", "").strip()
    if url:
        try:
            parsed = psycopg2.extensions.parse_dsn(url)
        except psycopg2.ProgrammingError:
            # libpq's message can quote parts of the URL, password included: do not repeat it.
            raise UsageError(
                "DATABASE_URL is not a valid PostgreSQL connection string",
                hint="use postgresql://USER:PASSWORD@HOST:PORT/DBNAME and percent-encode "
                "special characters in the password, or set the POSTGRES_* variables instead",
            ) from None
        dsn = psycopg2.extensions.make_dsn(url, **extra)
    else:
        host = environ.get("POSTGRES_HOST", "").strip()
        if not host:
            raise UsageError(
                "no database configured: set DATABASE_URL, or POSTGRES_HOST with "
                "POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB",
            )
        port = environ.get("POSTGRES_PORT", "5432").strip() or "5432"
        if not port.isdigit():
            raise UsageError(f"POSTGRES_PORT must be a number, got {port!r}")
        parsed = {
            "host": host,
            "port": port,
            "user": environ.get("POSTGRES_USER", "postgres"),
            "dbname": environ.get("POSTGRES_DB", environ.get("POSTGRES_USER", "postgres")),
        }
        password = environ.get("POSTGRES_PASSWORD")
        params = dict(parsed, **extra)
        if password:
            params["password"] = password
        dsn = psycopg2.extensions.make_dsn(**params)
    return ConnectionTarget(dsn=dsn, display=_display(parsed))


def _display(params: Mapping[str, str]) -> str:
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    user = params.get("user") or "?"
    dbname = params.get("dbname") or user
    return f"{user}@{host}:{port}/{dbname}"


def session_options(lock_timeout: str, statement_timeout: str) -> str:
    # Set at connection start, these become the session's reset values, so RESET ALL
    # between migrations restores them.
    return f"-c lock_timeout={lock_timeout} -c statement_timeout={statement_timeout}"


def connect(
    target: ConnectionTarget,
    *,
    options: str,
    wait_seconds: float,
    stop: StopSignal,
    on_retry=None,
) -> psycopg2.extensions.connection:
    """Connect, retrying with backoff until `wait_seconds` have passed."""
    # Green mode: queries wait in Python's select(), so SIGTERM is handled mid-statement.
    psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
    deadline = time.monotonic() + wait_seconds
    delay = 0.25
    attempt = 0
    # PostgreSQL 14+ notices a vanished client (SIGKILL, lost node) during a long statement
    # within a second, rolls back and frees the migration lock; older servers reject the name.
    check_client = f"{options} -c {_CLIENT_CHECK}"
    while True:
        attempt += 1
        stop.check()
        try:
            connection = psycopg2.connect(target.dsn, options=check_client, connect_timeout=10)
        except psycopg2.OperationalError as exc:
            if check_client != options and _CLIENT_CHECK.split("=")[0] in str(exc):
                check_client = options
                continue
            reason = _first_line(str(exc))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailable(
                    f"database {target.display} not reachable after {wait_seconds:g}s "
                    f"({attempt} attempts): {reason}",
                    hint="check that PostgreSQL is up and POSTGRES_HOST/PORT/USER/PASSWORD "
                    "(or DATABASE_URL) are right; raise --wait-for-db for slow starts",
                ) from None
            if on_retry:
                on_retry(attempt, reason, min(delay, remaining))
            stop.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
            continue
        connection.autocommit = True  # the runner issues BEGIN/COMMIT itself
        stop.connection = connection
        return connection


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else "unknown error"
