"""Schema snapshots: taken from a database with its history, loaded only into an empty one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runner import snapshot
from runner.scratch import _binaries
from tests.pg import Server, write

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


# The app's live server is pgvector:pg15; the pg_dump at hand is often newer (the wheel's is 18).
PG15 = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def pg15_server():
    if not (PG15 / "postgres").exists():
        pytest.skip("needs Debian's PostgreSQL 15 server (postgresql-15; .ci/run installs it)")
    server = Server(binaries=PG15)
    yield server
    server.close()


def test_a_snapshot_by_a_newer_pg_dump_loads_into_the_server_version_it_came_from(pg15_server, tmp_path):
    live = pg15_server.create_database()
    migrations = write(tmp_path / "migrations", HISTORY)
    assert live.run("apply", "--dir", str(migrations)).code == 0
    path = tmp_path / "snapshot.sql"
    taken = live.run("snapshot", str(path), "--pg-dump", str(_binaries() / "pg_dump"))
    assert taken.code == 0, taken.output
    assert "SET transaction_timeout = 0;" in path.read_text()  # pg_dump 17+ writes it for every server
    fresh = pg15_server.create_database()

    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))

    assert result.code == 0, result.output
    assert "transaction_timeout" in result.out and "this server has no such setting" in result.out
    assert fresh.applied() == ["1_accounts.sql", "2_seed_admin.sql"] and "accounts" in fresh.tables()


def test_a_snapshot_loads_as_the_database_owner_beside_an_extension_the_server_admin_installed(taken):
    path, migrations, fresh = taken
    text = path.read_text()
    path.write_text(text.replace("CREATE TABLE public.accounts", "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA "
                                 "public;\nCOMMENT ON EXTENSION vector IS 'vector data type and ivfflat and hnsw "
                                 "access methods';\nCREATE TABLE public.accounts"))  # as pg_dump writes them
    owner = f"{fresh.name}_app"
    fresh.execute(f'CREATE ROLE "{owner}" LOGIN')
    fresh.execute(f'ALTER DATABASE "{fresh.name}" OWNER TO "{owner}"')
    fresh.execute("CREATE EXTENSION vector")  # a managed server's admin, not the app's role, installs extensions
    try:
        result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path),
                           env={"DATABASE_URL": fresh.dsn.replace("postgres@", f"{owner}@")})

        assert result.code == 0, result.output
        assert fresh.applied() == ["1_accounts.sql", "2_seed_admin.sql"]
    finally:
        fresh.execute(f'REASSIGN OWNED BY "{owner}" TO CURRENT_USER')
        fresh.execute(f'ALTER DATABASE "{fresh.name}" OWNER TO CURRENT_USER')
        fresh.execute(f'DROP ROLE "{owner}"')


def test_an_unknown_setting_is_not_blamed_on_missing_roles(taken):
    path, migrations, fresh = taken
    path.write_text(path.read_text().replace("CREATE TABLE public.accounts", "SET no_such.thing TO DEFAULT;\n"
                                             "SET enable_no_such_planner = on;\nCREATE TABLE public.accounts"))
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 1
    assert 'unrecognized configuration parameter "enable_no_such_planner"' in result.err
    assert "roles are not part of a snapshot" not in result.err
    assert fresh.tables() == set()


def test_two_runners_on_one_empty_database_load_the_snapshot_once(taken):
    path, migrations, fresh = taken
    write(migrations, LATER)
    runs = [fresh.spawn("apply", "--dir", str(migrations), "--snapshot", str(path)) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    texts = [out for out, _ in outputs]
    assert sum("loaded snapshot snapshot.sql into the empty database" in t for t in texts) == 1, texts
    assert sum("not used: the database has a migration history" in t for t in texts) == 1, texts
    assert fresh.applied() == ["1_accounts.sql", "2_seed_admin.sql", "3_accounts_name.sql"]


def test_a_snapshot_whose_history_does_not_fit_the_files_is_not_loaded(taken):
    path, migrations, fresh = taken
    (migrations / "1_accounts.sql").write_text("CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);")
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 3
    assert "applied migrations changed since they ran: 1_accounts.sql; nothing was applied" in result.err
    assert "snapshot snapshot.sql not loaded" in result.out
    assert fresh.tables() == set()  # as it was: the next run, with the files fixed, loads it


def test_a_database_with_only_an_empty_schema_is_refused_with_the_way_out(taken):
    path, migrations, fresh = taken
    fresh.execute("CREATE SCHEMA leftover")
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 2
    assert "holds no table, view, function or type, only empty schemas (leftover)" in result.err
    assert "DROP SCHEMA leftover" in result.err
    assert "baseline" not in result.err  # recording the history on an empty schema would skip every migration
    assert fresh.tables() == set()


def test_a_snapshot_leaves_out_subscriptions_and_the_passwords_in_their_connection(db, tmp_path):
    write(tmp_path / "m", HISTORY)
    assert db.run("apply", "--dir", str(tmp_path / "m")).code == 0
    db.execute("CREATE SUBSCRIPTION live_copy CONNECTION 'host=db.example user=repl password=Repl1cat10n' "
               "PUBLICATION p WITH (connect = false, slot_name = NONE)")
    try:
        result = db.run("snapshot", str(tmp_path / "s.sql"))
    finally:
        db.execute("DROP SUBSCRIPTION live_copy")
    assert result.code == 0, result.output
    text = (tmp_path / "s.sql").read_text()
    assert "Repl1cat10n" not in text and "SUBSCRIPTION" not in text  # it is committed and shipped in a ConfigMap


def test_taking_a_snapshot_with_user_mappings_warns_that_their_options_are_in_it(db, tmp_path):
    write(tmp_path / "m", HISTORY)
    assert db.run("apply", "--dir", str(tmp_path / "m")).code == 0
    db.execute("CREATE EXTENSION postgres_fdw; CREATE SERVER live FOREIGN DATA WRAPPER postgres_fdw "
               "OPTIONS (host 'db.example'); CREATE USER MAPPING FOR CURRENT_USER SERVER live "
               "OPTIONS (user 'reader', password 'F0reignPass')")
    result = db.run("snapshot", str(tmp_path / "s.sql"))
    assert result.code == 0, result.output
    assert "WARNING: the snapshot holds user mappings (CREATE USER MAPPING), whose options may hold passwords" \
        in result.out


def test_a_snapshot_of_a_latin1_database_is_written_in_utf8_and_loads_into_one(pg_server, tmp_path):
    live, fresh = pg_server.create_database("LATIN1"), pg_server.create_database("LATIN1")
    try:
        migrations = write(tmp_path / "m", {"1_t.sql": "CREATE TABLE t (id int);\nCOMMENT ON TABLE t IS 'café';\n"})
        assert live.run("apply", "--dir", str(migrations)).code == 0
        taken = live.run("snapshot", str(tmp_path / "s.sql"))
        assert taken.code == 0, taken.output
        assert "COMMENT ON TABLE public.t IS 'café';" in (tmp_path / "s.sql").read_text(encoding="utf-8")

        result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(tmp_path / "s.sql"))

        assert result.code == 0, result.output
        assert fresh.query("SELECT obj_description('t'::regclass)") == [("café",)]
    finally:
        pg_server.drop_database(live.name)
        pg_server.drop_database(fresh.name)


def test_a_sql_ascii_database_holding_latin1_bytes_is_refused_clearly(pg_server, tmp_path):
    live = pg_server.create_database("SQL_ASCII")
    try:
        write(tmp_path / "m", {"1_t.sql": "CREATE TABLE t (id int);"})
        assert live.run("apply", "--dir", str(tmp_path / "m")).code == 0
        with live.connect() as connection, connection.cursor() as cursor:
            cursor.execute(b"COMMENT ON TABLE t IS 'caf\xe9'")  # an old client's LATIN1, stored as it came
        result = live.run("snapshot", str(tmp_path / "s.sql"))
        assert result.code == 2, result.output
        assert 'invalid byte sequence for encoding "UTF8": 0xe9' in result.err and "Traceback" not in result.err
        assert "holds text that is not UTF-8, which a snapshot cannot carry" in result.err
        assert not (tmp_path / "s.sql").exists()
    finally:
        pg_server.drop_database(live.name)


def test_pg_dumps_restrict_commands_in_a_snapshot_are_not_sql_and_do_not_stop_the_load(taken):
    path, migrations, fresh = taken
    # pg_dump 17.6, 16.10, 15.14 and later frame their output so; a snapshot edited or dumped by hand keeps them.
    path.write_text("\\restrict Xq7pKd2\n" + path.read_text() + "\n\\unrestrict Xq7pKd2\n")
    result = fresh.run("apply", "--dir", str(migrations), "--snapshot", str(path))
    assert result.code == 0, result.output
    assert fresh.applied() == ["1_accounts.sql", "2_seed_admin.sql"]
