"""The schema_migrations table: adopt the old script's table, read and write rows.

The old script created `schema_migrations(id serial, migration_name varchar(255) unique
not null, applied_at timestamptz default now())`. It is kept as it is; the runner only
adds columns, so no row and no reader of the old columns is lost.

The table is found in the catalog, never through the search_path: a migration, a DBA or a
role setting that changes search_path (ALTER DATABASE ... SET search_path, ALTER ROLE ...)
takes effect on the next connection, and a runner that looked the table up by its bare name
would then miss it, create a second one and apply every file again. Whatever schema holds
the one table of this shape is the history; two of them stop the run. A new table goes where
PostgreSQL's built-in search_path ("$user", public) would put it, whatever search_path says.
Every statement names the table and the functions it calls with their schemas.

Every write is read back in the same round trip: a trigger or rule on the table that drops
or rewrites the row would otherwise make a migration run again on every deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import psycopg2.errors
from psycopg2 import sql

from runner.errors import HistoryConflict, TrackingFailed, UsageError

TABLE = "schema_migrations"
APPLIED = "applied"
INCOMPLETE = "incomplete"  # a no-transaction migration that started and did not finish

# Additive only: (column, definition). A NOT NULL column with a constant default is a
# metadata-only change on PostgreSQL 11+, so adoption does not rewrite the table.
ADDED_COLUMNS = (
    ("checksum", "varchar(64)"),
    ("duration_ms", "integer"),
    ("statements", "integer"),
    ("status", f"varchar(16) NOT NULL DEFAULT '{APPLIED}'"),
)


@dataclass(frozen=True)
class AppliedRow:
    name: str
    checksum: Optional[str]
    status: str
    statements: Optional[int]


def lookup(rows: dict[str, AppliedRow], file_name: str) -> Optional[AppliedRow]:
    """The row for a file; the old script's rows may name it without `.sql`."""
    row = rows.get(file_name)
    if row is None and file_name.endswith(".sql"):
        row = rows.get(file_name[: -len(".sql")])
    return row


