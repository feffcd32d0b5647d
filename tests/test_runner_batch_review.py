"""A hostile review of batches (several small transactional files in one round trip): what one
file leaves in the session, and what the history records for each file, must be what applying
the files one per round trip gives."""

import pytest

from runner.errors import EXIT_OK
from tests.pg import write

SETUP = "CREATE TABLE seen (file text, mode text);\n"


def prepared(db, tmp_path, files: dict) -> None:
    write(tmp_path, {"000_setup.sql": SETUP})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, files)


@pytest.fixture(params=["batched", "one per round trip"])
def batching(request, monkeypatch):
    """Each behaviour is checked both ways: one per round trip is the reference."""
    if request.param != "batched":
        from runner import executor

        monkeypatch.setattr(executor.Executor, "batchable", lambda self, script: False)
    return request.param


# Session settings that decide how the NEXT transaction starts: RESET ALL, run inside the next
# file's transaction, resets them too late (transaction_isolation and transaction_read_only are
# fixed when BEGIN runs, and RESET ALL leaves them alone).
TRANSACTION_DEFAULTS = [
    "SET default_transaction_read_only = on;",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;",
    "SET default_transaction_isolation = 'serializable';",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ;",
]


@pytest.mark.parametrize("setting", TRANSACTION_DEFAULTS)
def test_a_files_transaction_defaults_do_not_reach_the_next_file(db, tmp_path, batching, setting):
    prepared(db, tmp_path, {
        "001_sets.sql": f"CREATE TABLE a (id int);\n{setting}\n",
        "002_next.sql": "CREATE TABLE b (id int);\nINSERT INTO seen VALUES ('002', "
                        "current_setting('transaction_isolation') || ',' || current_setting('transaction_read_only'));\n",
    })

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT file, mode FROM seen") == [("002", "read committed,off")]
    assert db.applied() == ["000_setup.sql", "001_sets.sql", "002_next.sql"]


def test_each_files_recorded_duration_and_time_are_its_own(db, tmp_path, batching):
    """duration_ms is the file's own transaction, applied_at when it ran: a quick file after a
    slow one neither inherits the slow one's time nor claims to have run before it."""
    prepared(db, tmp_path, {"001_slow.sql": "CREATE TABLE s (id int);\nSELECT pg_sleep(1.2);\n",
                            "002_quick.sql": "CREATE TABLE q (id int);\n"})

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_OK, result.output
    (slow_ms, slow_at), (quick_ms, quick_at) = db.query(
        "SELECT duration_ms, applied_at FROM schema_migrations WHERE migration_name IN "
        "('001_slow.sql', '002_quick.sql') ORDER BY migration_name")
    assert slow_ms >= 1200
    assert quick_ms < 1000, f"002_quick.sql recorded {quick_ms} ms"
    assert (quick_at - slow_at).total_seconds() >= 1.2  # it started after the slow one's sleep


def test_a_lock_timeout_names_the_session_that_blocked_that_file_not_an_earlier_one(db, tmp_path, batching,
                                                                                   monkeypatch):
    """002 waits a moment for session A (which then lets go); 004 times out waiting for session
    B. The report of 004's lock timeout must not name A, which never blocked 004. LOOK_EVERY is
    raised so that the runner looks at its blockers once per round trip, as it does when the
    lock timeout is shorter than LOOK_EVERY (1 s): deterministic instead of a race."""
    import threading
    import time

    from runner import waiting
    from tests.test_runner_concurrency import hold_share_lock, wait_for_query

    monkeypatch.setattr(waiting, "LOOK_EVERY", 60.0)
    files = {f"00{n}_f.sql": f"CREATE TABLE t{n} (id int);\n" for n in range(1, 6)}
    files["002_f.sql"] = "ALTER TABLE items_a ADD COLUMN x int;\n"
    files["004_f.sql"] = "ALTER TABLE items_b ADD COLUMN x int;\n"
    prepared(db, tmp_path, files)
    db.execute("CREATE TABLE items_a (id int); CREATE TABLE items_b (id int)")
    a, b = hold_share_lock(db, "items_a"), hold_share_lock(db, "items_b")
    a_pid = a.get_backend_pid()

    def let_go_of_a():
        wait_for_query(db, "items_a")  # 002 is waiting for A now
        time.sleep(waiting.FIRST_LOOK + 0.3)  # the runner has looked and seen A
        a.rollback()

    releaser = threading.Thread(target=let_go_of_a)
    releaser.start()
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "1s", "--lock-retries", "1",
                        "--retry-delay", "0.1")
    finally:
        releaser.join()
        a.close()
        b.close()

    assert "lock timeout in 004_f.sql; attempt 1 rolled back" in result.out, result.output
    assert f"pid {a_pid} " not in result.output, result.output
    assert db.applied() == ["000_setup.sql", "001_f.sql", "002_f.sql", "003_f.sql"]
