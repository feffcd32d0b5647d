"""Exactly once under concurrency, lock timeouts, and signals."""

import signal
import threading
import time

import pytest

from runner.errors import EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_TRANSIENT
from runner.lock import LOCK_KEY
from tests.pg import write

# Each file fails if it runs twice (CREATE TABLE without IF NOT EXISTS) and counts its runs.
ONCE_ONLY = {
    "001_runs.sql": "CREATE TABLE runs (migration text);\nINSERT INTO runs VALUES ('001');\nSELECT pg_sleep(0.2);\n",
    "002_a.sql": "CREATE TABLE a (id int);\nINSERT INTO runs VALUES ('002');\nSELECT pg_sleep(0.2);\n",
    "003_b.sql": "CREATE TABLE b (id int);\nINSERT INTO runs VALUES ('003');\n",
}


def wait_for_query(db, fragment: str, timeout: float = 10.0) -> int:
    """The pid of the runner's backend once it is running a query containing `fragment`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = db.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'db-migrations' "
            "AND state = 'active' AND query LIKE %s",
            (f"%{fragment}%",),
        )
        if rows:
            return rows[0][0]
        time.sleep(0.05)
    raise AssertionError(f"the runner never ran a query containing {fragment!r}")


def hold_share_lock(db, table: str):
    """An application session with an open transaction that has read `table`."""
    blocker = db.connect()
    blocker.autocommit = False
    with blocker.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")
    return blocker


def advisory_locks_held(db) -> int:
    return db.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")[0][0]


def test_six_runners_started_together_apply_each_migration_once_and_all_succeed(db, tmp_path):
    write(tmp_path, ONCE_ONLY)
    runners = [db.spawn("--dir", str(tmp_path)) for _ in range(6)]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in runners]
    assert [code for code, _, _ in results] == [EXIT_OK] * 6, results
    assert db.query("SELECT migration, count(*) FROM runs GROUP BY 1 ORDER BY 1") == [("001", 1), ("002", 1), ("003", 1)]
    assert db.applied() == sorted(ONCE_ONLY)
    assert sum("applied 3 migrations" in out for _, out, _ in results) == 1


def test_runner_gives_up_on_a_held_migration_lock_with_a_transient_exit(db, tmp_path):
    write(tmp_path, ONCE_ONLY)
    holder = db.connect()
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        result = db.run("--dir", str(tmp_path), "--wait-for-lock", "0.5")
    finally:
        holder.close()
    assert result.code == EXIT_TRANSIENT
    assert "another migration run holds the migration lock (held by pid" in result.err
    assert db.applied() == []


def test_lock_timeout_is_retried_until_the_blocker_goes_away(db, tmp_path):
    db.execute("CREATE TABLE items (id int)")
    write(tmp_path, {"001_alter.sql": "ALTER TABLE items ADD COLUMN name text;\n"})
    blocker = hold_share_lock(db, "items")
    threading.Timer(0.8, blocker.rollback).start()
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "100ms", "--lock-retries", "5", "--retry-delay", "0.3")
    finally:
        blocker.close()
    assert result.code == EXIT_OK, result.output
    assert "lock timeout in 001_alter.sql; attempt 1 rolled back, retrying in 0.3s" in result.out
    assert db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'name'") == [(1,)]


def test_lock_timeouts_exhausted_are_reported_as_transient(db, tmp_path):
    db.execute("CREATE TABLE items (id int)")
    write(tmp_path, {"001_alter.sql": "CREATE TABLE other (id int);\nALTER TABLE items ADD COLUMN name text;\n"})
    blocker = hold_share_lock(db, "items")
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "50ms", "--lock-retries", "2", "--retry-delay", "0.05")
    finally:
        blocker.close()
    assert result.code == EXIT_TRANSIENT
    assert "SQLSTATE 55P03: canceling statement due to lock timeout" in result.err
    assert "gave up after 3 attempts" in result.err
    assert "other" not in db.tables()
    assert db.applied() == []


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGTERM, EXIT_SIGTERM), (signal.SIGINT, EXIT_SIGINT)])
def test_signal_mid_migration_rolls_back_releases_the_lock_and_exits_promptly(db, tmp_path, signum, exit_code):
    write(tmp_path, {"001_slow.sql": "CREATE TABLE partial (id int);\nSELECT pg_sleep(60);\n"})
    runner = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(60)")
    sent = time.monotonic()
    runner.send_signal(signum)
    code = runner.wait(timeout=10)
    elapsed = time.monotonic() - sent
    err = runner.stderr.read()
    assert code == exit_code, err
    assert elapsed < 3, f"took {elapsed:.1f}s to stop"
    assert f"stopped by {signal.Signals(signum).name}; the running migration was rolled back" in err
    assert "partial" not in db.tables()
    assert db.applied() == []
    assert advisory_locks_held(db) == 0
    assert db.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%pg_sleep(60)%%' AND state = 'active' AND pid <> pg_backend_pid()") == [(0,)]


def test_exhausted_lock_timeouts_name_the_blocking_session_and_the_real_wall_time(db, tmp_path):
    db.execute("CREATE TABLE items (id int)")
    write(tmp_path, {"001_alter.sql": "ALTER TABLE items ADD COLUMN name text;\n"})
    blocker = db.connect()
    blocker.autocommit = False
    with blocker.cursor() as cursor:
        cursor.execute("SET application_name = 'reporting-job'")
        cursor.execute("SELECT count(*) FROM items")  # holds ACCESS SHARE until it ends
        blocker_pid = blocker.get_backend_pid()
    started = time.monotonic()
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "600ms", "--lock-retries", "1", "--retry-delay", "0.5")
    finally:
        blocker.close()
    wall = time.monotonic() - started
    assert result.code == EXIT_TRANSIENT
    assert f"blocked by pid {blocker_pid} (reporting-job, idle in transaction, for " in result.err
    assert "SELECT count(*) FROM items" in result.err
    reported = float(result.err.split("gave up after 2 attempts in ")[1].split("s")[0])
    assert 1.5 <= reported <= wall  # two lock waits and the backoff, not one attempt's time
