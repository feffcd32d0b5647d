"""Connect to PostgreSQL from the backend's environment, waiting for it with backoff.

Nothing derived from DATABASE_URL or the password reaches output unchecked: a URL that
libpq and a person would read differently (an unescaped `/`, `@`, `?` or `#` in the
password) is refused without repeating any of it, every message from libpq or the
server passes through `ConnectionTarget.redact`, and the reporter redacts all output
once more (runner.redaction).

A failure retrying cannot cure (a refused login, an option libpq or the server rejects)
stops at once; anything else is waited out until --wait-for-db.
"""

from __future__ import annotations

import codecs
import re
import time
from dataclasses import dataclass, field
from typing import Mapping, Optional
import psycopg2
import psycopg2.extensions

from runner.errors import DatabaseReadOnly, DatabaseRefused, DatabaseUnavailable, UsageError
from runner.interrupts import StopSignal
from runner.redaction import Secrets, forms
from runner.waiting import CONNECT_TIMEOUT, BlockerWatch

APPLICATION_NAME = "db-migrations"
_NAME_LIMIT = 63  # PostgreSQL keeps the first NAMEDATALEN-1 bytes of application_name
_CLIENT_CHECK = "client_connection_check_interval=1000"
_URI = re.compile(r"^postgres(?:ql)?://", re.I)
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# The settings the runner itself sets at connection start, from its flags.
RUNNER_SETTINGS = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")

# Why a connection attempt failed, when retrying cannot help: the Job must fail at once
# (exit 2), not spend its retries and deadline. Anything else is treated as an outage.
#
# libpq refuses the connection string itself before any network traffic (fe-connect.c,
# pqConnectOptions2 and conninfo parsing): an option value it does not know, a malformed
# URI, a service that is not defined.
_CLIENT_REFUSED = re.compile(
    r"invalid (?:\"?[a-z_]+\"? value|connection option|integer value|port number|URI|percent-encoded token"
    r"|SSL protocol version range|SCRAM)"
    r"|value \"[^\"]*\" invalid when|is not supported \(|cannot be mixed with|is specified more than once"
    r"|could not match \d+ (?:host names|port numbers)|weak sslmode|missing \"=\" after|unterminated quoted string"
    r"|forbidden value %00|extra key/value separator|end of string reached when looking for matching"
    r"|definition of service \"[^\"]*\" not found|service file \"[^\"]*\" not found|syntax error in service file",
    re.I,
)
# The server answered and said no: the login, or the options sent at connection start.
_SERVER_REFUSED_LOGIN = re.compile(
    r"password authentication failed|role \"[^\"]*\" does not exist|database \"[^\"]*\" does not exist"
    r"|no pg_hba\.conf entry|pg_hba\.conf rejects|permission denied for database|is not permitted to log in"
    r"|server does not support SSL|no password supplied|authentication method requirement"
    r"|SSL (?:is )?required|certificate",
    re.I,
)
_SERVER_REFUSED_OPTIONS = re.compile(
    r"invalid value for parameter|unrecognized configuration parameter|invalid command-line argument"
    r"|parameter \"[^\"]*\" cannot be (?:changed|set)|permission denied to set parameter"
    r"|invalid (?:input syntax|value) for|is outside the valid range for parameter",
    re.I,
)


@dataclass(frozen=True)
class ConnectionTarget:
    dsn: str  # holds the password: never print it
    display: str  # user@host:port/dbname, safe for logs
    secrets: tuple[str, ...] = field(default=())  # strings that must never be printed
    options: str = ""  # the user's startup options (DATABASE_URL's options=, else PGOPTIONS)

    def redact(self, text: str) -> str:
        return Secrets(self.secrets).redact(text)


