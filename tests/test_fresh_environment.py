"""A fresh environment from the old flow's database: snapshot, new database, later migrations.

The database is built by the app's own Jobs (tests/old_flow.py: its migrate.py, db-setup and
update-migration-tracking, from its manifests, over its real migration folders).
"""

from __future__ import annotations

import subprocess

import pytest

from runner.scratch import _binaries
from tests import old_flow
from tests.pg import ROOT, write

APP_DIRS = ":".join(str(folder) for folder in old_flow.FOLDERS)  # the Job's order: init-db, then supabase
COMMITTED = ROOT / "snapshots" / "ideaforge-old-flow.sql"
NEW = {"20251210000000_add_products_archived_at.sql": "ALTER TABLE products ADD COLUMN archived_at timestamptz;\n"}


@pytest.fixture
def fresh(pg_server):
    """An empty database on a server that has the extensions the app's schema names."""
    database = pg_server.create_database()
    database.execute(f"ALTER DATABASE \"{database.name}\" SET extension_control_path = %s",
                     (f"{old_flow.STANDIN_SHARE}:$system",))
    yield database
    pg_server.drop_database(database.name)


def schema(dsn: str) -> str:
    """The schema as pg_dump prints it, without the history table (the runner adds columns to it)."""
    out = subprocess.run([str(_binaries() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
                          "--restrict-key=test", "--exclude-table=*schema_migrations*", dsn],
                         capture_output=True, text=True, check=True).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("-- Dumped"))


def test_the_old_migrate_py_fails_on_an_empty_database_and_records_nothing(old_flow_db):
    first = old_flow_db.runs[0]
    assert first.code == 1
    # Its first file fails (schema "auth" does not exist), which it takes for "already applied": it
    # rolls the file back and means to record it, but with SQLAlchemy 2.0.36 the rollback ended the
    # Job's transaction, so the record fails too.
    assert "migration_skipped" in first.log and "migration=20251121222242_create_enterprise_platform_schema.sql" in first.log
    assert "migration_mark_failed" in first.log and "Can't operate on closed transaction" in first.log
    assert "unterminated dollar-quoted string" in first.log  # its `;` split of a DO $$ body stops the run


def test_the_old_flow_records_every_file_whether_or_not_it_ran(old_flow_db):
    recorded = [r[0] for r in old_flow_db.query("SELECT migration_name FROM schema_migrations ORDER BY 1")]
    assert recorded == sorted(old_flow.migration_files())
    assert old_flow_db.runs[-1].code == 0  # the next deploy's migrate.py: everything recorded, nothing runs


def test_the_app_migrations_cannot_build_an_empty_database(fresh, tmp_path):
    result = fresh.run("apply", "--dir", APP_DIRS)
    assert result.code == 1
    assert "20251121222242_create_enterprise_platform_schema.sql failed" in result.err
    assert 'schema "auth" does not exist' in result.err


def test_a_new_database_from_the_old_flows_snapshot_applies_a_new_migration_normally(old_flow_db, fresh, tmp_path):
    taken = tmp_path / "snapshot.sql"
    result = fresh.run("snapshot", str(taken), env={"DATABASE_URL": old_flow_db.dsn})
    assert result.code == 0, result.output
    new = write(tmp_path / "new", NEW)

    result = fresh.run("apply", "--dir", f"{APP_DIRS}:{new}", "--snapshot", str(taken))

    assert result.code == 0, result.output
    assert "applied 1 migration; 18 already applied" in result.out
    assert fresh.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'products' "
                       "AND column_name = 'archived_at'") == [(1,)]
    old_flow_db.query(NEW["20251210000000_add_products_archived_at.sql"])
    try:
        assert schema(fresh.dsn) == schema(old_flow_db.dsn)
    finally:
        old_flow_db.query("ALTER TABLE products DROP COLUMN archived_at")


def test_the_committed_snapshot_is_the_old_flows_schema_and_history(old_flow_db, fresh):
    result = fresh.run("apply", "--dir", APP_DIRS, "--snapshot", str(COMMITTED))
    assert result.code == 0, result.output
    assert "nothing to apply; 18 migrations already applied" in result.out
    assert schema(fresh.dsn) == schema(old_flow_db.dsn)
