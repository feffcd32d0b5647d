"""Schema snapshots: taken from a database with its history, loaded only into an empty one."""

from __future__ import annotations

import os
import stat

import pytest

from runner import snapshot
from tests.pg import write

HISTORY = {
    "1_accounts.sql": "CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);",
    # Data: if the snapshot's history were not honoured, this would run again on the new database.
    "2_seed_admin.sql": "INSERT INTO accounts VALUES (1, 'admin@example.com');",
}
LATER = {"3_accounts_name.sql": "ALTER TABLE accounts ADD COLUMN name text;"}


@pytest.fixture
def taken(db, pg_server, tmp_path):
    """A snapshot of a database where the runner applied HISTORY, and a second, empty database."""
    migrations = write(tmp_path / "migrations", HISTORY)
    assert db.run("apply", "--dir", str(migrations)).code == 0
    path = tmp_path / "snapshot.sql"
    result = db.run("snapshot", str(path))
    assert result.code == 0, result.output
    fresh = pg_server.create_database()
    yield path, migrations, fresh
    pg_server.drop_database(fresh.name)


def test_snapshot_builds_an_empty_database_and_later_migrations_apply(taken):
    path, migrations, fresh = taken
    write(migrations, LATER)
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 0, result.output
    assert "applied 1 migration; 2 already applied" in result.out
    assert fresh.query("SELECT count(*) FROM accounts") == [(0,)]  # the snapshot is schema, 2_seed_admin did not run
    assert fresh.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts' "
                       "ORDER BY ordinal_position") == [("id",), ("email",), ("name",)]
    assert fresh.applied() == ["1_accounts.sql", "2_seed_admin.sql", "3_accounts_name.sql"]


def test_snapshot_is_ignored_once_the_database_has_a_history(taken):
    path, migrations, fresh = taken
    assert fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path)).code == 0
    fresh.execute("DROP TABLE accounts")
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 0, result.output
    assert "not used: the database has a migration history" in result.out
    assert "accounts" not in fresh.tables()


def test_snapshot_is_refused_on_a_database_with_objects_but_no_history(taken):
    path, migrations, fresh = taken
    fresh.execute("CREATE TABLE hand_made (id int)")
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 2
    assert "not empty (table hand_made)" in result.err and "baseline" in result.err
    assert fresh.tables() == {"hand_made"}


def test_an_extension_alone_does_not_make_a_database_non_empty(taken):
    path, migrations, fresh = taken
    fresh.execute("CREATE EXTENSION vector")  # as a managed server may pre-install them
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 0, result.output
    assert "accounts" in fresh.tables()


def test_a_failing_snapshot_leaves_the_database_empty_and_names_what_failed(taken):
    path, migrations, fresh = taken
    text = path.read_text()
    path.write_text(text.replace("CREATE TABLE public.accounts", "CREATE POLICY p ON public.nowhere TO nobody_here "
                                 "USING (true);\nCREATE TABLE public.accounts"))
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 1
    assert "snapshot snapshot.sql failed at statement" in result.err
    assert 'role "nobody_here" does not exist' in result.err
    assert "roles are not part of a snapshot" in result.err
    assert "the snapshot was rolled back; the database is still empty" in result.err
    assert fresh.tables() == set()


def test_a_snapshot_without_history_is_refused_and_changes_nothing(taken, tmp_path):
    path, migrations, fresh = taken
    schema_only = tmp_path / "schema.sql"
    schema_only.write_text(path.read_text().split("INSERT INTO")[0])
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(schema_only))
    assert result.code == 2
    assert "holds no migration history" in result.err
    assert fresh.tables() == set()


def test_a_snapshot_with_copy_rows_is_refused_before_anything_runs(taken):
    path, migrations, fresh = taken
    path.write_text(path.read_text() + "\nCOPY public.accounts (id, email) FROM stdin;\n1\tx\n\\.\n")
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 2
    assert "COPY ... FROM stdin, which only psql can load" in result.err
    assert fresh.tables() == set()


def test_snapshot_of_a_database_without_history_is_refused(db, tmp_path):
    db.execute("CREATE TABLE t (id int)")
    result = db.run("snapshot", str(tmp_path / "s.sql"))
    assert result.code == 2
    assert "no migration history" in result.err
    assert not (tmp_path / "s.sql").exists()


def test_snapshot_needs_a_pg_dump_as_new_as_the_server(db, tmp_path):
    write(tmp_path / "m", HISTORY)
    assert db.run("apply", "--dir", str(tmp_path / "m")).code == 0
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(old.stat().st_mode | stat.S_IEXEC)
    result = db.run("snapshot", str(tmp_path / "s.sql"), "--pg-dump", str(old))
    assert result.code == 2
    assert "needs pg_dump from PostgreSQL" in result.err and "PostgreSQL 9" in result.err


def test_pg_dump_gets_the_password_in_its_environment_not_its_command_line():
    env, conninfo = snapshot.pg_dump_env_and_dsn("host=db port=5432 user=app password=s3cr%t dbname=app")
    assert env == {"PGPASSWORD": "s3cr%t"}
    assert "s3cr" not in conninfo and "host=db" in conninfo


def test_snapshot_holds_the_history_rows_and_no_psql_commands(taken):
    path, _, _ = taken
    text = path.read_text()
    assert text.startswith(snapshot.MARKER)
    assert "'1_accounts.sql'" in text and "'2_seed_admin.sql'" in text
    assert not [line for line in text.splitlines() if line.startswith("\\")]
    assert os.path.getsize(path) < 100_000
