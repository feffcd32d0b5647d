"""What runs is what was read and checked: each file is read once, the checksum recorded is
the checksum of the text that ran, and nothing the server would read differently from the
runner's checks gets through (settings that change how later statements are read)."""

import contextlib
import os
import time

import pytest

from runner.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT
from runner.lock import LOCK_KEY
from runner.migration import checksum
from tests.pg import write
from tests.test_runner_concurrency import wait_for_query

# Statements of 50 KB each, so that a file of them spans several of the runner's 4 MB segments.
_PADDING = "/*" + "x" * 50_000 + "*/"


def large_file(table: str, megabytes: float = 4.5) -> str:
    count = int(megabytes * 1024 * 1024 // len(_PADDING)) + 1
    return f"CREATE TABLE {table} (id int);\n" + f"INSERT INTO {table} SELECT 1 WHERE false {_PADDING};\n" * count


def replace(path, text: str) -> None:
    """Replace a file as editors, `git checkout` and ConfigMap updates do: a new file renamed over it."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def recorded_checksum(db, name: str) -> str:
    return db.query("SELECT checksum FROM schema_migrations WHERE migration_name = %s", (name,))[0][0]


@contextlib.contextmanager
def migration_lock_held(db):
    holder = db.connect()
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        yield
    finally:
        holder.close()


def wait_until_polling_for_the_lock(db, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'db-migrations' "
                    "AND query LIKE '%pg_try_advisory_lock%'"):
            return
        time.sleep(0.05)
    raise AssertionError("the runner never asked for the migration lock")


# -- item 7: read once, record the checksum of what ran -----------------------------------


def test_a_file_replaced_while_the_runner_waits_for_the_lock_runs_as_listed_with_that_checksum(db, tmp_path):
    # One read per file, when the directory is listed: what runs and what is recorded is that.
    first = "CREATE TABLE first_content (id int);\n"
    write(tmp_path, {"001_a.sql": first})
    with migration_lock_held(db):
        runner = db.spawn("--dir", str(tmp_path))
        wait_until_polling_for_the_lock(db)
        replace(tmp_path / "001_a.sql", "CREATE TABLE second_content (id int);\n")
    assert runner.wait(timeout=60) == EXIT_OK, runner.stderr.read()
    assert "first_content" in db.tables() and "second_content" not in db.tables()
    assert recorded_checksum(db, "001_a.sql") == checksum(first)


def test_a_large_file_replaced_after_it_was_listed_stops_the_run_before_anything_is_applied(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n", "002_big.sql": large_file("first_content")})
    second = large_file("second_content")
    with migration_lock_held(db):
        runner = db.spawn("--dir", str(tmp_path))
        wait_until_polling_for_the_lock(db)
        replace(tmp_path / "002_big.sql", second)
    assert runner.wait(timeout=60) == EXIT_TRANSIENT
    assert "002_big.sql changed while the runner was applying it" in runner.stderr.read()
    assert db.applied() == [] and not {"a", "first_content", "second_content"} & db.tables()
    again = db.run("--dir", str(tmp_path))
    assert again.code == EXIT_OK, again.output
    assert recorded_checksum(db, "002_big.sql") == checksum(second)


def test_reapply_records_the_checksum_of_the_text_it_ran(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE IF NOT EXISTS a (id int);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    second = "CREATE TABLE IF NOT EXISTS a (id int);\nCREATE TABLE IF NOT EXISTS b (id int);\n"
    with migration_lock_held(db):
        runner = db.spawn("--dir", str(tmp_path), "reapply", "001_a.sql")
        wait_until_polling_for_the_lock(db)
        replace(tmp_path / "001_a.sql", second)
    assert runner.wait(timeout=60) == EXIT_OK, runner.stderr.read()
    assert "b" in db.tables()
    assert recorded_checksum(db, "001_a.sql") == checksum(second)


def test_a_large_file_replaced_while_an_earlier_migration_runs_runs_as_read_and_records_its_checksum(db, tmp_path):
    first = large_file("first_content")
    write(tmp_path, {"001_slow.sql": "SELECT pg_sleep(2);\n", "002_big.sql": first})
    runner = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(2)", timeout=30)
    replace(tmp_path / "002_big.sql", large_file("second_content"))
    assert runner.wait(timeout=120) == EXIT_OK, runner.stderr.read()
    assert "first_content" in db.tables() and "second_content" not in db.tables()
    assert recorded_checksum(db, "002_big.sql") == checksum(first)


def test_a_large_file_rewritten_in_place_while_it_waits_its_turn_is_rolled_back_not_recorded(db, tmp_path):
    write(tmp_path, {"001_slow.sql": "SELECT pg_sleep(2);\n", "002_big.sql": large_file("first_content")})
    runner = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(2)", timeout=30)
    second = large_file("second_content", megabytes=5)
    with open(tmp_path / "002_big.sql", "r+") as handle:  # the same file, new bytes: no rename
        handle.write(second)
        handle.truncate()
    assert runner.wait(timeout=120) == EXIT_TRANSIENT
    err = runner.stderr.read()
    assert "002_big.sql changed while the runner was applying it" in err
    assert "rolled back" in err
    assert db.applied() == ["001_slow.sql"]
    assert not {"first_content", "second_content"} & db.tables()

    again = db.run("--dir", str(tmp_path))
    assert again.code == EXIT_OK, again.output
    assert "second_content" in db.tables()
    assert recorded_checksum(db, "002_big.sql") == checksum(second)


# -- item 8: settings that change how the server reads the statements after them ------------

CHANGES = [
    "SET standard_conforming_strings = off;",
    "SET SESSION standard_conforming_strings TO off;",
    "set local Standard_Conforming_Strings = 'off';",
    "ALTER DATABASE current SET standard_conforming_strings = off;",
    "SELECT set_config('standard_conforming_strings', 'off', false);",
    "DO $$ BEGIN EXECUTE 'SET standard_conforming_strings = off'; END $$;",
    "SET client_encoding = 'LATIN1';",
    "SET NAMES 'LATIN1';",
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_migration_changing_how_later_statements_are_read_is_refused_by_validate_and_apply(db, tmp_path, change):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (v text);\n-- legacy data\n" + change + "\nINSERT INTO a VALUES ('\\');\n"})
    checked = db.run("validate", "--dir", str(tmp_path))
    assert checked.code == EXIT_BAD_INPUT, checked.output
    assert "001_a.sql:3: " in checked.err
    assert "changes how PostgreSQL reads the statements after it" in checked.err
    applied = db.run("--dir", str(tmp_path))
    assert applied.code == EXIT_BAD_INPUT
    assert db.applied() == [] and "a" not in db.tables()


@pytest.mark.parametrize("mention", [
    "SHOW standard_conforming_strings;",
    "-- SET standard_conforming_strings = off was needed once\nSELECT 1;",
    "SELECT 1 /* SET client_encoding = 'LATIN1' */;",
    "COMMENT ON TABLE a IS 'loaded with standard_conforming_strings on';",
    "SELECT current_setting('client_encoding');",
    "RESET standard_conforming_strings;",
    "SET standard_conforming_strings TO DEFAULT;",
    # pg_dump's header: the values the runner reads and sends with anyway
    "SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n"
    "SELECT pg_catalog.set_config('search_path', '', false);",
])
def test_a_migration_that_only_mentions_those_settings_runs(db, tmp_path, mention):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (v text);\n" + mention + "\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output


def test_a_database_whose_sessions_start_with_standard_conforming_strings_off_is_refused(db, tmp_path):
    db.execute(f'ALTER DATABASE "{db.name}" SET standard_conforming_strings = off')
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (v text);\nINSERT INTO a VALUES ('\\');\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "standard_conforming_strings is off" in result.err
    assert "ALTER DATABASE" in result.err  # the hint names the fix
    assert db.applied() == [] and "a" not in db.tables()


@pytest.fixture
def tiny_segments(monkeypatch):
    from runner import migration, statements

    monkeypatch.setattr(statements, "SEGMENT_CHARS", 60)
    monkeypatch.setattr(statements, "_READ_BYTES", 16)
    monkeypatch.setattr(migration, "_READ_BYTES", 16)  # no file is small enough to run from its listing


def test_a_setting_changed_by_dynamic_sql_stops_the_file_at_the_next_segment_and_rolls_it_back(db, tmp_path, tiny_segments):
    # What the checks cannot see (the name built at run time) is caught before the server reads
    # another segment with the changed setting.
    body = "".join(f"INSERT INTO a VALUES ('row {i} \\');\n" for i in range(20))
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (v text);\n"
                     "DO $$ BEGIN EXECUTE format('SET %s = off', 'standard_' || 'conforming_strings'); END $$;\n" + body})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT, result.output
    assert "001_a.sql turned standard_conforming_strings off" in result.err
    assert "rolled back" in result.err
    assert db.applied() == [] and "a" not in db.tables()
