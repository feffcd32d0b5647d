"""Multi-statement files behave as `psql -v ON_ERROR_STOP=1 -1 -f FILE`; what cannot run is refused."""

import subprocess
from pathlib import Path

import pglast
import pytest

from runner.errors import EXIT_BAD_INPUT, EXIT_MIGRATION_FAILED, EXIT_OK, MigrationFileError
from runner.scratch import _binaries
from runner.statements import plan, split
from tests.pg import ROOT, write

FIXTURES = Path(__file__).parent / "fixtures" / "multi_statement"
FILES = sorted(FIXTURES.glob("*.sql"))
# Files where the lexer-based split differs from PostgreSQL's (pglast's) statement boundaries.
SQLPARSE_QUIRKS = {"006_nested_comment.sql"}  # nested block comments


def psql_apply(db, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(_binaries() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path), db.dsn],
        capture_output=True, text=True,
    )


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_runner_leaves_the_same_database_as_psql(pg_server, path, tmp_path):
    by_psql, by_runner = pg_server.create_database(), pg_server.create_database()
    try:
        psql = psql_apply(by_psql, path)
        assert psql.returncode == 0, psql.stderr
        result = by_runner.run("--dir", str(write(tmp_path, {path.name: path.read_text()})))
        assert result.code == EXIT_OK, result.output
        assert by_runner.dump() == by_psql.dump()
    finally:
        pg_server.drop_database(by_psql.name)
        pg_server.drop_database(by_runner.name)


def test_a_file_failing_part_way_leaves_both_psql_and_runner_with_nothing(pg_server, tmp_path):
    text = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES ('x');\n"
    path = write(tmp_path, {"001_fails.sql": text}) / "001_fails.sql"
    by_psql, by_runner = pg_server.create_database(), pg_server.create_database()
    try:
        empty = by_psql.dump()
        assert psql_apply(by_psql, path).returncode != 0
        assert by_runner.run("--dir", str(tmp_path)).code == EXIT_MIGRATION_FAILED
        assert by_psql.dump() == by_runner.dump() == empty
    finally:
        pg_server.drop_database(by_psql.name)
        pg_server.drop_database(by_runner.name)


@pytest.mark.parametrize("path", [p for p in FILES if p.name not in SQLPARSE_QUIRKS], ids=lambda p: p.name)
def test_statement_count_matches_postgresqls_own_parser(path):
    text = path.read_text()
    assert len(split(path.name, text)) == len(pglast.split(text))


def test_a_statement_cut_by_the_splitter_still_runs_whole(db, tmp_path):
    write(tmp_path, {"006_nested_comment.sql": (FIXTURES / "006_nested_comment.sql").read_text()})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert "running the file as one batch so PostgreSQL's parser decides" in result.out
    assert db.query("SELECT id, path FROM nested ORDER BY id") == [(1, "C:\\"), (2, "a\\b")]


