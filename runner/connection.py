"""Connect to PostgreSQL from the backend's environment, waiting for it with backoff.

Nothing derived from DATABASE_URL or the password reaches output unchecked: a URL that
libpq and a person would read differently (an unescaped `/`, `@`, `?` or `#` in the
password) is refused without repeating any of it, and every message from libpq or the
server passes through `ConnectionTarget.redact`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import quote, unquote

import psycopg2
import psycopg2.extensions

from runner.errors import DatabaseRefused, DatabaseUnavailable, UsageError
from runner.interrupts import StopSignal
from runner.waiting import BlockerWatch

APPLICATION_NAME = "db-migrations"
_CLIENT_CHECK = "client_connection_check_interval=1000"
_URI = re.compile(r"^postgres(?:ql)?://", re.I)
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What the server or libpq says when retrying cannot help: the Job must fail at once,
# not spend its retries and deadline waiting for a password to become right.
_REFUSED = re.compile(
    r"password authentication failed|role \"[^\"]*\" does not exist|database \"[^\"]*\" does not exist"
    r"|no pg_hba\.conf entry|pg_hba\.conf rejects|permission denied for database|is not permitted to log in"
    r"|invalid integer value|invalid port number|invalid sslmode value|invalid connection option"
    r"|server does not support SSL|no password supplied|authentication method requirement"
    r"|SSL (?:is )?required|certificate",
    re.I,
)


@dataclass(frozen=True)
class ConnectionTarget:
    dsn: str  # holds the password: never print it
    display: str  # user@host:port/dbname, safe for logs
    secrets: tuple[str, ...] = field(default=())  # strings that must never be printed

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def target_from_env(environ: Mapping[str, str], sslmode: Optional[str] = None) -> ConnectionTarget:
    """DATABASE_URL if set, else the backend's POSTGRES_* variables.

    The DSN is built by libpq's own rules (psycopg2's make_dsn), so passwords holding
    `@ : / ?` or spaces need no escaping in POSTGRES_PASSWORD.
    """
    extra = {"application_name": APPLICATION_NAME}
    if sslmode:
        extra["sslmode"] = sslmode
    url = environ.get("DATABASE_URL", "").strip()
    if url:
        parsed = _parse_url(url)
        dsn = psycopg2.extensions.make_dsn(url, **extra)
        secrets = _secret_forms(parsed.get("password", "")) + (url,)
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
        password = environ.get("POSTGRES_PASSWORD") or ""
        params = dict(parsed, **extra)
        if password:
            params["password"] = password
        dsn = psycopg2.extensions.make_dsn(**params)
        secrets = _secret_forms(password)
    target = ConnectionTarget(dsn=dsn, display="", secrets=tuple(s for s in secrets if s))
    return ConnectionTarget(dsn=dsn, display=target.redact(_display(parsed)), secrets=target.secrets)


def _parse_url(url: str) -> dict:
    malformed = UsageError(
        "DATABASE_URL is malformed: it is not a connection string libpq and a person would read the "
        "same way (nothing of it is repeated here, as it holds the password)",
        hint="percent-encode special characters of the user name and password (/ is %2F, @ is %40, "
        "? is %3F, # is %23, : is %3A, % is %25), or set POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, "
        "POSTGRES_PASSWORD and POSTGRES_DB instead",
    )
    if _URI.match(url):
        rest = url.split("://", 1)[1]
        cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
        authority, tail = rest[:cut], rest[cut:]
        userinfo = authority.rpartition("@")[0]
        if "@" in tail or authority.count("@") > 1 or _PERCENT.search(userinfo):
            raise malformed
    try:
        parsed = psycopg2.extensions.parse_dsn(url)
    except psycopg2.ProgrammingError:
        raise malformed from None
    port = parsed.get("port", "")
    if port and not all(p.strip().isdigit() for p in port.split(",")):
        raise malformed
    return parsed


def _secret_forms(password: str) -> tuple[str, ...]:
    if not password:
        return ()
    return tuple({password, quote(password, safe=""), unquote(password)})


def _display(params: Mapping[str, str]) -> str:
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    user = params.get("user") or "?"
    dbname = params.get("dbname") or user
    return f"{user}@{host}:{port}/{dbname}"


def session_options(lock_timeout: str, statement_timeout: str, idle_in_transaction_timeout: str) -> str:
    # Set at connection start, these become the session's reset values, so RESET ALL
    # between migrations restores them. A runner frozen inside a migration (SIGSTOP, a
    # stalled node) loses its session after the idle timeout, and with it its locks.
    return (
        f"-c lock_timeout={lock_timeout} -c statement_timeout={statement_timeout} "
        f"-c idle_in_transaction_session_timeout={idle_in_transaction_timeout}"
    )


def lock_session_options(options: str) -> str:
    """The runner's own session (the migration lock and the history): only pg_catalog on its
    search_path, whatever the role or database set, so its statements mean what they say."""
    return f"{options} -c search_path=pg_catalog,pg_temp"


# The lock session idles while migrations run: a role's idle_session_timeout must not end it;
# and if the runner's node vanishes, TCP keepalives let the server end it, and free the lock,
# within about a minute instead of the kernel's two hours.
LOCK_SESSION_OPTIONAL = ("idle_session_timeout=0", "tcp_keepalives_idle=30", "tcp_keepalives_interval=10",
                         "tcp_keepalives_count=3")


def connect(
    target: ConnectionTarget,
    *,
    options: str,
    wait_seconds: float,
    stop: StopSignal,
    watch: Optional[BlockerWatch],
    on_retry=None,
    optional: tuple[str, ...] = (),
) -> psycopg2.extensions.connection:
    """Connect, retrying with backoff until `wait_seconds` have passed; refusals fail at once.

    `optional` settings are dropped, one by one, by a server that does not know them. `watch`
    (the blocker watch) is given the connection whose statements may wait on locks."""
    # Green mode: queries wait in Python's select(), so SIGTERM is handled mid-statement.
    if watch is not None:
        watch.install()
    deadline = time.monotonic() + wait_seconds
    delay = 0.25
    attempt = 0
    # PostgreSQL 14+ notices a vanished client (SIGKILL, lost node) during a long statement
    # within a second, rolls back and frees the migration lock; older servers reject the name.
    settings = [_CLIENT_CHECK, *optional]
    while True:
        attempt += 1
        stop.check()
        try:
            connection = psycopg2.connect(target.dsn, options=" ".join([options, *(f"-c {s}" for s in settings)]),
                                          connect_timeout=10)
        except psycopg2.OperationalError as exc:
            unknown = next((s for s in settings if s.split("=")[0] in str(exc)), None)
            if unknown:
                settings.remove(unknown)
                continue
            reason = target.redact(_first_line(str(exc)))
            if _REFUSED.search(reason):
                raise DatabaseRefused(
                    f"database {target.display} refused the connection: {reason}",
                    hint="check POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB (or DATABASE_URL) and "
                    "the server's pg_hba.conf; retrying does not help, so the runner stopped at once",
                ) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailable(
                    f"database {target.display} not reachable after {wait_seconds:g}s "
                    f"({attempt} attempts): {reason}",
                    hint="check that PostgreSQL is up and POSTGRES_HOST/PORT (or DATABASE_URL) are right; "
                    "raise --wait-for-db for slow starts",
                ) from None
            if on_retry:
                on_retry(attempt, reason, min(delay, remaining))
            stop.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
            continue
        connection.autocommit = True  # the runner issues BEGIN/COMMIT itself
        stop.connection = connection
        if watch is not None:
            watch.watch(connection, lambda: _side_connection(target))
        return connection


def _side_connection(target: ConnectionTarget):
    """A second session, only to look at pg_stat_activity while a statement waits on a lock."""
    side = psycopg2.connect(target.dsn, connect_timeout=5, application_name=f"{APPLICATION_NAME}-watch")
    side.autocommit = True
    return side


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else "unknown error"
