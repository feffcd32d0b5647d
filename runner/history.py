"""The schema_migrations table: adopt the old script's table, read and write rows.

The old script created `schema_migrations(id serial, migration_name varchar(255) unique
not null, applied_at timestamptz default now())`. It is kept as it is; the runner only
adds columns, so no row and no reader of the old columns is lost.

The table is found through the connection's search_path once, then always addressed by
its schema-qualified name: a migration that changes search_path must not make the
runner lose its own table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import psycopg2.errors
from psycopg2 import sql

from runner.errors import UsageError

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
        self.schema = schema
        self.table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLE))
        self._record: Optional[str] = None

    @classmethod
    def find(cls, cursor) -> Optional["Tracking"]:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(%s)",
            (TABLE,),
        )
        row = cursor.fetchone()
        return cls(row[0]) if row else None

    @classmethod
    def ensure(cls, cursor) -> tuple["Tracking", list[str]]:
        """Find or create the table; add the columns an adopted one lacks (returned)."""
        tracking = cls.find(cursor)
        if tracking is None:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
            if schema is None:
                raise UsageError(
                    "no schema to create schema_migrations in: search_path names no existing schema",
                    hint="fix the role's search_path, e.g. ALTER ROLE ... SET search_path = public",
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
        if "migration_name" not in present:
            raise UsageError(
                f"table {tracking.schema}.{TABLE} exists but has no migration_name column, so it "
                "belongs to another migration tool",
                hint="point the runner at another database or move that table away; it was not changed",
            )
        missing = [(name, ddl) for name, ddl in ADDED_COLUMNS if name not in present]
        if missing:
            try:
                cursor.execute(tracking._add_columns(missing))
            except psycopg2.errors.InsufficientPrivilege:
                cursor.execute("SELECT tableowner, current_user FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                               (tracking.schema, TABLE))
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
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (f'"{self.schema}"."{TABLE}"',),
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
        """Record checksums for adopted rows that have none (row name -> checksum)."""
        cursor.execute(
            sql.SQL(
                "UPDATE {} t SET checksum = v.checksum FROM unnest(%s::text[], %s::text[]) AS v(name, checksum) "
                "WHERE t.migration_name = v.name AND t.checksum IS NULL"
            ).format(self.table),
            (list(checksums), list(checksums.values())),
        )

    def update_checksum(self, cursor, name: str, value: str) -> None:
        cursor.execute(sql.SQL("UPDATE {} SET checksum = %s WHERE migration_name = %s").format(self.table), (value, name))

    def record_sql(self, cursor, name: str, checksum: str, statements: int) -> str:
        """The tracking row, written as the login role whatever role the migration switched to;
        its duration is the transaction's age, measured by the server."""
        if self._record is None:  # composed once: composing costs more than the rest of a small migration
            self._record = sql.SQL(
                "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; "
                "INSERT INTO {} (migration_name, checksum, duration_ms, statements, status) "
                "VALUES (%s, %s, (extract(epoch FROM clock_timestamp() - now()) * 1000)::int, %s, %s)"
            ).format(self.table).as_string(cursor)
        return cursor.mogrify(self._record, (name, checksum, statements, APPLIED)).decode()

    def record_applied(self, cursor, name: str, checksum: str, statements: Optional[int]) -> None:
        """A row for a file that did not run here (`baseline`): applied before the runner knew it."""
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (migration_name, checksum, duration_ms, statements, status) VALUES (%s, %s, 0, %s, %s)"
            ).format(self.table),
            (name, checksum, statements, APPLIED),
        )

    def rename(self, cursor, old: str, new: str) -> None:
        cursor.execute(sql.SQL("UPDATE {} SET migration_name = %s WHERE migration_name = %s").format(self.table), (new, old))

    def start_incomplete(self, cursor, name: str, checksum: str) -> None:
        _as_login_role(cursor, sql.SQL(
            "INSERT INTO {} (migration_name, checksum, statements, status) VALUES (%s, %s, 0, %s)"
        ).format(self.table), (name, checksum, INCOMPLETE))

    def mark_progress(self, cursor, name: str, done: int) -> None:
        _as_login_role(cursor, sql.SQL("UPDATE {} SET statements = %s WHERE migration_name = %s").format(self.table),
                       (done, name))

    def mark_applied(self, cursor, name: str, checksum: str, duration_ms: Optional[int], statements: int) -> None:
        _as_login_role(cursor, sql.SQL(
            "UPDATE {} SET status = %s, checksum = %s, duration_ms = %s, statements = %s, "
            "applied_at = now() WHERE migration_name = %s"
        ).format(self.table), (APPLIED, checksum, duration_ms, statements, name))

    def forget(self, cursor, name: str) -> None:
        cursor.execute(sql.SQL("DELETE FROM {} WHERE migration_name = %s").format(self.table), (name,))


def _as_login_role(cursor, statement: sql.Composable, params: tuple) -> None:
    """One write in its own transaction, as the login role, leaving the session's role alone:
    the statements of a no-transaction migration that ran SET ROLE keep running as that role."""
    cursor.execute(
        sql.SQL("BEGIN; SET LOCAL SESSION AUTHORIZATION DEFAULT; SET LOCAL ROLE NONE; {}; COMMIT").format(statement),
        params,
    )


RESET_SESSION = "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL"


def load_if_present(cursor) -> dict[str, AppliedRow]:
    tracking = Tracking.find(cursor)
    return tracking.load(cursor) if tracking else {}
