"""Concurrent index builds: what a failed attempt leaves behind is dropped or named, never recorded as applied."""

import threading
import time

from runner.errors import EXIT_MIGRATION_FAILED, EXIT_OK
from tests.pg import write
from tests.test_runner_concurrency import wait_for_query

ITEMS = "CREATE TABLE items (id int, name text);\nINSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 100) g;\n"


def index_state(db, name: str) -> list[tuple]:
    return db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,))


def row(db, name: str) -> list[tuple]:
    return db.query("SELECT status, statements FROM public.schema_migrations WHERE migration_name = %s", (name,))


def hold_old_snapshot(db):
    """A REPEATABLE READ session holding a snapshot (of another table), as a report query would."""
    db.execute("CREATE TABLE IF NOT EXISTS other (id int)")
    session = db.connect()
    session.autocommit = False
    with session.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT count(*) FROM other")
    return session


def test_a_retried_concurrent_build_drops_the_invalid_index_of_the_failed_attempt(db, tmp_path):
    write(tmp_path, {"001_items.sql": ITEMS})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_index.sql": (
        "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_name_idx ON items (name);\n")})
    snapshot = hold_old_snapshot(db)
    threading.Timer(1.0, snapshot.close).start()

    result = db.run("--dir", str(tmp_path), "--lock-timeout", "300ms", "--lock-retries", "5", "--retry-delay", "0.5")

    assert result.code == EXIT_OK, result.output
    assert "left INVALID index public.items_name_idx, which was dropped" in result.out
    assert "rolled back" not in result.out
    assert index_state(db, "items_name_idx") == [(True,)]
    assert row(db, "002_index.sql") == [("applied", 1)]


def test_a_failed_unique_build_is_reported_with_what_it_left_and_the_leftover_is_dropped(db, tmp_path):
    write(tmp_path, {
        "001_items.sql": ITEMS + "INSERT INTO items VALUES (1, 'n1');\n",
        "002_unique.sql": "-- runner:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY items_name_key ON items (name);\n",
    })
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "SQLSTATE 23505" in result.err
    assert "it left INVALID index public.items_name_key, which was dropped" in result.err
    assert index_state(db, "items_name_key") == []
    assert row(db, "002_unique.sql") == [("incomplete", 0)]


def test_if_not_exists_skipping_an_invalid_index_is_not_recorded_as_applied(db, tmp_path):
    write(tmp_path, {"001_items.sql": ITEMS + "INSERT INTO items VALUES (1, 'n1');\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    try:  # someone's earlier attempt, by hand: it failed and left the index INVALID
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY items_name_key ON items (name)")
    except Exception:
        pass
    db.execute("DELETE FROM items WHERE ctid = (SELECT max(ctid) FROM items WHERE name = 'n1')")
    write(tmp_path, {"002_unique.sql": (
        "-- runner:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS items_name_key ON items (name);\n")})

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_MIGRATION_FAILED, result.output
    assert "index public.items_name_key exists but is INVALID" in result.err
    assert "DROP INDEX CONCURRENTLY public.items_name_key" in result.err
    assert row(db, "002_unique.sql") == [("incomplete", 0)]


def test_a_run_stopped_by_an_incomplete_build_names_the_invalid_index_it_left(db, tmp_path):
    write(tmp_path, {"001_items.sql": ITEMS})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_index.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY items_name_idx ON items (name);\n"})
    snapshot = hold_old_snapshot(db)  # the build waits for it
    runner = db.spawn("--dir", str(tmp_path), "--lock-timeout", "30s")
    try:
        pid = wait_for_query(db, "CREATE INDEX CONCURRENTLY")
        runner.kill()  # the pod dies mid-build
        runner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while db.query("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) != [(0,)]:
            assert time.monotonic() < deadline, "the server did not notice the runner was gone"
            time.sleep(0.1)
    finally:
        snapshot.close()

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_MIGRATION_FAILED
    assert "002_index.sql is a no-transaction migration that stopped after 0 statements" in result.err
    assert "INVALID indexes in the database now" in result.err and "public.items_name_idx" in result.err
