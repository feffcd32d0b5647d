"""Fault injection: whatever breaks, no migration is lost, doubled or half-applied,
and the exit code and message are the documented ones."""

import os
import signal
import threading
import time

import psycopg2
import pytest

from runner.errors import (
    EXIT_BAD_INPUT,
    EXIT_DRIFT,
    EXIT_MIGRATION_FAILED,
    EXIT_OK,
    EXIT_TRANSIENT,
)
from runner.scratch import ScratchPostgres
from tests.pg import Database, write
from tests.test_runner_concurrency import advisory_locks_held, hold_share_lock, wait_for_query

SLOW = {
    "001_base.sql": "CREATE TABLE base (id int);\n",
    "002_slow.sql": (
        "CREATE TABLE slow (id int);\n"
        "INSERT INTO slow SELECT generate_series(1, 1000);\n"
        "SELECT pg_sleep(60);\n"
        "CREATE TABLE after_sleep (id int);\n"
    ),
}
QUICK = dict(SLOW, **{"002_slow.sql": SLOW["002_slow.sql"].replace("pg_sleep(60)", "pg_sleep(0)")})


def assert_applied_exactly(db, names, tables):
    """Each name has one row, every expected table exists once, and nothing else is recorded."""
    assert db.applied() == sorted(names)
    assert db.query("SELECT count(*) FROM schema_migrations WHERE status <> 'applied'") == [(0,)]
    assert tables <= db.tables()


class OwnServer:
    """A server of the test's own, which it may stop, kill and restart."""

    def __init__(self):
        self.server = ScratchPostgres(durable=True).start()
        admin = psycopg2.connect(self.server.url())
        admin.autocommit = True
        admin.cursor().execute("CREATE DATABASE faults")
        admin.close()
        self.db = _Db(self.server)

    def close(self):
        self.server.cleanup()


class _Db(Database):
    def __init__(self, server):
        self.server = None
        self.name = "faults"
        self.dsn = server.url("faults")


@pytest.fixture
def own(controllable_server):
    server = OwnServer()
    yield server
    server.close()


def test_runner_killed_mid_migration_then_run_again_applies_it_once(db, tmp_path):
    write(tmp_path, SLOW)
    victim = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(60)")
    # 001 and 002 share one query (a batch): the sleep is in its text from the start, and 001 is
    # committed once its own COMMIT in it has run.
    deadline = time.monotonic() + 10
    while db.applied() != ["001_base.sql"] and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    # The server notices the vanished client (client_connection_check_interval) and frees the lock.
    deadline = time.monotonic() + 10
    while advisory_locks_held(db) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert advisory_locks_held(db) == 0
    assert db.applied() == ["001_base.sql"]
    assert "slow" not in db.tables()

    write(tmp_path, QUICK)
    result = db.run("--dir", str(tmp_path), "apply", "--accept-changed")
    assert result.code == EXIT_OK, result.output
    assert_applied_exactly(db, SLOW, {"base", "slow", "after_sleep"})
    assert db.query("SELECT count(*) FROM slow") == [(1000,)]


def test_connection_terminated_mid_migration_is_transient_and_rolled_back(db, tmp_path):
    write(tmp_path, SLOW)
    runner = db.spawn("--dir", str(tmp_path))
    pid = wait_for_query(db, "pg_sleep(60)")
    deadline = time.monotonic() + 10  # 001 committed: the batch's query is in 002 (as above)
    while db.applied() != ["001_base.sql"] and time.monotonic() < deadline:
        time.sleep(0.05)
    db.execute("SELECT pg_terminate_backend(%s)", (pid,))
    code = runner.wait(timeout=10)
    err = runner.stderr.read()
    assert code == EXIT_TRANSIENT, err
    assert "lost the connection to the database while applying 002_slow.sql" in err
    assert "running again is safe" in err
    assert db.applied() == ["001_base.sql"] and "slow" not in db.tables()

    write(tmp_path, QUICK)
    assert db.run("--dir", str(tmp_path), "apply", "--accept-changed").code == EXIT_OK
    assert_applied_exactly(db, SLOW, {"base", "slow", "after_sleep"})


def test_server_stopped_abruptly_mid_migration_then_restarted(own, tmp_path):
    write(tmp_path, SLOW)
    runner = own.db.spawn("--dir", str(tmp_path))
    wait_for_query(own.db, "pg_sleep(60)")
    deadline = time.monotonic() + 10  # 001 committed: the batch's query is in 002 (as above)
    while own.db.applied() != ["001_base.sql"] and time.monotonic() < deadline:
        time.sleep(0.05)
    own.server.stop("immediate")
    code = runner.wait(timeout=15)
    err = runner.stderr.read()
    assert code == EXIT_TRANSIENT, err
    own.server.start()
    assert own.db.applied() == ["001_base.sql"]
    assert "slow" not in own.db.tables()

    write(tmp_path, QUICK)
    assert own.db.run("--dir", str(tmp_path), "apply", "--accept-changed").code == EXIT_OK
    assert_applied_exactly(own.db, SLOW, {"base", "slow", "after_sleep"})