class Tracking:
    """The tracking table of one database, addressed as schema.schema_migrations."""

    def __init__(self, schema: str):
        # Statements below run on the runner's own session with search_path = pg_catalog, pg_temp
        # (runner.connection), or after record_sql's SET LOCAL: only the table needs its schema.
        self.schema = schema
        self.table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLE))
        self.regclass = '"{}"."{}"'.format(schema.replace('"', '""'), TABLE)
        self._record: Optional[str] = None
        self._landed: Optional[str] = None

    @classmethod
    def find(cls, cursor) -> Optional["Tracking"]:
        """The runner's table (the one with a migration_name column), in whatever schema it is."""
        schemas = [schema for schema, ours in _candidates(cursor) if ours]
        if len(schemas) > 1:
            tables = " and ".join(f"{schema}.{TABLE}" for schema in schemas)
            raise HistoryConflict(
                f"found two migration histories, {tables}; the runner keeps one per database and will not "
                "guess which is this app's, so nothing was applied",
                hint="compare them (SELECT migration_name, applied_at FROM <schema>.schema_migrations), keep the "
                "one the deploys wrote, and drop or rename the other (ALTER TABLE ... RENAME TO ...)",
            )
        return cls(schemas[0]) if schemas else None

    @classmethod
    def ensure(cls, cursor) -> tuple["Tracking", list[str]]:
        """Find or create the table; add the columns an adopted one lacks (returned)."""
        tracking = cls.find(cursor)
        if tracking is None:
            schema = _home_schema(cursor)
            if schema in {s for s, _ in _candidates(cursor)}:
                raise UsageError(
                    f"table {schema}.{TABLE} exists but has no migration_name column, so it "
                    "belongs to another migration tool",
                    hint="point the runner at another database or move that table away; it was not changed",
                )
            tracking = cls(schema)
            cursor.execute(
                sql.SQL(
                    "CREATE TABLE {} (id serial PRIMARY KEY, migration_name varchar(255) UNIQUE NOT NULL, "
                    "applied_at timestamptz DEFAULT now()); "
                ).format(tracking.table)
                + tracking._add_columns(ADDED_COLUMNS)
            )
            return tracking, []
        present = tracking.columns(cursor)
        missing = [(name, ddl) for name, ddl in ADDED_COLUMNS if name not in present]
        if missing:
            try:
                cursor.execute(tracking._add_columns(missing))
            except psycopg2.errors.InsufficientPrivilege:
                cursor.execute("SELECT tableowner, current_user FROM pg_tables "
                               "WHERE schemaname = %s AND tablename = %s", (tracking.schema, TABLE))
                owner, user = cursor.fetchone()
                raise UsageError(
                    f"{tracking.schema}.{TABLE} (the old script's table) is owned by {owner}, and the runner, "
                    f"logged in as {user}, must add columns to it ({', '.join(n for n, _ in missing)}); nothing "
                    "was changed",
                    hint=f"log in as {owner} (POSTGRES_USER), or once, as {owner} or a superuser: "
                    f"ALTER TABLE {tracking.schema}.{TABLE} OWNER TO {user}",
                ) from None
        return tracking, [name for name, _ in missing]

    def _add_columns(self, columns) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ").format(self.table) + sql.SQL(", ").join(
            sql.SQL(f"ADD COLUMN IF NOT EXISTS {name} {ddl}") for name, ddl in columns
        )

    def columns(self, cursor) -> set[str]:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped",
            (self.regclass,),
        )
        return {row[0] for row in cursor.fetchall()}

    def load(self, cursor, columns: Optional[set[str]] = None) -> dict[str, AppliedRow]:
        """Every row, keyed by migration_name. One query, whatever the history's length.

        Works on the old script's table too (no checksum/status columns yet), changing nothing:
        `status` and `apply --dry-run` read it as it is.
        """
        present = self.columns(cursor) if columns is None else columns
        wanted = ("checksum", "status", "statements")
        select = [sql.Identifier(c) if c in present else sql.SQL("NULL") for c in wanted]
        cursor.execute(
            sql.SQL("SELECT migration_name, {} FROM {}").format(sql.SQL(", ").join(select), self.table)
        )
        return {
            name: AppliedRow(name, checksum, status or APPLIED, count)
            for name, checksum, status, count in cursor.fetchall()
        }

    def fill_checksums(self, cursor, checksums: dict[str, str]) -> None:
        """Record checksums for adopted rows that have none (row name -> checksum). Not read back:
        a checksum that does not land is computed again on the next run."""
        cursor.execute(
            sql.SQL(
                "UPDATE {} t SET checksum = v.checksum FROM unnest(%s::text[], %s::text[]) AS v(name, checksum) "
                "WHERE t.migration_name = v.name AND t.checksum IS NULL"
            ).format(self.table),
            (list(checksums), list(checksums.values())),
        )

    def update_checksum(self, cursor, name: str, value: str) -> None:
        self._write(cursor, sql.SQL("UPDATE {} SET checksum = %s WHERE migration_name = %s"), (value, name),
                    name, {"checksum": value}, f"the new checksum of {name}")

    def record_sql(self, cursor, name: str, checksum: str, statements: int, also: str = "",
                   started: str = "now()") -> str:
        """The tracking row, written as the login role whatever role the migration switched to,
        with only pg_catalog on the search_path whatever the migration set (its own functions or
        operators named now() or - must not decide the row); its duration is the transaction's
        age, measured by the server from `started` (now(): the transaction's start; a file that
        shares its query with others has its own start, see runner.executor.FILE_STARTED), also
        its applied_at. `also`: more calls for the SELECT that sets the search_path
        (the executor's statement marker: one statement fewer per migration). Composed from
        parts made once per run, the values quoted here (standard_conforming_strings is on:
        runner.executor refuses to run otherwise): composing costs more than a small migration."""
        if self._record is None:
            self._record = sql.SQL(
                "INSERT INTO {} (migration_name, checksum, duration_ms, statements, status, applied_at) VALUES ("
                "\x00, \x00, (extract(epoch FROM clock_timestamp() - \x01) * 1000)::int, \x00, '" + APPLIED
                + "', \x01)").format(self.table).as_string(cursor).split("\x00")
        head, first, second, tail = self._record
        return ("SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; SELECT pg_catalog.set_config('search_path', "
                f"'pg_catalog, pg_temp', true){also}; "
                f"{head}{literal(name)}{first}{literal(checksum)}{second.replace(chr(1), started)}{int(statements)}"
                f"{tail.replace(chr(1), started)}")

    def landed_sql(self, cursor, name: str, checksum: str) -> str:
        """An expression that says whether the row of record_sql is there as written: a bare EXISTS
        (inside a scalar subquery the server plans it twice, about 20 us per file)."""
        if self._landed is None:
            self._landed = sql.SQL(
                "EXISTS (SELECT FROM {} WHERE migration_name = \x00 AND checksum = \x00 AND status = '"
                + APPLIED + "')").format(self.table).as_string(cursor).split("\x00")
        first, second, third = self._landed
        return f"{first}{literal(name)}{second}{literal(checksum)}{third}"

    def applied_rows_sql(self, cursor, names: list[str]) -> str:
        """A query: (name, duration_ms) of the rows among `names` recorded as applied."""
        return cursor.mogrify(
            sql.SQL("SELECT migration_name, duration_ms FROM {} WHERE migration_name = ANY(%s) AND status = %s")
            .format(self.table), (names, APPLIED)).decode()

    def record_applied(self, cursor, name: str, checksum: str, statements: Optional[int]) -> None:
        """A row for a file that did not run here (`baseline`): applied before the runner knew it."""
        self._write(cursor, sql.SQL(
            "INSERT INTO {} (migration_name, checksum, duration_ms, statements, status) VALUES (%s, %s, 0, %s, %s)"
        ), (name, checksum, statements, APPLIED), name, {"status": APPLIED, "checksum": checksum},
            f"the row recording {name} as applied")

    def rename(self, cursor, old: str, new: str) -> None:
        self._write(cursor, sql.SQL("UPDATE {} SET migration_name = %s WHERE migration_name = %s"), (new, old),
                    new, {}, f"the rename of {old} to {new}")

    def start_incomplete(self, cursor, name: str, checksum: str) -> None:
        self._write(cursor, sql.SQL(
            "INSERT INTO {} (migration_name, checksum, statements, status) VALUES (%s, %s, 0, %s)"
        ), (name, checksum, INCOMPLETE), name, {"status": INCOMPLETE}, f"the row marking {name} as started")

    def mark_progress(self, cursor, name: str, done: int) -> None:
        self._write(cursor, sql.SQL("UPDATE {} SET statements = %s WHERE migration_name = %s"), (done, name),
                    name, {"statements": done}, f"the progress of {name}")

    def mark_applied(self, cursor, name: str, checksum: str, duration_ms: Optional[int], statements: int) -> None:
        self._write(cursor, sql.SQL(
            "UPDATE {} SET status = %s, checksum = %s, duration_ms = %s, statements = %s, "
            "applied_at = now() WHERE migration_name = %s"
        ), (APPLIED, checksum, duration_ms, statements, name), name,
            {"status": APPLIED, "checksum": checksum, "statements": statements}, f"the row marking {name} as applied")

    def forget(self, cursor, name: str) -> None:
        self._write(cursor, sql.SQL("DELETE FROM {} WHERE migration_name = %s"), (name,), name, None,
                    f"the removal of {name}'s row")

    def _write(self, cursor, statement: sql.SQL, params: tuple, name: str, expected: Optional[dict],
               what: str) -> None:
        """Write, then read the row back in the same round trip; `expected` None: it must be gone.

        Runs on the runner's own session (never the migrations'), so no migration's SET ROLE,
        search_path or open transaction is in effect."""
        cursor.execute(
            statement.format(self.table)
            + sql.SQL("; SELECT status, checksum, statements FROM {} WHERE migration_name = %s").format(self.table),
            params + (name,),
        )
        found = cursor.fetchall()
        if expected is None:
            landed = not found
        else:
            landed = len(found) == 1 and all(
                dict(zip(("status", "checksum", "statements"), found[0]))[k] == v for k, v in expected.items())
        if not landed:
            raise tracking_not_landed(self, what)


