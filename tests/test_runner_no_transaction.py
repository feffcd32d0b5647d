"""The `-- runner:no-transaction` marker: statements that cannot run in a transaction."""

import time

import pytest

from runner.errors import EXIT_BAD_INPUT, EXIT_MIGRATION_FAILED, EXIT_OK
from tests.pg import write

TABLE = "CREATE TABLE items (id int, name text);\nINSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 100) g;\n"


def test_marked_file_runs_create_index_concurrently(db, tmp_path):
    write(tmp_path, {
        "001_items.sql": TABLE,
        "002_index.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY items_name_idx ON items (name);\n",
    })
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_name_idx'::regclass") == [(True,)]
    assert db.query("SELECT status, statements FROM schema_migrations WHERE migration_name = '002_index.sql'") == [("applied", 1)]


def test_unmarked_concurrent_index_is_refused_with_advice_before_anything_runs(db, tmp_path):
    write(tmp_path, {"001_items.sql": TABLE, "002_index.sql": "CREATE INDEX CONCURRENTLY items_name_idx ON items (name);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "002_index.sql:1: CREATE INDEX ... cannot run inside a transaction" in result.err
    assert "make `-- runner:no-transaction` a comment line above the first statement" in result.err
    assert db.applied() == []


def test_an_unmarked_statement_the_check_cannot_see_still_fails_with_the_advice(db, tmp_path):
    # A comment between its words hides it from the runner's check; the server refuses it.
    write(tmp_path, {"001_items.sql": TABLE, "002_index.sql": "CREATE /* fast */ INDEX CONCURRENTLY i ON items (name);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "SQLSTATE 25001" in result.err
    assert "make `-- runner:no-transaction` a comment line above the first statement" in result.err
    assert db.applied() == ["001_items.sql"]


def test_marker_after_sql_is_refused_not_ignored(db, tmp_path):
    write(tmp_path, {"001_items.sql": TABLE + "-- runner:no-transaction\nVACUUM items;\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "001_items.sql:3: `-- runner:no-transaction` stands below statement 2" in result.err
    assert "items" not in db.tables()


def test_failure_part_way_leaves_a_record_that_stops_the_next_run(db, tmp_path):
    write(tmp_path, {
        "001_items.sql": TABLE,
        "002_two_steps.sql": (
            "-- runner:no-transaction\n"
            "CREATE INDEX CONCURRENTLY items_id_idx ON items (id);\n"
            "CREATE INDEX CONCURRENTLY items_bad_idx ON items (no_such_column);\n"
        ),
        "003_later.sql": "CREATE TABLE later (id int);\n",
    })
    first = db.run("--dir", str(tmp_path))
    assert first.code == EXIT_MIGRATION_FAILED
    assert "this no-transaction migration stopped part-way" in first.err
    assert db.query("SELECT status, statements FROM schema_migrations WHERE migration_name = '002_two_steps.sql'") == [("incomplete", 1)]

    second = db.run("--dir", str(tmp_path))
    assert second.code == EXIT_MIGRATION_FAILED
    assert "002_two_steps.sql is a no-transaction migration that stopped after 1 statement;" in second.err
    assert "python -m runner resolve 002_two_steps.sql --applied" in second.err
    assert "later" not in db.tables()


def test_resolve_pending_lets_the_fixed_file_run_again(db, tmp_path):
    write(tmp_path, {"001_items.sql": TABLE, "002_idx.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY i ON items (nope);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_MIGRATION_FAILED
    db.execute("DROP INDEX IF EXISTS i")  # what the person checking the database does
    resolved = db.run("--dir", str(tmp_path), "resolve", "002_idx.sql", "--pending")
    assert resolved.code == EXIT_OK, resolved.output
    write(tmp_path, {"002_idx.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY i ON items (name);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert db.query("SELECT status FROM schema_migrations WHERE migration_name = '002_idx.sql'") == [("applied",)]


def test_resolve_applied_records_it_as_done(db, tmp_path):
    write(tmp_path, {"001_items.sql": TABLE, "002_idx.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY i ON items (nope);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_MIGRATION_FAILED
    assert db.run("--dir", str(tmp_path), "resolve", "002_idx.sql", "--applied").code == EXIT_OK
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert db.query("SELECT status FROM schema_migrations WHERE migration_name = '002_idx.sql'") == [("applied",)]


def test_resolve_refuses_a_migration_that_is_not_incomplete(db, tmp_path):
    write(tmp_path, {"001_items.sql": TABLE})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    result = db.run("--dir", str(tmp_path), "resolve", "001_items.sql", "--pending")
    assert result.code == 2
    assert "001_items.sql is not an incomplete migration" in result.err
    assert db.applied() == ["001_items.sql"]


def test_sigterm_during_a_no_transaction_migration_leaves_it_recorded_incomplete(db, tmp_path):
    import signal

    from tests.test_runner_concurrency import wait_for_query

    write(tmp_path, {"001_items.sql": TABLE, "002_slow.sql": (
        "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY i1 ON items (id);\nSELECT pg_sleep(60);\n")})
    runner = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(60)")
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=10) == 143
    err = runner.stderr.read()
    assert "during no-transaction migration 002_slow.sql, after 1 of 2 statements; it is recorded as incomplete" in err
    assert db.query("SELECT status, statements FROM schema_migrations WHERE migration_name = '002_slow.sql'") == [("incomplete", 1)]


def test_a_lock_timeout_in_a_no_transaction_file_is_retried_and_applies_once_it_clears(db, tmp_path):
    import threading

    from tests.test_runner_concurrency import hold_share_lock, wait_for_query

    write(tmp_path, {"001_items.sql": TABLE, "002_alter.sql": (
        "-- runner:no-transaction\nALTER TABLE items ADD COLUMN note text;\nCREATE INDEX CONCURRENTLY items_note_idx "
        "ON items (note);\n")})
    (tmp_path / "002_alter.sql").rename(tmp_path.parent / f"{tmp_path.name}-002_alter.sql")
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    (tmp_path.parent / f"{tmp_path.name}-002_alter.sql").rename(tmp_path / "002_alter.sql")
    blocker = hold_share_lock(db, "items")

    def clear_after_the_first_timeout() -> None:
        # Seen waiting, then past its 200ms lock timeout: the blocker goes during the retry's
        # 0.6s delay (or a later one on a slow machine), however long the runner took to start.
        wait_for_query(db, "ALTER TABLE items ADD COLUMN note", timeout=30)
        time.sleep(0.35)
        blocker.close()

    threading.Thread(target=clear_after_the_first_timeout, daemon=True).start()
    result = db.run("--dir", str(tmp_path), "--lock-timeout", "200ms", "--lock-retries", "3", "--retry-delay", "0.6")
    assert result.code == EXIT_OK, result.output
    # Nothing is rolled back without a transaction: the log must not say so.
    assert "lock timeout in 002_alter.sql at statement 1 (no transaction: the statements before it stay applied), " \
        "retrying it in 0.6s" in result.out
    assert "applied 002_alter.sql (2 statements" in result.out
    assert db.query("SELECT status, statements FROM schema_migrations WHERE migration_name = '002_alter.sql'") == [
        ("applied", 2)]


APP_STYLE_HEADER = """/*
  # Add a search index

  1. Changes
    - products.name gets an index, built without blocking writes
*/

"""


@pytest.mark.parametrize("marker", [
    "-- runner:no-transaction\n",  # below the app's /* ... */ header
    "--runner: no-transaction  (CREATE INDEX CONCURRENTLY below)\n",
])
def test_the_marker_counts_below_a_block_comment_header(db, tmp_path, marker):
    write(tmp_path, {"001_items.sql": TABLE, "002_index.sql": APP_STYLE_HEADER + marker +
                     "CREATE INDEX CONCURRENTLY items_name_idx ON items (name);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_name_idx'::regclass") == [(True,)]


def test_the_marker_inside_the_block_comment_header_counts_too(db, tmp_path):
    header = "/*\n * Rebuild the index online.\n * runner:no-transaction\n */\n"
    write(tmp_path, {"001_items.sql": TABLE, "002_index.sql": header + "CREATE INDEX CONCURRENTLY i ON items (name);\n"})
    result = db.run("--dir", str(tmp_path), "apply", "--dry-run")
    assert "would apply 002_index.sql (1 statement, without a transaction)" in result.out


@pytest.mark.parametrize("written", ["-- runner:notransaction", "-- runner:no_transaction", "/* RUNNER: no-txn */"])
def test_a_misspelled_directive_is_refused_naming_the_right_one(tmp_path, written):
    from runner import cli
    import contextlib, io

    write(tmp_path, {"001_index.sql": f"{written}\nCREATE INDEX CONCURRENTLY i ON items (name);\n"})
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["validate", "--dir", str(tmp_path)], {}) == EXIT_BAD_INPUT
    assert f"001_index.sql:1: `{written.strip('-/* ').split('*')[0].strip()}` is not a runner directive" in err.getvalue()
    assert "`-- runner:no-transaction`" in err.getvalue()


@pytest.mark.parametrize("statement", [
    "CREATE UNIQUE INDEX CONCURRENTLY i ON items (name);",
    "DROP INDEX CONCURRENTLY IF EXISTS i;",
    "REINDEX (VERBOSE) INDEX CONCURRENTLY i;",
    "VACUUM (ANALYZE) items;",
    "CREATE DATABASE other;",
    "ALTER SYSTEM SET work_mem = '8MB';",
])
def test_validate_refuses_statements_that_cannot_run_in_the_files_transaction(tmp_path, statement):
    from runner import cli
    import contextlib, io

    write(tmp_path, {"001_a.sql": "CREATE TABLE items (id int, name text);\n" + statement + "\n"})
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["validate", "--dir", str(tmp_path)], {}) == EXIT_BAD_INPUT
    assert "001_a.sql:2: " in err.getvalue() and "cannot run inside a transaction" in err.getvalue()