def test_server_killed_outright_mid_migration_then_restarted(own, tmp_path):
    write(tmp_path, SLOW)
    runner = own.db.spawn("--dir", str(tmp_path))
    wait_for_query(own.db, "pg_sleep(60)")
    own.server.kill()
    assert runner.wait(timeout=15) == EXIT_TRANSIENT
    # A postmaster killed with SIGKILL leaves its children behind for a moment.
    time.sleep(1)
    own.server.start()
    assert own.db.applied() == ["001_base.sql"] and "slow" not in own.db.tables()
    write(tmp_path, QUICK)
    assert own.db.run("--dir", str(tmp_path), "apply", "--accept-changed").code == EXIT_OK
    assert_applied_exactly(own.db, SLOW, {"base", "slow", "after_sleep"})


@pytest.mark.parametrize("round_number", range(4))
def test_eight_runners_at_once_apply_each_migration_once(pg_server, tmp_path, round_number):
    db = pg_server.create_database()
    try:
        files = {f"{i:03d}_m.sql": f"CREATE TABLE m{i} (id int);\nINSERT INTO counts VALUES ({i});\n" for i in range(2, 12)}
        files["001_counts.sql"] = "CREATE TABLE counts (migration int);\n"
        write(tmp_path, files)
        runners = [db.spawn("--dir", str(tmp_path)) for _ in range(8)]
        codes = [r.wait(timeout=60) for r in runners]
        assert codes == [EXIT_OK] * 8, [r.stderr.read() for r in runners]
        assert db.query("SELECT migration, count(*) FROM counts GROUP BY 1 HAVING count(*) <> 1") == []
        assert db.query("SELECT count(*) FROM counts") == [(10,)]
        assert_applied_exactly(db, files, {f"m{i}" for i in range(2, 12)})
    finally:
        pg_server.drop_database(db.name)


def test_application_queries_wait_no_longer_than_the_lock_timeout(db, tmp_path):
    db.execute("CREATE TABLE items (id int); INSERT INTO items VALUES (1)")
    write(tmp_path, {"001_alter.sql": "ALTER TABLE items ADD COLUMN name text;\n"})
    long_reader = hold_share_lock(db, "items")
    latencies = []
    stop = threading.Event()

    def application():
        conn = db.connect()
        while not stop.is_set():
            started = time.monotonic()
            conn.cursor().execute("SELECT count(*) FROM items")
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
        conn.close()

    app = threading.Thread(target=application)
    app.start()
    threading.Timer(1.5, long_reader.rollback).start()
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "200ms", "--lock-retries", "10", "--retry-delay", "0.2")
    finally:
        stop.set()
        app.join()
        long_reader.close()
    assert result.code == EXIT_OK, result.output
    assert "lock timeout in 001_alter.sql" in result.out
    assert max(latencies) < 0.2 + 0.5, f"an application query waited {max(latencies):.2f}s"
    assert_applied_exactly(db, ["001_alter.sql"], {"items"})


def test_database_coming_up_within_the_wait_is_waited_for(own, tmp_path):
    write(tmp_path, QUICK)
    own.server.stop("fast")
    runner = own.db.spawn("--dir", str(tmp_path), "--wait-for-db", "30")
    time.sleep(1.5)
    own.server.start()
    code = runner.wait(timeout=40)
    assert code == EXIT_OK, runner.stderr.read()
    assert "waiting for database postgres@127.0.0.1:" in runner.stdout.read()
    assert_applied_exactly(own.db, QUICK, {"base", "slow", "after_sleep"})


def test_database_never_coming_up_exits_transient_after_the_wait(own, tmp_path):
    write(tmp_path, QUICK)
    own.server.stop("fast")
    started = time.monotonic()
    result = own.db.run("--dir", str(tmp_path), "--wait-for-db", "2")
    assert result.code == EXIT_TRANSIENT
    assert 2 <= time.monotonic() - started < 10
    assert "not reachable after 2s" in result.err
    own.server.start()
    assert own.db.applied() == []


# -- bad files -------------------------------------------------------------------------

GOOD = {"001_good.sql": "CREATE TABLE good (id int);\n"}


