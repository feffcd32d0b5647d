"""Applying migrations: once, in order, atomically, with errors a person can act on."""

import json
from urllib.parse import quote

import pytest

from runner.errors import EXIT_BAD_INPUT, EXIT_MIGRATION_FAILED, EXIT_OK
from tests.pg import ROOT, write

USERS = "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);\n"


def test_applies_pending_migrations_in_file_name_order(db, tmp_path):
    write(tmp_path, {
        "002_b.sql": "INSERT INTO log VALUES ('002');\n",
        "001_a.sql": "CREATE TABLE log (v text);\n",
        "010_c.sql": "INSERT INTO log VALUES ('010');\n",
    })
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.applied() == ["001_a.sql", "002_b.sql", "010_c.sql"]
    assert db.query("SELECT v FROM log ORDER BY ctid") == [("002",), ("010",)]


def test_second_run_applies_nothing(db, tmp_path):
    write(tmp_path, {"001_users.sql": USERS})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    again = db.run("--dir", str(tmp_path))
    assert again.code == EXIT_OK
    assert "nothing to apply; 1 migration already applied" in again.out
    assert len(db.tracking_rows()) == 1


def test_files_sharing_a_version_are_both_applied(db, tmp_path):
    write(tmp_path, {
        "20251124000002_user_api_keys.sql": "CREATE TABLE user_api_keys (id int);\n",
        "20251124000002_user_api_keys_index.sql": "CREATE INDEX ON user_api_keys (id);\n",
    })
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert db.applied() == ["20251124000002_user_api_keys.sql", "20251124000002_user_api_keys_index.sql"]


def test_each_migration_line_reports_statements_and_duration(db, tmp_path):
    write(tmp_path, {"001_users.sql": USERS + "COMMENT ON TABLE users IS 'x; y';\n"})
    result = db.run("--dir", str(tmp_path))
    assert "applied 001_users.sql (2 statements, " in result.out
    assert "applied 1 migration; 0 already applied" in result.out
    row = db.query("SELECT statements, duration_ms >= 0, checksum IS NOT NULL, status FROM schema_migrations")
    assert row == [(2, True, True, "applied")]


