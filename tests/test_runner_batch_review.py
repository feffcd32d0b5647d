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
