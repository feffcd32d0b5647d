"""Each migration starts in a clean session: nothing a previous one left behind is visible."""

import pytest

from runner.errors import EXIT_OK
from tests.pg import write

LEAVE_BEHIND = (
    "CREATE TEMP TABLE scratch (id int);\n"
    "PREPARE lookup AS SELECT 1;\n"
    "LISTEN jobs;\n"
    "DECLARE held CURSOR WITH HOLD FOR SELECT 1;\n"
    "CREATE SEQUENCE counter;\n"
    "SELECT nextval('counter');\n"
    "SELECT pg_advisory_lock(4242);\n"
    "SET application_name = 'changed';\n"
)
OBSERVE = (
    "CREATE TABLE seen AS SELECT\n"
    "  (SELECT count(*) FROM pg_prepared_statements) AS prepared,\n"
    "  (SELECT count(*) FROM pg_listening_channels()) AS listening,\n"
    "  (SELECT count(*) FROM pg_cursors) AS cursors,\n"
    "  (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objid = 4242) AS locks,\n"
    "  to_regclass('pg_temp.scratch') IS NOT NULL AS temp_table,\n"
    "  current_setting('application_name') AS application_name;\n"
    "CREATE TEMP TABLE scratch (id int);\n"
    "PREPARE lookup AS SELECT 2;\n"
    "DECLARE held CURSOR WITH HOLD FOR SELECT 2;\n"
)


@pytest.mark.parametrize("marker", ["", "-- runner:no-transaction\n"])
def test_session_state_of_one_migration_does_not_reach_the_next(db, tmp_path, marker):
    write(tmp_path, {"001_leave.sql": marker + LEAVE_BEHIND, "002_observe.sql": OBSERVE})

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT prepared, listening, cursors, locks, temp_table, application_name FROM seen") == [
        (0, 0, 0, 0, False, "db-migrations")]


def test_currval_of_a_previous_migration_is_forgotten(db, tmp_path):
    write(tmp_path, {
        "001_counter.sql": "CREATE SEQUENCE counter;\nSELECT nextval('counter');\n",
        "002_observe.sql": (
            "CREATE TABLE seen (v bigint);\n"
            "DO $$ BEGIN INSERT INTO seen VALUES (currval('counter')); EXCEPTION WHEN object_not_in_prerequisite_state "
            "THEN INSERT INTO seen VALUES (NULL); END $$;\n"),
    })
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT v FROM seen") == [(None,)]


@pytest.mark.parametrize("marker", ["", "-- runner:no-transaction\n"])
def test_the_reset_returns_to_the_users_own_session_options_not_the_servers(db, tmp_path, marker):
    """options= and application_name are session defaults (the startup packet): the reset after a
    migration that changed them brings back the user's values, not the server's."""
    from urllib.parse import quote

    db.execute("CREATE SCHEMA app")
    write(tmp_path, {
        "001_change.sql": marker + "SET search_path = public;\nSET application_name = 'changed';\n"
                                   "SET work_mem = '1MB';\nCREATE TABLE first (id int);\n",
        "002_seen.sql": "CREATE TABLE seen AS SELECT current_schema() AS schema, "
                        "current_setting('application_name') AS app, current_setting('work_mem') AS work_mem;\n",
    })
    url = f"{db.dsn}?options={quote('-c search_path=app -c work_mem=7MB')}&application_name=ideaforge-backend"

    result = db.run("--dir", str(tmp_path), env={"DATABASE_URL": url})

    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT to_regclass('public.first') IS NOT NULL") == [(True,)]  # its own SET applied to it
    assert db.query("SELECT * FROM app.seen") == [("app", "ideaforge-backend (db-migrations)", "7MB")]
