"""The schema_migrations table: adopt the old script's table, read and write rows.

The old script created `schema_migrations(id serial, migration_name varchar(255) unique
not null, applied_at timestamptz default now())`. It is kept as it is; the runner only
adds columns, so no row and no reader of the old columns is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from runner.errors import UsageError

TABLE = "schema_migrations"
APPLIED = "applied"
INCOMPLETE = "incomplete"  # a no-transaction migration that started and did not finish

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id serial PRIMARY KEY,
    migration_name varchar(255) UNIQUE NOT NULL,
    applied_at timestamptz DEFAULT now()
)"""

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


def table_exists(cursor) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
    return cursor.fetchone()[0]


def ensure_table(cursor) -> list[str]:
    """Create the table, or add the columns an adopted one lacks. Returns the columns added
    to an existing table."""
    if not table_exists(cursor):
        cursor.execute(CREATE_TABLE + ";\n" + _add_columns_sql(ADDED_COLUMNS))
        return []
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attnum > 0 AND NOT attisdropped",
        (TABLE,),
    )
    present = {row[0] for row in cursor.fetchall()}
    if "migration_name" not in present:
        raise UsageError(
            f"table {TABLE} exists but has no migration_name column, so it belongs to another "
            "migration tool",
            hint=f"migrate it by hand or point the runner at another database; {TABLE} was not changed",
        )
    missing = [(name, ddl) for name, ddl in ADDED_COLUMNS if name not in present]
    if missing:
        cursor.execute(_add_columns_sql(missing))
    return [name for name, _ in missing]


def _add_columns_sql(columns) -> str:
    return f"ALTER TABLE {TABLE} " + ", ".join(
        f"ADD COLUMN IF NOT EXISTS {name} {ddl}" for name, ddl in columns
    )


def load(cursor) -> dict[str, AppliedRow]:
    """Every row, keyed by migration_name. One query, whatever the history's length."""
    if not table_exists(cursor):
        return {}
    cursor.execute(
        f"SELECT migration_name, checksum, status, statements FROM {TABLE} ORDER BY migration_name"
    )
    return {name: AppliedRow(name, checksum, status, statements) for name, checksum, status, statements in cursor.fetchall()}


def lookup(rows: dict[str, AppliedRow], file_name: str) -> Optional[AppliedRow]:
    """The row for a file; the old script's rows may name it without `.sql`."""
    row = rows.get(file_name)
    if row is None and file_name.endswith(".sql"):
        row = rows.get(file_name[: -len(".sql")])
    return row


def fill_checksums(cursor, checksums: dict[str, str]) -> None:
    """Record checksums for adopted rows that have none (row name -> checksum)."""
    for name, value in checksums.items():
        cursor.execute(
            f"UPDATE {TABLE} SET checksum = %s WHERE migration_name = %s AND checksum IS NULL",
            (value, name),
        )


def update_checksum(cursor, name: str, value: str) -> None:
    cursor.execute(f"UPDATE {TABLE} SET checksum = %s WHERE migration_name = %s", (value, name))


RECORD_AND_COMMIT = (
    f"INSERT INTO {TABLE} (migration_name, checksum, duration_ms, statements, status) "
    "VALUES (%s, %s, %s, %s, %s); COMMIT; RESET ALL"
)


def start_incomplete(cursor, name: str, checksum: str) -> None:
    cursor.execute(
        f"INSERT INTO {TABLE} (migration_name, checksum, statements, status) VALUES (%s, %s, %s, %s)",
        (name, checksum, 0, INCOMPLETE),
    )


def mark_progress(cursor, name: str, done: int) -> None:
    cursor.execute(f"UPDATE {TABLE} SET statements = %s WHERE migration_name = %s", (done, name))


def mark_applied(cursor, name: str, checksum: str, duration_ms: int, statements: int) -> None:
    cursor.execute(
        f"UPDATE {TABLE} SET status = %s, checksum = %s, duration_ms = %s, statements = %s, "
        "applied_at = now() WHERE migration_name = %s",
        (APPLIED, checksum, duration_ms, statements, name),
    )


def forget(cursor, name: str) -> None:
    cursor.execute(f"DELETE FROM {TABLE} WHERE migration_name = %s", (name,))