def target_from_env(environ: Mapping[str, str], sslmode: Optional[str] = None) -> ConnectionTarget:
    """DATABASE_URL if set, else the backend's POSTGRES_* variables.

    The DSN is built by libpq's own rules (psycopg2's make_dsn), so passwords holding
    `@ : / ?` or spaces need no escaping in POSTGRES_PASSWORD. What the user set for the
    session is kept: `options` (or PGOPTIONS) is merged with the runner's own, and an
    `application_name` (or PGAPPNAME) is kept, marked as the runner's.
    """
    extra = {}
    if sslmode:
        extra["sslmode"] = sslmode
    url = environ.get("DATABASE_URL", "").strip()
    if url:
        parsed = _parse_url(url)
        secrets = (*forms(parsed.get("password", "")), url)
        base = url
    else:
        host = environ.get("POSTGRES_HOST", "").strip()
        if not host:
            raise UsageError(
                "no database configured: set DATABASE_URL, or POSTGRES_HOST with "
                "POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB",
            )
        port = environ.get("POSTGRES_PORT", "5432").strip() or "5432"
        if not port.isdigit():
            raise UsageError(f"POSTGRES_PORT must be a number, got {port!r}",
                             hint="set it to the server's port, e.g. 5432")
        parsed = {
            "host": host,
            "port": port,
            "user": environ.get("POSTGRES_USER", "postgres"),
            "dbname": environ.get("POSTGRES_DB", environ.get("POSTGRES_USER", "postgres")),
        }
        password = environ.get("POSTGRES_PASSWORD") or ""
        if password:
            parsed["password"] = password
        secrets = tuple(forms(password)) if password else ()
        base = ""
    extra["application_name"] = application_name(parsed.get("application_name") or environ.get("PGAPPNAME", ""))
    dsn = psycopg2.extensions.make_dsn(base, **({} if url else parsed), **extra)
    options = parsed.get("options") or environ.get("PGOPTIONS", "")
    target = ConnectionTarget(dsn=dsn, display="", secrets=tuple(s for s in secrets if s), options=options)
    return ConnectionTarget(dsn=dsn, display=target.redact(_display(parsed)), secrets=target.secrets,
                            options=options)


def application_name(theirs: str) -> str:
    """The runner's name, after the user's own when they set one (both stay visible in
    pg_stat_activity, the runner's within the 63 bytes PostgreSQL keeps)."""
    theirs = theirs.strip()
    if not theirs:
        return APPLICATION_NAME
    suffix = f" ({APPLICATION_NAME})"
    room = _NAME_LIMIT - len(suffix.encode("utf-8"))
    return theirs.encode("utf-8")[:room].decode("utf-8", errors="ignore") + suffix


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
        raise _bad_port(port, parsed.get("password", ""), malformed)
    return parsed


def _bad_port(port: str, password: str, malformed: UsageError) -> UsageError:
    """A port that is not a number (README's `...:PORT/postgres` copied as it is) is named,
    unless it could be part of the password (then nothing of the URL is repeated)."""
    if not re.fullmatch(r"[A-Za-z0-9_,.-]{1,16}", port) or (password and (port in password or password in port)):
        return malformed
    return UsageError(
        f"DATABASE_URL's port is {port!r}, not a number",
        hint="put the server's port there, e.g. postgresql://USER:PASSWORD@HOST:5432/DBNAME "
        "(`make postgres` prints a complete URL to copy)",
    )


def _display(params: Mapping[str, str]) -> str:
    if params.get("service") and not params.get("host"):
        # The rest comes from pg_service.conf, which libpq reads; after connecting, the
        # connection says where it went (display_connected).
        return f"service {params['service']}"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    user = params.get("user") or "?"
    dbname = params.get("dbname") or user
    return f"{user}@{host}:{port}/{dbname}"


def display_connected(connection, target: ConnectionTarget) -> str:
    """Where the connection really went (a service file, PGHOST and the like included)."""
    info = connection.info
    return target.redact(f"{info.user}@{info.host}:{info.port}/{info.dbname}")


def refuse_read_only(connection, display: str) -> None:
    """Stop before anything is written when this session cannot write: a hot standby, or a
    database or role set to open sessions read-only."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')")
        standby, read_only = cursor.fetchone()
    if standby:
        raise DatabaseReadOnly(
            f"database {display} is a read-only standby (a replica in recovery); migrations run on the primary, "
            "so nothing was applied",
            hint="point POSTGRES_HOST (or DATABASE_URL) at the primary (in an HA cluster, its primary Service); "
            "with several hosts in DATABASE_URL, add target_session_attrs=primary so libpq picks the primary",
        )
    if read_only == "on":
        raise DatabaseReadOnly(
            f"database {display} opens sessions read-only (default_transaction_read_only is on for this database "
            "or role), so nothing was applied",
            hint="someone made it read-only, often for maintenance: once that is over, "
            "ALTER DATABASE ... RESET default_transaction_read_only (or ALTER ROLE ... RESET ...), then run again",
        )


def refuse_other_server(lock_session, migration_session, display: str) -> None:
    """Stop when the migration session reached another server than the lock session (several
    hosts in DATABASE_URL, load_balance_hosts=random, a failover in between): the lock would
    not keep a second runner off the database the migrations change. The lock session must
    see the migration session's backend, born when it says."""
    with migration_session.cursor() as cursor:
        cursor.execute("SELECT pg_catalog.pg_backend_pid(), (SELECT backend_start FROM pg_catalog.pg_stat_activity "
                       "WHERE pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid())")
        pid, started = cursor.fetchone()
    with lock_session.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE pid = %s AND backend_start = %s)",
                       (pid, started))
        same = cursor.fetchone()[0]
    if not same:
        raise UsageError(
            f"the runner's two sessions with {display} reached different servers (the one holding the migration lock "
            f"and the one that runs migrations), so the lock would not protect the migrations; nothing was applied",
            hint="with several hosts in DATABASE_URL, add target_session_attrs=primary (and no load_balance_hosts), "
            "or name the primary alone",
        )


