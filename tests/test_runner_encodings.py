"""Databases whose encoding is not UTF-8: what psql does, without a crash, in text and JSON."""

import json

import pytest

from runner.cli import EXIT_BUG
from runner.errors import EXIT_MIGRATION_FAILED, EXIT_OK
from tests.pg import write


@pytest.fixture
def encoded_db(pg_server, request):
    database = pg_server.create_database(encoding=request.param)
    yield database
    pg_server.drop_database(database.name)


def json_lines(result) -> list[dict]:
    """Every line the runner printed, each of which must be one JSON object."""
    records = []
    for line in result.output.splitlines():
        records.append(json.loads(line))
        assert isinstance(records[-1], dict), line
    return records


@pytest.mark.parametrize("encoded_db", ["SQL_ASCII"], indirect=True)
def test_a_sql_ascii_database_stores_the_files_utf8_bytes_as_psql_does(encoded_db, tmp_path):
    write(tmp_path, {"001_notes.sql": "-- café, naïve: comments may hold any character\n"
                                       "CREATE TABLE notes (v text);\nINSERT INTO notes VALUES ('é€');\n"})
    result = encoded_db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert "Traceback" not in result.output
    # SQL_ASCII converts nothing: the bytes stored are the file's bytes, as psql -f stores them.
    assert bytes(encoded_db.query("SELECT v::bytea FROM notes")[0][0]) == "é€".encode("utf-8")


@pytest.mark.parametrize("encoded_db", ["SQL_ASCII", "LATIN1"], indirect=True)
def test_json_output_stays_one_object_per_line_on_a_non_utf8_database(encoded_db, tmp_path):
    write(tmp_path, {"001_a.sql": "-- résumé\nCREATE TABLE a (v text);\n", "002_b.sql": "-- €\nSELECT 1;\n"})
    result = encoded_db.run("--dir", str(tmp_path), "--log-format", "json")
    records = json_lines(result)
    assert records[-1]["event"] in ("summary", "failed")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("encoded_db", ["LATIN1"], indirect=True)
def test_a_character_the_database_cannot_store_is_named_with_file_and_line(encoded_db, tmp_path):
    write(tmp_path, {
        "001_prices.sql": "CREATE TABLE prices (label text);\nINSERT INTO prices VALUES ('café');\n",
        "002_currency.sql": "CREATE TABLE currency (sign text);\n-- the euro sign: €\nINSERT INTO currency VALUES ('x');\n",
    })
    result = encoded_db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED, result.output
    assert "migration 002_currency.sql failed" in result.err
    assert "(002_currency.sql:2)" in result.err
    assert "LATIN1, which has no '€'" in result.err and "comments included" in result.err
    # The file before it applied, with é converted to LATIN1 as psql would; the failing one rolled back.
    [(label, stored)] = encoded_db.query("SELECT label, convert_to(label, 'LATIN1') FROM prices")
    assert (label, bytes(stored)) == ("café", b"caf\xe9")
    assert "currency" not in encoded_db.tables()
    assert encoded_db.applied() == ["001_prices.sql"]


@pytest.mark.parametrize("encoded_db", ["LATIN1"], indirect=True)
def test_a_character_the_database_cannot_store_in_a_no_transaction_file_names_its_statement(encoded_db, tmp_path):
    write(tmp_path, {"001_a.sql": "-- runner:no-transaction\nCREATE TABLE t (v text);\n\n"
                                  "INSERT INTO t\n  VALUES ('€');\n"})
    result = encoded_db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED, result.output
    assert "failed at statement 2 of 2 (001_a.sql:5)" in result.err
    assert "Traceback" not in result.output


@pytest.mark.parametrize("encoded_db", ["SQL_ASCII"], indirect=True)
def test_bytes_that_are_not_utf8_in_a_sql_ascii_database_are_shown_not_fatal(encoded_db, tmp_path):
    # Data written by a LATIN1 application into a SQL_ASCII database: é as the single byte 0xe9.
    encoded_db.execute("CREATE TABLE legacy AS SELECT convert_from('\\xe9'::bytea, 'SQL_ASCII') AS v")
    write(tmp_path, {
        "001_notice.sql": "DO $$ BEGIN RAISE NOTICE 'legacy value: %', (SELECT v FROM legacy); END $$;\n",
        "002_cast.sql": "CREATE TABLE n AS SELECT v::int AS i FROM legacy;\n",
    })
    result = encoded_db.run("--dir", str(tmp_path), "--log-format", "json")
    records = json_lines(result)
    assert result.code == EXIT_MIGRATION_FAILED
    assert encoded_db.applied() == ["001_notice.sql"]
    failed = records[-1]
    assert failed["event"] == "failed" and failed["migration"] == "002_cast.sql" and failed["sqlstate"] == "22P02"
    assert 'invalid input syntax for type integer: "\ufffd"' in failed["message"]


def test_an_unexpected_error_in_json_mode_is_still_one_json_object(db, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something the runner did not expect")

    monkeypatch.setattr("runner.run.plan_all", broken)
    write(tmp_path, {"001_a.sql": "SELECT 1;\n"})
    result = db.run("--dir", str(tmp_path), "--log-format", "json")
    records = json_lines(result)
    assert result.code == EXIT_BUG
    assert records[-1]["event"] == "failed" and records[-1]["error"] == "internal_error"
    assert "RuntimeError: something the runner did not expect" in records[-1]["message"]
    assert "Traceback" in records[-1]["traceback"]