def literal(value: str) -> str:
    """A string literal, as PostgreSQL reads it with standard_conforming_strings on."""
    return "'" + value.replace("'", "''") + "'"


def tracking_not_landed(tracking: "Tracking", what: str, outcome: str = "") -> TrackingFailed:
    return TrackingFailed(
        f"{what} in {tracking.schema}.{TABLE} did not land: the row read back is not what was written, so a "
        f"trigger or rule on the table dropped or rewrote it{'; ' + outcome if outcome else ''}",
        hint=f"look at the table's triggers and rules (\\d {tracking.schema}.{TABLE} in psql) and remove the one "
        "that rewrites its rows; the runner relies on its rows to apply each migration exactly once",
    )


def _candidates(cursor) -> list[tuple[str, bool]]:
    """(schema, is the runner's) for every relation named schema_migrations, in any schema. One
    history per database, as there is one migration lock per database: two apps sharing a
    database in two schemas are not supported."""
    cursor.execute(
        "SELECT n.nspname, c.relkind IN ('r', 'p', 'v', 'f') AND EXISTS (SELECT FROM pg_attribute a "
        "WHERE a.attrelid = c.oid AND a.attname = 'migration_name' AND NOT a.attisdropped) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = %s AND n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> 'information_schema' ORDER BY 1",
        (TABLE,),
    )
    return cursor.fetchall()


def _home_schema(cursor) -> str:
    """Where PostgreSQL's built-in search_path ("$user", public) creates a table: the login role's
    own schema if it has one it may use, else public; whatever search_path is set to."""
    cursor.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname IN (current_user, 'public') "
        "AND has_schema_privilege(oid, 'USAGE') ORDER BY nspname = 'public' LIMIT 1"
    )
    row = cursor.fetchone()
    if row is None:
        raise UsageError(
            "no schema to create schema_migrations in: neither public nor a schema named after the login role exists",
            hint="create one, e.g. CREATE SCHEMA public, or log in as a role that owns a schema of its name",
        )
    return row[0]


# What DISCARD ALL resets, in its order, but allowed inside a transaction block and after COMMIT
# in one query (DISCARD ALL refuses both), and without its pg_advisory_unlock_all(): a migration
# starts as the login role with the session's defaults and no temporary table, prepared
# statement, LISTEN, cursor WITH HOLD or cached currval of a previous one.
RESET_SESSION = ("CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *; "
                 "DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES")


def load_if_present(cursor) -> dict[str, AppliedRow]:
    tracking = Tracking.find(cursor)
    return tracking.load(cursor) if tracking else {}
