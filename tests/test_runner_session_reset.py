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