@pytest.mark.parametrize("name, content, code, message", [
    ("002_empty.sql", b"", EXIT_BAD_INPUT, "002_empty.sql: holds no SQL statement"),
    ("002_comments.sql", b"-- nothing\n/* here */\n", EXIT_BAD_INPUT, "002_comments.sql: holds no SQL statement"),
    ("002_latin1.sql", b"SELECT 'caf\xe9';\n", EXIT_BAD_INPUT, "002_latin1.sql: line 1 is not valid UTF-8"),
    ("nover_sion.sql", b"SELECT 1;\n", EXIT_BAD_INPUT, "nover_sion.sql: a migration file name must start with its version"),
    ("002_line40.sql", b"".join(b"SELECT %d;\n" % i for i in range(39)) + b"SELEC 40;\n", EXIT_MIGRATION_FAILED,
     "(002_line40.sql:40)"),
])
def test_bad_file_is_refused_and_the_good_ones_stay_exactly_applied(db, tmp_path, name, content, code, message):
    write(tmp_path, GOOD)
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    (tmp_path / name).write_bytes(content)
    result = db.run("--dir", str(tmp_path))
    assert result.code == code
    assert message in result.err
    assert_applied_exactly(db, GOOD, {"good"})


@pytest.mark.parametrize("name, content, table", [
    ("002_bom.sql", "\ufeffCREATE TABLE bom (id int);\n".encode(), "bom"),
    ("002_crlf.sql", b"CREATE TABLE crlf (id int);\r\nINSERT INTO crlf VALUES (1);\r\n", "crlf"),
])
def test_bom_and_crlf_files_apply(db, tmp_path, name, content, table):
    write(tmp_path, GOOD)
    (tmp_path / name).write_bytes(content)
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert_applied_exactly(db, [*GOOD, name], {"good", table})


def test_ten_megabyte_file_applies_whole(db, tmp_path):
    row = "('" + "x" * 90 + "')"
    statement = "INSERT INTO big (v) VALUES " + ", ".join([row] * 100) + ";\n"
    text = "CREATE TABLE big (id bigserial, v text);\n" + statement * (10 * 1024 * 1024 // len(statement))
    assert len(text) > 10_000_000
    write(tmp_path, {"001_big.sql": text})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.err
    assert db.query("SELECT count(*) FROM big") == [((text.count("\n") - 1) * 100,)]
    assert_applied_exactly(db, ["001_big.sql"], {"big"})


def test_file_changed_after_it_was_applied_is_drift_and_nothing_runs(db, tmp_path):
    write(tmp_path, GOOD)
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"001_good.sql": "CREATE TABLE good (id bigint);\n", "002_next.sql": "CREATE TABLE next (id int);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_DRIFT
    assert_applied_exactly(db, GOOD, {"good"})
    assert "next" not in db.tables()


def test_file_removed_after_it_was_applied_keeps_its_record(db, tmp_path):
    write(tmp_path, dict(GOOD, **{"002_x.sql": "CREATE TABLE x (id int);\n"}))
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    os.remove(tmp_path / "001_good.sql")
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK
    assert "001_good.sql is recorded as applied but its file is gone" in result.out
    assert_applied_exactly(db, ["001_good.sql", "002_x.sql"], {"good", "x"})


def test_a_frozen_runner_loses_its_session_and_locks_after_the_idle_timeout(db, tmp_path):
    # Three segments (each over 4 MB of text), so the migration's transaction stays open
    # between queries; SIGSTOP the runner while the second one runs.
    padding = "/*" + "x" * (4 * 1024 * 1024 + 100) + "*/"
    write(tmp_path, {"001_big.sql": (
        "CREATE TABLE frozen (id int);\n" + f"SELECT pg_sleep(1) {padding};\n" + f"SELECT 1 {padding};\n"
    )})
    runner = db.spawn("--dir", str(tmp_path), "--idle-in-transaction-timeout", "1s")
    try:
        pid = wait_for_query(db, "pg_sleep(1)", timeout=30)
        runner.send_signal(signal.SIGSTOP)
        blocked_from = time.monotonic()
        while db.query("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) != [(0,)]:
            assert time.monotonic() - blocked_from < 10, "the frozen runner's session was never ended"
            time.sleep(0.1)
        assert db.query("SELECT count(*) FROM pg_locks WHERE pid = %s", (pid,)) == [(0,)]
        assert "frozen" not in db.tables()  # its transaction was rolled back
    finally:
        runner.send_signal(signal.SIGCONT)
    assert runner.wait(timeout=30) == EXIT_TRANSIENT
    assert "lost the connection to the database while applying 001_big.sql" in runner.stderr.read()
    assert db.applied() == []