def test_failing_migration_leaves_schema_and_tracking_table_as_before(db, tmp_path):
    write(tmp_path, {"001_users.sql": USERS})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    before = (db.dump(), db.tracking_rows())
    write(tmp_path, {"002_broken.sql": (
        "CREATE TABLE api_keys (id int);\n"
        "ALTER TABLE users ADD COLUMN name text;\n"
        "INSERT INTO users (email) VALUES ('a'), ('a');\n"
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);\n"
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert (db.dump(), db.tracking_rows()) == before


def test_failure_names_file_statement_line_sqlstate_detail_and_statement(db, tmp_path):
    write(tmp_path, {"001_users.sql": (
        "-- users\n"
        "CREATE TABLE users (id int PRIMARY KEY, email text);\n"
        "\n"
        "INSERT INTO users VALUES (1, 'a');\n"
        "INSERT INTO users\n"
        "  VALUES (1, 'b');\n"
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "migration 001_users.sql failed at statement 3 of 3 (001_users.sql:5)" in result.err
    assert "SQLSTATE 23505: duplicate key value violates unique constraint" in result.err
    assert "DETAIL: Key (id)=(1) already exists." in result.err
    assert "INSERT INTO users\n      VALUES (1, 'b');" in result.err
    assert "rolled back" in result.err
    assert "Traceback" not in result.output


def test_failure_shows_the_servers_hint(db, tmp_path):
    write(tmp_path, {"001_bad.sql": "SELECT * FROM generate_series(1, 'x'::text);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "SQLSTATE 42883" in result.err
    assert "HINT: No function matches" in result.err


def test_syntax_error_points_at_its_line(db, tmp_path):
    lines = ["CREATE TABLE t (id int);"] + [f"INSERT INTO t VALUES ({i});" for i in range(38)]
    lines.append("INSERT INTO t VALUES (40,, 41);")
    write(tmp_path, {"001_t.sql": "\n".join(lines) + "\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "(001_t.sql:40)" in result.err
    assert "SQLSTATE 42601" in result.err
    assert "t" not in db.tables()


def test_later_migrations_are_not_run_after_a_failure(db, tmp_path):
    write(tmp_path, {
        "001_ok.sql": "CREATE TABLE a (id int);\n",
        "002_bad.sql": "CREATE TABLE a (id int);\n",
        "003_later.sql": "CREATE TABLE c (id int);\n",
    })
    assert db.run("--dir", str(tmp_path)).code == EXIT_MIGRATION_FAILED
    assert db.applied() == ["001_ok.sql"]
    assert "c" not in db.tables()


def test_failure_summary_goes_to_the_termination_log(db, tmp_path):
    write(tmp_path / "m", {"001_bad.sql": "SELECT 1/0;\n"})
    log = tmp_path / "termination-log"
    log.write_text("")
    result = db.run("--dir", str(tmp_path / "m"), env={"TERMINATION_LOG": str(log)})
    assert result.code == EXIT_MIGRATION_FAILED
    text = log.read_text()
    assert text.startswith("exit 1: migration 001_bad.sql failed at statement 1 of 1")
    assert "22012: division by zero" in text


def test_json_log_format_writes_one_object_per_line(db, tmp_path):
    write(tmp_path, {"001_users.sql": USERS})
    result = db.run("--log-format", "json", "--dir", str(tmp_path))
    events = [json.loads(line) for line in result.out.splitlines()]
    applied = [e for e in events if e["event"] == "applied"]
    assert applied == [dict(applied[0], migration="001_users.sql", statements=1, attempts=1)]
    assert set(applied[0]) == {"time", "level", "event", "message", "migration", "statements", "duration_ms", "attempts"}
    summary = events[-1]
    assert (summary["event"], summary["command"], summary["counts"]) == ("summary", "apply", {"applied": 1, "already_applied": 0})


def test_json_failure_carries_location_fields(db, tmp_path):
    write(tmp_path, {"001_bad.sql": "SELECT 1;\nSELECT 1/0;\n"})
    result = db.run("--log-format", "json", "--dir", str(tmp_path))
    failure = json.loads(result.err.strip().splitlines()[-1])
    assert (failure["event"], failure["error"]) == ("failed", "migration_failed")
    assert failure["message"].startswith("migration 001_bad.sql failed at statement 2 of 2")
    assert (failure["migration"], failure["statement"], failure["line"], failure["sqlstate"]) == (
        "001_bad.sql", 2, 2, "22012")
    assert failure["exit_code"] == EXIT_MIGRATION_FAILED


def test_each_migration_starts_from_the_session_defaults(db, tmp_path):
    write(tmp_path, {
        "001_set.sql": "SET lock_timeout = '1h';\nSET search_path = pg_catalog;\n",
        "002_check.sql": (
            "CREATE TABLE public.seen AS SELECT current_setting('lock_timeout') AS lock_timeout, "
            "current_setting('statement_timeout') AS statement_timeout, "
            "current_setting('search_path') AS search_path;\n"
        ),
    })
    result = db.run("--dir", str(tmp_path), "--lock-timeout", "3s", "--statement-timeout", "2min")
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT * FROM seen") == [("3s", "2min", '"$user", public')]


def test_project_migrations_apply_cleanly_on_an_empty_database(db):
    result = db.run("--dir", str(ROOT / "migrations"))
    assert result.code == EXIT_OK, result.output
    assert {"users", "products", "user_api_keys"} <= db.tables()
    assert db.run("--dir", str(ROOT / "migrations")).code == EXIT_OK
    policies = db.query("SELECT policyname FROM pg_policies")
    assert policies == [("user_api_keys_owner",)]


def test_bad_timeout_value_is_a_usage_error(db, tmp_path):
    write(tmp_path, {"001_users.sql": USERS})
    result = db.run("--dir", str(tmp_path), "--lock-timeout", "five seconds")
    assert result.code == EXIT_BAD_INPUT
    assert "--lock-timeout (MIGRATION_LOCK_TIMEOUT) 'five seconds' is not a PostgreSQL duration" in result.err


def test_error_in_the_first_statement_points_at_its_line(db, tmp_path):
    write(tmp_path, {"001_first.sql": "-- header\n\nCREATE TABLE t (\n  id int,\n  id2 int REFERENCES nowhere (id)\n);\nSELECT 1;\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "failed at statement 1 of 2 (001_first.sql:3)" in result.err
    write(tmp_path, {"001_first.sql": "-- header\n\nCREATE TABLE t (\n  id int,,\n  x int\n);\nSELECT 1;\n"})
    result = db.run("--dir", str(tmp_path))
    assert "SQLSTATE 42601" in result.err and "(001_first.sql:4)" in result.err


@pytest.fixture
def other_role(db):
    """A role of this test's own (roles are server-wide), able to create tables in public."""
    role = f"r_{db.name}"
    db.execute(f"CREATE ROLE {role}; GRANT CREATE ON SCHEMA public TO {role}")
    yield role
    db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_a_migration_that_switches_role_does_not_leak_it_to_the_tracking_row_or_the_next_migration(db, tmp_path, other_role):
    write(tmp_path, {
        "001_as_owner.sql": f"SET ROLE {other_role};\nCREATE TABLE owned (id int);\n",
        "002_who.sql": "CREATE TABLE who AS SELECT current_user AS current, session_user AS session;\n",
    })
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT tableowner FROM pg_tables WHERE tablename IN ('owned', 'who') ORDER BY tablename") == [
        (other_role,), ("postgres",)]
    assert db.query("SELECT current, session FROM who") == [("postgres", "postgres")]
    assert db.applied() == ["001_as_owner.sql", "002_who.sql"]


def test_session_authorization_set_by_a_migration_is_reset_before_the_next(db, tmp_path, other_role):
    write(tmp_path, {
        "001_auth.sql": f"SET SESSION AUTHORIZATION {other_role};\nCREATE TABLE audited (id int);\n",
        "002_who.sql": "CREATE TABLE who AS SELECT current_user AS current, session_user AS session;\n",
    })
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert db.query("SELECT current, session FROM who") == [("postgres", "postgres")]


def test_a_no_transaction_migration_keeps_its_role_between_statements_and_resets_it_after(db, tmp_path, other_role):
    write(tmp_path, {
        "001_idx.sql": (f"-- runner:no-transaction\nSET ROLE {other_role};\nCREATE TABLE t (id int);\n"
                        "CREATE INDEX CONCURRENTLY t_id_idx ON t (id);\n"),
        "002_who.sql": "CREATE TABLE who AS SELECT current_user AS current;\n",
    })
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT tableowner FROM pg_tables WHERE tablename = 't'") == [(other_role,)]
    assert db.query("SELECT current FROM who") == [("postgres",)]
    assert db.applied() == ["001_idx.sql", "002_who.sql"]


def test_the_tracking_row_commits_in_the_same_transaction_as_the_migration(db, tmp_path):
    # If the row were written in its own transaction after the migration's COMMIT, a failure
    # of the row would leave an applied but unrecorded migration: make the row fail and look.
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    db.execute(
        "CREATE TABLE schema_migrations (id serial PRIMARY KEY, migration_name varchar(255) UNIQUE NOT NULL, "
        "applied_at timestamptz DEFAULT now(), checksum varchar(64), duration_ms integer, statements integer, "
        "status varchar(16) NOT NULL DEFAULT 'applied' CHECK (migration_name <> '001_a.sql'))"
    )
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "001_a.sql ran, but its row in public.schema_migrations could not be written" in result.err
    assert "a" not in db.tables()


@pytest.fixture
def tiny_segments(monkeypatch):
    """Files read in segments of a few statements, as files of many megabytes are."""
    from runner import migration, statements

    monkeypatch.setattr(statements, "SEGMENT_CHARS", 60)
    monkeypatch.setattr(statements, "_READ_BYTES", 16)
    monkeypatch.setattr(migration, "_READ_BYTES", 16)  # no file is small enough to run from its listing


def test_a_file_read_in_segments_applies_whole_in_one_transaction(db, tmp_path, tiny_segments):
    body = "".join(f"INSERT INTO t VALUES ({i}, 'row; {i}');\n" for i in range(40))
    write(tmp_path, {"001_t.sql": "CREATE TABLE t (id int, note text);\n" + body,
                     "002_wrapped.sql": "BEGIN;\n" + body.replace("INTO t", "INTO u").replace("CREATE", "") +
                                        "COMMIT;\n",
                     "000_u.sql": "CREATE TABLE u (id int, note text);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT count(*) FROM t") == [(40,)] and db.query("SELECT count(*) FROM u") == [(40,)]
    assert "applied 002_wrapped.sql (40 statements" in result.out


def test_an_error_in_a_later_segment_names_its_statement_and_line_and_rolls_back_all(db, tmp_path, tiny_segments):
    lines = ["CREATE TABLE t (id int PRIMARY KEY);"] + [f"INSERT INTO t VALUES ({i});" for i in range(30)]
    lines[25] = "INSERT INTO t VALUES (3);"  # a duplicate key: no position from the server
    lines[28] = "INSERT INTO t VALUES (1 +);"  # never reached
    write(tmp_path, {"001_t.sql": "\n".join(lines) + "\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "failed at statement 26 of 31 (001_t.sql:26)" in result.err
    assert "t" not in db.tables()


def test_a_runtime_error_after_a_multi_line_dollar_body_names_its_own_line(db, tmp_path):
    write(tmp_path, {"001_f.sql": (
        "CREATE FUNCTION two() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 2;\nEND;\n$$;\n"
        "CREATE TABLE t (id int PRIMARY KEY);\n"
        "INSERT INTO t VALUES (two()), (two());\n"  # line 7: a duplicate key, no position from the server
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "failed at statement 3 of 3 (001_f.sql:7)" in result.err
    assert "SQLSTATE 23505" in result.err


def test_an_error_with_a_position_in_the_first_statement_points_at_its_line(db, tmp_path):
    write(tmp_path, {"001_f.sql": "-- header\n\nSELECT 1\n  + 'x'::int;\nSELECT 2;\n"})  # 22P02 at line 4
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "SQLSTATE 22P02" in result.err
    assert "failed at statement 1 of 2 (001_f.sql:4)" in result.err


def test_a_successful_run_never_prints_the_password(db, tmp_path):
    role = f"r_{db.name}"
    secret = "Sup3r/S3cret@pw"
    db.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}' SUPERUSER")
    try:
        write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
        url = db.dsn.replace("postgresql://postgres@", f"postgresql://{role}:{quote(secret, safe='')}@")
        for args in (["--dir", str(tmp_path)], ["--dir", str(tmp_path), "status"],
                     ["--log-format", "json", "--dir", str(tmp_path)]):
            result = db.run(*args, env={"DATABASE_URL": url})
            assert result.code == EXIT_OK, result.output
            assert secret not in result.output and quote(secret, safe="") not in result.output
    finally:
        db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
