"""BEGIN ... COMMIT inside a `-- runner:no-transaction` file is honoured as psql honours it."""

import threading

from runner.errors import EXIT_BAD_INPUT, EXIT_MIGRATION_FAILED, EXIT_OK
from tests.pg import write
from tests.test_runner_concurrency import hold_share_lock

ACCOUNTS = "CREATE TABLE acct (id int PRIMARY KEY, bal int);\nINSERT INTO acct VALUES (1, 100), (2, 100);\n"
TRANSFER = (
    "BEGIN;\n"
    "UPDATE acct SET bal = bal - 50 WHERE id = 1;\n"
    "UPDATE acct SET bal = bal + 50 WHERE id = 2 / 0;\n"
    "COMMIT;\n"
)


def balances(db) -> list[tuple]:
    return db.query("SELECT id, bal FROM acct ORDER BY id")


def row(db, name: str) -> list[tuple]:
    return db.query("SELECT status, statements FROM public.schema_migrations WHERE migration_name = %s", (name,))


def test_a_failing_transaction_block_is_rolled_back_whole(db, tmp_path):
    write(tmp_path, {"001_acct.sql": ACCOUNTS, "002_transfer.sql": "-- runner:no-transaction\n" + TRANSFER})

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_MIGRATION_FAILED
    assert balances(db) == [(1, 100), (2, 100)]
    assert "at statement 3 of 4 (002_transfer.sql:4)" in result.err
    assert "SQLSTATE 22012: division by zero" in result.err
    assert "the transaction block begun at statement 1 (002_transfer.sql:2) was rolled back" in result.err
    assert row(db, "002_transfer.sql") == [("incomplete", 0)]


def test_lock_table_runs_inside_the_files_own_transaction_block(db, tmp_path):
    write(tmp_path, {"001_acct.sql": ACCOUNTS, "002_locked.sql": (
        "-- runner:no-transaction\n"
        "BEGIN;\n"
        "LOCK TABLE acct IN SHARE ROW EXCLUSIVE MODE;\n"
        "UPDATE acct SET bal = bal - 50 WHERE id = 1;\n"
        "UPDATE acct SET bal = bal + 50 WHERE id = 2;\n"
        "COMMIT;\n"
        "CREATE INDEX CONCURRENTLY acct_bal_idx ON acct (bal);\n"
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert balances(db) == [(1, 50), (2, 150)]
    assert row(db, "002_locked.sql") == [("applied", 6)]


def test_progress_counts_a_block_only_once_it_committed(db, tmp_path):
    write(tmp_path, {"001_acct.sql": ACCOUNTS, "002_steps.sql": (
        "-- runner:no-transaction\n"
        "CREATE INDEX CONCURRENTLY acct_bal_idx ON acct (bal);\n"
        "BEGIN;\n"
        "UPDATE acct SET bal = bal - 50 WHERE id = 1;\n"
        "UPDATE acct SET bal = bal + 50 WHERE id = 2;\n"
        "COMMIT;\n"
        "BEGIN;\n"
        "UPDATE acct SET bal = 0 WHERE id = 1;\n"
        "CREATE INDEX CONCURRENTLY acct_id_idx ON acct (id);\n"
        "COMMIT;\n"
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "SQLSTATE 25001" in result.err
    assert balances(db) == [(1, 50), (2, 150)]
    assert row(db, "002_steps.sql") == [("incomplete", 5)]


def test_a_lock_timeout_inside_a_block_retries_the_block_from_its_begin(db, tmp_path):
    write(tmp_path, {"001_acct.sql": ACCOUNTS + "CREATE TABLE items (id int);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_transfer.sql": (
        "-- runner:no-transaction\n"
        "BEGIN;\n"
        "UPDATE acct SET bal = bal - 50 WHERE id = 1;\n"
        "ALTER TABLE items ADD COLUMN note text;\n"
        "UPDATE acct SET bal = bal + 50 WHERE id = 2;\n"
        "COMMIT;\n"
    )})
    blocker = hold_share_lock(db, "items")
    threading.Timer(0.6, blocker.close).start()
    result = db.run("--dir", str(tmp_path), "--lock-timeout", "200ms", "--lock-retries", "4", "--retry-delay", "0.5")
    assert result.code == EXIT_OK, result.output
    assert "the transaction block begun at statement 1 was rolled back" in result.out
    assert balances(db) == [(1, 50), (2, 150)]


def test_a_block_left_open_at_the_end_of_the_file_is_refused_before_anything_runs(db, tmp_path):
    write(tmp_path, {"001_acct.sql": ACCOUNTS, "002_open.sql": (
        "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY acct_bal_idx ON acct (bal);\n"
        "BEGIN;\nUPDATE acct SET bal = 0;\n")})
    validate = db.run("--dir", str(tmp_path), "validate")
    result = db.run("--dir", str(tmp_path))
    assert validate.code == result.code == EXIT_BAD_INPUT, validate.output
    assert "002_open.sql:3: BEGIN opens a transaction block that the file never closes" in validate.err
    assert "acct" not in db.tables()


def test_prepare_transaction_is_refused_in_a_no_transaction_file(db, tmp_path):
    write(tmp_path, {"001_two_phase.sql": (
        "-- runner:no-transaction\nBEGIN;\nCREATE TABLE t (id int);\nPREPARE TRANSACTION 'x';\n")})
    result = db.run("--dir", str(tmp_path), "validate")
    assert result.code == EXIT_BAD_INPUT
    assert "001_two_phase.sql:4: PREPARE TRANSACTION" in result.err