def escape_option(value: str) -> str:
    # The server splits `options` at whitespace; a backslash escapes the next character.
    return re.sub(r"([\s\\])", r"\\\1", value)


def session_options(lock_timeout: str, statement_timeout: str, idle_in_transaction_timeout: str,
                    theirs: str = "") -> str:
    """The user's startup options, then the runner's (which win for the settings they share).

    Set at connection start, these become the session's reset values, so RESET ALL
    between migrations restores them. A runner frozen inside a migration (SIGSTOP, a
    stalled node) loses its session after the idle timeout, and with it its locks.
    """
    ours = " ".join(
        f"-c {name}={escape_option(value)}"
        for name, value in zip(RUNNER_SETTINGS, (lock_timeout, statement_timeout, idle_in_transaction_timeout))
    )
    return f"{theirs.strip()} {ours}" if theirs.strip() else ours


def settings_in_options(options: str) -> dict[str, str]:
    """name -> value of the `-c name=value` and `--name=value` settings in a startup options string."""
    found: dict[str, str] = {}
    words = _split_options(options)
    for index, word in enumerate(words):
        setting = None
        if word == "-c" and index + 1 < len(words):
            setting = words[index + 1]
        elif word.startswith("-c") and len(word) > 2:
            setting = word[2:]
        elif word.startswith("--") and "=" in word:
            setting = word[2:].replace("-", "_")
        if setting and "=" in setting:
            name, value = setting.split("=", 1)
            found[name.strip().lower()] = value
    return found


def _split_options(options: str) -> list[str]:
    words, current, escaped, started = [], [], False, False
    for char in options:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = started = True
        elif char.isspace():
            if started:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
    if started:
        words.append("".join(current))
    return words


def refusal(reason: str, display: str) -> Optional[UsageError]:
    """The error to stop with at once when a connection failed for a reason retrying cannot
    change; None for what may be an outage (refused connection, timeout, DNS, full slots)."""
    if _CLIENT_REFUSED.search(reason):
        return UsageError(
            f"cannot connect to {display}: {reason}",
            hint="the connection settings are invalid (libpq refused them; the server was not asked): fix "
            "DATABASE_URL's options (or the PG* environment variables: PGSERVICE, PGSERVICEFILE, PGSSLMODE, ...); "
            "retrying does not help, so the runner stopped at once",
        )
    if _SERVER_REFUSED_OPTIONS.search(reason):
        return DatabaseRefused(
            f"database {display} refused the options sent at connection start: {reason}",
            hint="check --lock-timeout, --statement-timeout and --idle-in-transaction-timeout (MIGRATION_LOCK_TIMEOUT, "
            "MIGRATION_STATEMENT_TIMEOUT, MIGRATION_IDLE_IN_TRANSACTION_TIMEOUT; in the stack migrations.lockTimeout "
            "and migrations.statementTimeout), and any options= in DATABASE_URL or PGOPTIONS; retrying does not "
            "help, so the runner stopped at once",
        )
    if _SERVER_REFUSED_LOGIN.search(reason):
        return DatabaseRefused(
            f"database {display} refused the connection: {reason}",
            hint="check POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB (or DATABASE_URL) and "
            "the server's pg_hba.conf; retrying does not help, so the runner stopped at once",
        )
    return None


REPORT_EVERY = 15.0  # seconds between "still waiting" lines while the reason stays the same