def test_batch_fallback_still_reports_a_real_error_with_its_line(db, tmp_path):
    write(tmp_path, {"001_x.sql": "/* a /* b; */ c; */\nCREATE TABLE x (id int);\nSELECT FROM WHERE;\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "(001_x.sql:3)" in result.err
    assert "x" not in db.tables()


def test_own_begin_commit_wrapper_runs_as_one_transaction_with_its_options(db, tmp_path):
    write(tmp_path, {"001_w.sql": (
        "BEGIN ISOLATION LEVEL SERIALIZABLE;\n"
        "CREATE TABLE w AS SELECT current_setting('transaction_isolation') AS level;\n"
        "COMMIT;\n"
    )})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert db.query("SELECT level FROM w") == [("serializable",)]
    assert db.applied() == ["001_w.sql"]


def test_own_wrapper_failing_leaves_nothing_and_no_tracking_row(db, tmp_path):
    write(tmp_path, {"001_w.sql": "BEGIN;\nCREATE TABLE w (id int);\nSELECT 1/0;\nCOMMIT;\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_MIGRATION_FAILED
    assert "w" not in db.tables()
    assert db.applied() == []


@pytest.mark.parametrize("statement", ["COMMIT;", "ROLLBACK;", "END;", "BEGIN;", "START TRANSACTION;", "ABORT;",
                                       "PREPARE TRANSACTION 'x';", "COMMIT PREPARED 'x';"])
def test_transaction_control_inside_a_file_is_refused_before_anything_runs(db, tmp_path, statement):
    write(tmp_path, {"001_a.sql": f"CREATE TABLE a (id int);\n{statement}\nCREATE TABLE b (id int);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "001_a.sql:2:" in result.err and "is transaction control" in result.err
    assert db.tables() <= {"schema_migrations"}


def test_commit_hidden_where_sqlparse_merges_statements_is_still_refused():
    with pytest.raises(MigrationFileError, match=r"f.sql:2: COMMIT is transaction control"):
        plan("f.sql", "CREATE TABLE t (begin int);\nCOMMIT;\nSELECT 1;\n", True)


def test_end_of_a_begin_atomic_body_is_not_transaction_control():
    script = plan("f.sql", (FIXTURES / "002_functions.sql").read_text(), True)
    assert script.count == 5


def test_psql_meta_commands_are_refused_with_their_line(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n\\i other.sql\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "001_a.sql:2: psql meta-command \\i is not SQL" in result.err
    assert db.tables() <= {"schema_migrations"}


def test_a_bad_file_among_pending_ones_stops_the_run_before_the_first_is_applied(db, tmp_path):
    write(tmp_path, {"001_ok.sql": "CREATE TABLE ok (id int);\n", "002_bad.sql": "SELECT 1;\n\\set x 1\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_BAD_INPUT
    assert db.applied() == []


def test_statement_lines_count_from_the_first_sql_token():
    statements = split("f.sql", "-- header\n\n/* block */ SELECT 1;\n\n  -- lead\n  SELECT\n 2;\n")
    assert [(s.number, s.line) for s in statements] == [(1, 3), (2, 6)]


def test_semicolons_inside_rule_actions_do_not_split_the_statement():
    text = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1;"
    assert [s.words for s in split("f.sql", text)] == [("CREATE", "RULE"), ("SELECT",)]
    assert len(pglast.split(text)) == 2


def test_a_last_statement_without_semicolon_is_kept():
    assert [s.text for s in split("f.sql", "SELECT 1;\nSELECT 2\n\n")] == ["SELECT 1;", "SELECT 2"]


def test_hash_is_an_operator_not_a_comment():
    text = "SELECT 5 # 3 AS xor;\nSELECT 2;\n"
    assert len(split("f.sql", text)) == len(pglast.split(text)) == 2


def test_escape_strings_keep_escaped_quotes_and_semicolons():
    text = "SELECT E'it\\'s; still one';\nSELECT 'C:\\';\nSELECT 3;\n"
    assert [s.text for s in split("f.sql", text)] == ["SELECT E'it\\'s; still one';", "SELECT 'C:\\';", "SELECT 3;"]
    assert len(pglast.split(text)) == 3


def test_statement_boundaries_match_postgresql_on_every_shipped_and_generated_file():
    from bench import workload

    texts = [p.read_text() for p in sorted((ROOT / "migrations").glob("*.sql"))]
    texts += [p.read_text() for p in FILES if p.name not in SQLPARSE_QUIRKS]
    texts += [workload.migration(i) for i in range(10)]
    for text in texts:
        ours = [s.text.rstrip(";").strip() for s in split("f.sql", text)]
        theirs = [s.strip() for s in pglast.split(text)]
        assert ours == theirs


def test_batch_fallback_runtime_error_does_not_guess_the_statement(db, tmp_path):
    write(tmp_path, {"001_x.sql": "/* a /* b; */ c; */\nCREATE TABLE x (id int);\nSELECT 1/0;\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "(it ran as one batch, and PostgreSQL does not say which statement failed)" in result.err
    assert "SQLSTATE 22012: division by zero" in result.err
    assert "x" not in db.tables()
