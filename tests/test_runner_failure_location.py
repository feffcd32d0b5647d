"""A failing migration's statements run once per attempt, and the error still names the statement."""

import pytest

from runner import migration, statements
from runner.errors import EXIT_MIGRATION_FAILED, EXIT_OK
from tests.pg import write

# `calls` counts how often statement 1 ran: sequences are not rolled back.
SETUP = "CREATE SEQUENCE calls;\nCREATE TABLE users (id int PRIMARY KEY);\n"


def calls(db) -> int:
    return db.query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM calls")[0][0]


def test_a_constraint_violation_runs_the_migration_once_and_names_statement_and_line(db, tmp_path):
    write(tmp_path, {"001_setup.sql": SETUP})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_users.sql": (
        "SELECT nextval('calls');\n"
        "SELECT pg_sleep(0.3);\n"
        "-- the app's first user\n"
        "INSERT INTO users VALUES (1);\n"
        "INSERT INTO users\n"
        "  VALUES (1);\n"
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "migration 002_users.sql failed at statement 4 of 4 (002_users.sql:5)" in result.err
    assert "SQLSTATE 23505" in result.err and "INSERT INTO users\n      VALUES (1);" in result.err
    assert "one by one" not in result.output
    assert calls(db) == 1  # statement 1 ran once: nothing was run again to find statement 4
    assert db.query("SELECT count(*) FROM users") == [(0,)]


def test_a_statement_timeout_is_located_without_running_the_migration_again(db, tmp_path):
    write(tmp_path, {"001_setup.sql": SETUP})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_slow.sql": "SELECT nextval('calls');\nCREATE TABLE t (id int);\nSELECT pg_sleep(5);\n"})
    result = db.run("--dir", str(tmp_path), "--statement-timeout", "500ms")
    assert result.code == EXIT_MIGRATION_FAILED
    assert "failed at statement 3 of 3 (002_slow.sql:3)" in result.err
    assert "SQLSTATE 57014" in result.err
    assert calls(db) == 1
    assert "t" not in db.tables()


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize("failing_last", [False, True])
def test_an_error_raised_inside_a_function_in_a_file_of_several_segments_names_its_statement(
        db, tmp_path, monkeypatch, wrapped, failing_last):
    monkeypatch.setattr(statements, "SEGMENT_CHARS", 120)
    monkeypatch.setattr(statements, "_READ_BYTES", 64)
    monkeypatch.setattr(migration, "_READ_BYTES", 64)  # no file is small enough to run from its listing
    write(tmp_path, {"001_setup.sql": SETUP})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    body = "".join(f"INSERT INTO users VALUES ({n}); -- row {n}\n" for n in range(2, 30))
    fail = "DO $$ BEGIN\n  RAISE EXCEPTION 'stop here';\nEND $$;\n"
    after = "INSERT INTO users VALUES (100);\n"
    text = "SELECT nextval('calls');\n" + body + (after + fail if failing_last else fail + after)
    write(tmp_path, {"002_big.sql": "BEGIN;\n" + text + "COMMIT;\n" if wrapped else text})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    number, line = (31, 31) if failing_last else (30, 30)
    assert f"failed at statement {number} of 31 (002_big.sql:{line + wrapped})" in result.err
    assert "P0001: stop here" in result.err
    assert calls(db) == 1
    assert db.query("SELECT count(*) FROM users") == [(0,)]


def test_a_file_wrapped_in_its_own_transaction_numbers_its_statements_without_the_wrapper(db, tmp_path):
    write(tmp_path, {"001_setup.sql": SETUP + "INSERT INTO users VALUES (7);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_wrapped.sql": (
        "BEGIN;\nSELECT nextval('calls');\nUPDATE users SET id = id + 1;\nINSERT INTO users VALUES (8);\nCOMMIT;\n")})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "failed at statement 3 of 3 (002_wrapped.sql:4)" in result.err
    assert calls(db) == 1


def test_a_deferred_constraint_failing_at_commit_says_so(db, tmp_path):
    write(tmp_path, {"001_deferred.sql": (
        "CREATE TABLE parent (id int PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO child VALUES (1);\n"
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "migration 001_deferred.sql failed at COMMIT, after its 3 statements ran" in result.err
    assert "SQLSTATE 23503" in result.err
    assert "child" not in db.tables()


@pytest.mark.parametrize("tail", ["", "\n-- the end, without a semicolon"])
def test_a_last_statement_without_a_semicolon_is_still_located(db, tmp_path, tail):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1), (1)" + tail})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "failed at statement 2 of 2 (001_users.sql:2)" in result.err


def test_a_one_statement_migration_failing_without_a_position_names_its_statement_not_its_row(db, tmp_path):
    # A query of one statement carries no marker of its own: the tail's marker tells its failure
    # from a failure of the tracking row.
    write(tmp_path, {"001_setup.sql": SETUP})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_dup.sql": "INSERT INTO users VALUES (1), (1);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED, result.output
    assert "failed at statement 1 of 1 (002_dup.sql:1)" in result.err
    assert "SQLSTATE 23505" in result.err and "could not be written" not in result.err


def test_segments_of_one_statement_each_are_located_without_markers(db, tmp_path, monkeypatch):
    # Each statement is a segment (and a query) of its own: the statements of the queries that
    # completed count as completed, though no marker followed them.
    monkeypatch.setattr(statements, "SEGMENT_CHARS", 10)
    monkeypatch.setattr(statements, "_READ_BYTES", 16)
    monkeypatch.setattr(migration, "_READ_BYTES", 16)
    write(tmp_path, {"001_setup.sql": SETUP})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    rows = "".join(f"INSERT INTO users VALUES ({n});\n" for n in range(1, 6))
    write(tmp_path, {"002_rows.sql": "SELECT nextval('calls');\n" + rows + "INSERT INTO users VALUES (3);\n"
                     + "INSERT INTO users VALUES (7);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED, result.output
    assert "failed at statement 7 of 8 (002_rows.sql:7)" in result.err
    assert calls(db) == 1
    assert db.query("SELECT count(*) FROM users") == [(0,)]
