"""Multi-statement files behave as `psql -v ON_ERROR_STOP=1 -1 -f FILE`; what cannot run is refused.

The statement cut is compared with PostgreSQL's own parser (pglast) on the shipped files,
on the fixtures, and on SQL generated from the lexical pieces that decide where a
statement ends (hypothesis).
"""

import subprocess
from pathlib import Path

import pglast
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runner.errors import EXIT_BAD_INPUT, EXIT_MIGRATION_FAILED, EXIT_OK, MigrationFileError
from runner.scratch import _binaries
from runner.statements import plan, split
from tests.pg import ROOT, write

FIXTURES = Path(__file__).parent / "fixtures" / "multi_statement"
FILES = sorted(FIXTURES.glob("*.sql"))


def psql_apply(db, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(_binaries() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path), db.dsn],
        capture_output=True, text=True,
    )


def postgres_split(text: str) -> list[str]:
    return [s.strip() for s in pglast.split(text)]


def runner_split(text: str) -> list[str]:
    return [s.text.rstrip(";").strip() for s in split("f.sql", text)]


def plan_text(tmp_path, text: str, name: str = "001_f.sql"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return plan(name, path)


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


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_statement_boundaries_match_postgresqls_parser_on_every_fixture(path):
    text = path.read_text()
    assert runner_split(text) == postgres_split(text)


def test_statement_boundaries_match_postgresqls_parser_on_shipped_and_benchmark_files():
    from bench import workload

    texts = [p.read_text() for p in sorted((ROOT / "migrations").glob("*.sql"))]
    texts += [workload.migration(i) for i in range(10)]
    for text in texts:
        assert runner_split(text) == postgres_split(text)


def test_a_drop_inside_a_nested_comment_of_a_no_transaction_file_does_not_run(db, tmp_path):
    write(tmp_path, {"001_keep.sql": "CREATE TABLE keep (id int);\n", "002_index.sql": (
        "-- runner:no-transaction\n"
        "/* outer comment /* nested */\n"
        "DROP TABLE keep;\n"
        "still the outer comment */\n"
        "CREATE INDEX CONCURRENTLY keep_id_idx ON keep (id);\n"
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert "keep" in db.tables()
    assert db.query("SELECT indexname FROM pg_indexes WHERE tablename = 'keep'") == [("keep_id_idx",)]


def test_an_escape_string_continued_on_the_next_line_keeps_its_escapes():
    # scan.l: a quote after whitespace with a newline continues E'...' in escape mode,
    # so \' below is a quote inside the string, and the ; after it is too.
    text = "SELECT E'first'\n'\\'; DROP TABLE t; --';\nSELECT 2;\n"
    assert runner_split(text) == postgres_split(text) == ["SELECT E'first'\n'\\'; DROP TABLE t; --'", "SELECT 2"]


def test_an_empty_statement_is_not_counted_as_one():
    assert runner_split("SELECT 1;;\n;\nSELECT 2;") == ["SELECT 1", "SELECT 2"]


def test_statement_lines_count_from_the_first_sql_token():
    statements = split("f.sql", "-- header\n\n/* block */ SELECT 1;\n\n  -- lead\n  SELECT\n 2;\n")
    assert [(s.number, s.line) for s in statements] == [(1, 3), (2, 6)]


def test_semicolons_inside_rule_actions_do_not_split_the_statement():
    text = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1;"
    assert [s.words for s in split("f.sql", text)] == [("CREATE", "RULE"), ("SELECT",)]
    assert runner_split(text) == postgres_split(text)


def test_a_last_statement_without_semicolon_is_kept():
    assert [s.text for s in split("f.sql", "SELECT 1;\nSELECT 2\n\n")] == ["SELECT 1;", "SELECT 2"]


def test_hash_is_an_operator_not_a_comment():
    text = "SELECT 5 # 3 AS xor;\nSELECT 2;\n"
    assert runner_split(text) == postgres_split(text)


def test_a_backslash_in_a_standard_string_is_a_plain_character():
    text = "SELECT 'C:\\';\nSELECT E'it\\'s; one';\nSELECT 3;\n"
    assert runner_split(text) == postgres_split(text) == ["SELECT 'C:\\'", "SELECT E'it\\'s; one'", "SELECT 3"]


def test_a_dollar_inside_a_word_does_not_open_a_dollar_quote():
    text = "CREATE TABLE a$b (x$ int);\nSELECT $tag$ ; $notag$ ; $tag$;\nSELECT 3;\n"
    assert runner_split(text) == postgres_split(text)


# -- generated SQL, compared with PostgreSQL's parser ------------------------------------

_words = st.sampled_from(["a", "b", "atomic", "x$y", "E", "U", "N", "B", "X", "t1", "_z"])
# psql's rule counts BEGIN, CASE and END words in a routine's body, so like psql the runner
# cannot take them as bare column names there; elsewhere they are ordinary words.
_keywords_as_names = st.sampled_from(["begin", "end", "case"])
_junk = st.text(alphabet="ab ;'\"$\\/*-\n()E&", max_size=12)


def _dollar_body(tag: str):
    return _junk.filter(lambda s: f"${tag}$" not in s and not s.endswith("$")).map(lambda s: f"${tag}${s}${tag}$")


_literals = st.one_of(
    _junk.map(lambda s: "'" + s.replace("'", "''") + "'"),  # standard: backslash is a plain character
    _junk.map(lambda s: "E'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"),
    st.tuples(_junk, _junk).map(lambda p: "E'" + p[0].replace("\\", "\\\\").replace("'", "''") + "'\n'"
                                + p[1].replace("\\", "\\\\").replace("'", "\\'") + "'"),
    _junk.map(lambda s: "U&'" + s.replace("\\", "").replace("'", "''") + "'"),
    _junk.map(lambda s: "N'" + s.replace("'", "''") + "'"),
    st.just("B'0101'"), st.just("X'1F'"),
    st.sampled_from(["", "t", "tag", "_x1"]).flatmap(_dollar_body),
    st.integers(0, 10**6).map(str),
)
# Parenthesized values (rows of a VALUES list, nested groups), with the pieces inside.
_literals = st.one_of(
    _literals,
    _literals.map(lambda v: f"({v})"),
    st.tuples(_literals, _literals).map(lambda p: f"ROW({p[0]}, {p[1]})"),
    _literals.map(lambda v: f"(({v}))"),
)
_identifiers = st.one_of(_words, _junk.map(lambda s: '"' + (s or "q").replace('"', '""') + '"'))
_any_identifier = st.one_of(_identifiers, _keywords_as_names)


def _inside_comment(text: str) -> str:
    """`text` without comment delimiters; removing one can join two more (`//**` -> `/*`)."""
    while "/*" in text or "*/" in text:
        text = text.replace("*/", "").replace("/*", "")
    return text


_comments = st.one_of(
    st.just(" "), st.just("\n"),
    _junk.map(lambda s: "-- " + s.replace("\n", " ") + "\n"),
    st.tuples(_junk, _junk).map(lambda p: "/* " + _inside_comment(p[0]) + " /* " + _inside_comment(p[1]) + " */ ; */"),
)


@st.composite
def _select(draw, names=_any_identifier):
    items = draw(st.lists(st.tuples(_literals, names), min_size=1, max_size=4))
    gap = draw(_comments)
    return "SELECT " + f",{gap}".join(f"{value} AS {name}" for value, name in items)


@st.composite
def _routine(draw):
    body = draw(st.lists(_select(_identifiers), min_size=1, max_size=3))
    case = draw(st.booleans())
    value = "CASE WHEN true THEN 1 ELSE 2 END" if case else "1"
    return (f"CREATE FUNCTION f{draw(st.integers(0, 99))}() RETURNS int LANGUAGE sql BEGIN ATOMIC "
            + "; ".join(body) + f"; SELECT {value}; END")


_statements = st.lists(st.one_of(_select(), _routine()), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements=_statements, gaps=st.lists(_comments, min_size=6, max_size=6))
@example(statements=["SELECT 1 AS a"], gaps=["/* a /* b */ ; DROP TABLE t; */"] * 6)
def test_generated_statements_split_as_postgresqls_parser_splits_them(statements, gaps):
    text = "".join(f"{gaps[i % len(gaps)]}{s};" for i, s in enumerate(statements))
    assert runner_split(text) == postgres_split(text)


# -- what must not run, refused before anything does ------------------------------------


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
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "failed at statement 2 of 2 (001_w.sql:3)" in result.err
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


def test_commit_after_a_column_named_begin_is_still_refused(tmp_path):
    with pytest.raises(MigrationFileError, match=r"001_f.sql:2: COMMIT is transaction control"):
        plan_text(tmp_path, "CREATE TABLE t (begin int);\nCOMMIT;\nSELECT 1;\n")


def test_end_of_a_begin_atomic_body_is_not_transaction_control(tmp_path):
    script = plan_text(tmp_path, (FIXTURES / "002_functions.sql").read_text())
    assert script.count == 5


@pytest.mark.parametrize("command", ["\\i other.sql", "SELECT 1 \\gset", "\\set x 1"])
def test_psql_meta_commands_are_refused_with_their_line(db, tmp_path, command):
    write(tmp_path, {"001_a.sql": f"CREATE TABLE a (id int);\n{command}\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "001_a.sql:2: psql meta-command \\" in result.err
    assert db.tables() <= {"schema_migrations"}


@pytest.mark.parametrize("copy", ["COPY t FROM STDIN;\n1\n\\.\n", "COPY t (id) FROM stdin WITH (FORMAT csv);",
                                  "COPY (SELECT 1) TO STDOUT;"])
def test_copy_through_psql_is_refused_by_validate_and_apply(db, tmp_path, copy):
    write(tmp_path, {"001_t.sql": "CREATE TABLE t (id int);\n", "002_copy.sql": copy})
    checked = db.run("validate", "--dir", str(tmp_path))
    assert checked.code == EXIT_BAD_INPUT
    assert "002_copy.sql:1: COPY ... FROM STDIN / TO STDOUT" in checked.err
    applied = db.run("--dir", str(tmp_path))
    assert applied.code == EXIT_BAD_INPUT
    assert "another command is already in progress" not in applied.err
    assert db.applied() == []


def test_a_file_ending_inside_a_string_is_refused_with_the_line_it_opens(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\nCOMMENT ON TABLE a IS 'open;\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "001_a.sql:3: unterminated quoted string" in result.err


def test_a_bad_file_among_pending_ones_stops_the_run_before_the_first_is_applied(db, tmp_path):
    write(tmp_path, {"001_ok.sql": "CREATE TABLE ok (id int);\n", "002_bad.sql": "SELECT 1;\n\\set x 1\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_BAD_INPUT
    assert db.applied() == []


def test_every_bad_file_is_named_at_once(db, tmp_path):
    write(tmp_path, {"001_a.sql": "SELECT 1;\nCOMMIT;\nSELECT 2;\n", "002_b.sql": "\\i x.sql\n", "003_c.sql": "-- only\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "3 migrations cannot run" in result.err
    assert all(name in result.err for name in ("001_a.sql:2", "002_b.sql:1", "003_c.sql"))


# -- syntax errors: a typo is a typo ------------------------------------------------------


def test_validate_finds_a_typo_with_postgresqls_parser(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n\nCREATE TABEL b (id int);\n"})
    result = db.run("validate", "--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert '001_a.sql:3 (statement 2): syntax error at or near "TABEL"' in result.err


def test_a_syntax_error_at_apply_names_its_line_and_says_nothing_about_splitting(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n\nCREATE TABEL b (id int);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "failed at statement 2 of 2 (001_a.sql:3)" in result.err
    assert 'SQLSTATE 42601: syntax error at or near "TABEL"' in result.err
    assert "batch" not in result.output and "split" not in result.output
    assert "a" not in db.tables()


def test_validate_reports_a_split_that_disagrees_with_postgresqls_parser(tmp_path, monkeypatch):
    from runner import scanner

    real = scanner.scan

    def cuts_too_much(text, pos=0, final=True):  # a scanner bug, to see the report
        return real(text.replace("/* ; */", "   ;   "), pos, final)

    monkeypatch.setattr(scanner, "scan", cuts_too_much)
    (tmp_path / "001_a.sql").write_text("SELECT 1 /* ; */ + 1;\n")
    from runner import run
    from runner.output import Reporter

    with pytest.raises(MigrationFileError, match="cut this part into 2 statements and PostgreSQL's parser into 1"):
        run.validate(run.Options(directory=str(tmp_path)), Reporter())