def lock_session_options(options: str) -> str:
    """The runner's own session (the migration lock and the history): only pg_catalog on its
    search_path, whatever the role, the database or the user's startup options set (a later
    `-c` wins), so its statements mean what they say."""
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
    watch: BlockerWatch,
    on_retry=None,
    optional: tuple[str, ...] = (),
    watched: bool = True,
) -> psycopg2.extensions.connection:
    """Connect, retrying with backoff until `wait_seconds` have passed; refusals fail at once.

    `on_retry(attempt, reason, delay)` is called for the first failed attempt, when the
    reason changes, and every REPORT_EVERY seconds: a minute of waiting is a few lines.
    `optional` settings are dropped, one by one, by a server that does not know them. The
    blocker `watch` (the process-wide wait callback, which also bounds connection attempts)
    looks at the lock waits of this connection only if `watched`: the migration session's."""
    # Green mode: queries wait in Python's select(), so SIGTERM is handled mid-statement.
    watch.install()
    deadline = time.monotonic() + wait_seconds
    delay = 0.25
    attempt = 0
    reported: tuple[str, float] = ("", 0.0)  # the last reason reported, and when
    # PostgreSQL 14+ notices a vanished client (SIGKILL, lost node) during a long statement
    # within a second, rolls back and frees the migration lock; older servers reject the name.
    settings = [_CLIENT_CHECK, *optional]
    encoding = "UTF8"
    while True:
        attempt += 1
        stop.check()
        watch.connect_timeout = min(CONNECT_TIMEOUT, max(1.0, deadline - time.monotonic()))
        try:
            connection = psycopg2.connect(target.dsn, options=" ".join([options, *(f"-c {s}" for s in settings)]),
                                          client_encoding=encoding)
        except psycopg2.OperationalError as exc:
            unknown = next((s for s in settings if s.split("=")[0] in str(exc)), None)
            if unknown:
                settings.remove(unknown)
                continue
            reason = target.redact(_first_line(str(exc)))
            refused = refusal(reason, target.display)
            if refused is not None:
                raise refused from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailable(
                    f"database {target.display} not reachable after {wait_seconds:g}s "
                    f"({attempt} attempts): {reason}",
                    hint="check that PostgreSQL is up and POSTGRES_HOST/PORT (or DATABASE_URL) are right; "
                    "raise --wait-for-db for slow starts",
                ) from None
            now = time.monotonic()
            if on_retry and (reason != reported[0] or now - reported[1] >= REPORT_EVERY):
                on_retry(attempt, reason, min(delay, remaining))
                reported = (reason, now)
            stop.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
            continue
        if encoding != "SQL_ASCII" and connection.info.parameter_status("server_encoding") == "SQL_ASCII":
            # A SQL_ASCII database: below. The session's encoding is set at connection start so
            # that RESET ALL between migrations keeps it.
            connection.close()
            encoding = "SQL_ASCII"
            continue
        connection.autocommit = True  # the runner issues BEGIN/COMMIT itself
        watch.connect_timeout = 5.0  # for the side connection that looks for blockers
        stop.connection = connection
        if watched:
            watch.watch(connection, lambda: _side_connection(target, encoding))
        return connection


# The files are UTF-8 and the runner talks UTF-8 to the server: a database in another encoding
# converts what it receives and refuses, with file and line (runner.characters), what it cannot
# store. A SQL_ASCII database converts nothing and holds whatever bytes it was given; there the
# session is SQL_ASCII too, so bytes pass untouched both ways, as with psql: the query is sent
# as UTF-8 and what comes back is read as UTF-8, with bytes that are not shown as U+FFFD
# (psycopg2 would otherwise refuse every non-ASCII character, comments included).
_SQL_ASCII_CODEC = "runner-sql-ascii"


def _sql_ascii_codec(name: str) -> Optional[codecs.CodecInfo]:
    if name.replace("_", "-") != _SQL_ASCII_CODEC:
        return None
    utf8 = codecs.lookup("utf-8")
    return codecs.CodecInfo(name=_SQL_ASCII_CODEC, encode=utf8.encode,
                            decode=lambda data, errors="strict": utf8.decode(data, "replace"))


codecs.register(_sql_ascii_codec)
psycopg2.extensions.encodings["SQL_ASCII"] = psycopg2.extensions.encodings["SQLASCII"] = _SQL_ASCII_CODEC


def _side_connection(target: ConnectionTarget, encoding: str):
    """A second session, only to look at pg_stat_activity while a statement waits on a lock."""
    side = psycopg2.connect(target.dsn, application_name=f"{APPLICATION_NAME}-watch",
                            options=target.options or None, client_encoding=encoding)
    side.autocommit = True
    return side


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else "unknown error"
