"""The migration lock is held where migrations cannot release it."""

import time

import pytest

from runner.errors import EXIT_OK, EXIT_TRANSIENT
from runner.lock import LOCK_KEY, _key_halves
from tests.pg import write
from tests.test_runner_concurrency import wait_for_query


def end_the_lock_session(db) -> None:
    """A DBA ends the wrong session: the one holding the migration lock."""
    high, low = _key_halves()
    holder = db.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s "
                      "AND objid = %s AND objsubid = 1", (high, low))
    db.execute("SELECT pg_terminate_backend(%s)", (holder[0][0],))


def second_runner(db, tmp_path):
    return db.run("--dir", str(tmp_path), "--wait-for-lock", "0.5")


@pytest.mark.parametrize("release, marker", [
    ("SELECT pg_advisory_unlock_all();", ""),
    ("DISCARD ALL;", "-- runner:no-transaction\n"),
    (f"SELECT pg_advisory_unlock({LOCK_KEY});", "-- runner:no-transaction\n"),
])
def test_a_migration_that_releases_advisory_locks_does_not_let_a_second_runner_in(db, tmp_path, release, marker):
    write(tmp_path, {"001_slow.sql": f"{marker}{release}\nSELECT pg_sleep(4);\nCREATE TABLE once (id int);\n"})
    first = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(4)")

    second = second_runner(db, tmp_path)

    assert first.wait(timeout=30) == EXIT_OK, first.stderr.read()
    assert second.code == EXIT_TRANSIENT, second.output
    assert "another migration run holds the migration lock" in second.err


def test_a_lock_released_by_an_earlier_migration_of_the_run_still_keeps_others_out(db, tmp_path):
    write(tmp_path, {
        "001_unlock.sql": "SELECT pg_advisory_unlock_all();\n",
        "002_slow.sql": "SELECT pg_sleep(4);\nCREATE TABLE once (id int);\n",
    })
    first = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(4)")

    second = second_runner(db, tmp_path)

    assert first.wait(timeout=30) == EXIT_OK, first.stderr.read()
    assert second.code == EXIT_TRANSIENT, second.output


def test_a_lost_lock_session_stops_the_run_before_the_running_migration_commits(db, tmp_path):
    write(tmp_path, {
        "001_slow.sql": "CREATE TABLE first (id int);\nSELECT pg_sleep(3);\n",
        "002_next.sql": "CREATE TABLE second (id int);\n",
    })
    runner = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(3)")
    end_the_lock_session(db)

    code = runner.wait(timeout=30)
    err = runner.stderr.read()

    assert code == EXIT_TRANSIENT, err
    assert "lost the migration lock" in err
    assert "001_slow.sql was rolled back" in err
    assert {"first", "second"}.isdisjoint(db.tables())
    time.sleep(0.1)
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
