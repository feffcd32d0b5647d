"""The command line: dry run, status, new, exit codes for bad input."""

import re
from datetime import datetime, timezone

import pytest

from runner.errors import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_MIGRATION_FAILED, EXIT_OK, EXIT_PENDING
from runner.scaffold import new_migration
from tests.pg import ROOT, write

FILES = {"001_a.sql": "CREATE TABLE a (id int);\n", "002_b.sql": "CREATE TABLE b (id int);\nCREATE TABLE c (id int);\n"}


def test_dry_run_lists_pending_migrations_in_order_and_changes_nothing(db, tmp_path):
    write(tmp_path, FILES)
    result = db.run("--dir", str(tmp_path), "apply", "--dry-run")
    assert result.code == EXIT_OK
    lines = [line for line in result.out.splitlines() if line.startswith("would apply")]
    assert lines == [
        "would apply 001_a.sql (1 statement, in one transaction)",
        "would apply 002_b.sql (2 statements, in one transaction)",
    ]
    assert db.tables() == set()


def test_status_shows_each_migrations_state(db, tmp_path):
    write(tmp_path, {"001_a.sql": FILES["001_a.sql"]})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_b.sql": FILES["002_b.sql"]})
    result = db.run("--dir", str(tmp_path), "status")
    assert result.code == EXIT_OK
    assert re.search(r"001_a\.sql\s+applied", result.out)
    assert re.search(r"002_b\.sql\s+pending", result.out)
    assert "1 applied, 1 pending, 0 changed, 0 missing, 0 incomplete" in result.out


def test_status_check_exits_non_zero_while_anything_is_pending(db, tmp_path):
    write(tmp_path, FILES)
    assert db.run("--dir", str(tmp_path), "status", "--check").code == EXIT_PENDING
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert db.run("--dir", str(tmp_path), "status", "--check").code == EXIT_OK


def test_status_check_reports_changed_files_as_drift(db, tmp_path):
    write(tmp_path, FILES)
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id bigint);\n"})
    result = db.run("--dir", str(tmp_path), "status", "--check")
    assert result.code == EXIT_DRIFT
    assert re.search(r"001_a\.sql\s+CHANGED since applied", result.out)


def test_new_creates_a_timestamped_file_the_runner_accepts_once_filled(db, tmp_path):
    path = new_migration(str(tmp_path), "Add user API keys!", now=datetime(2025, 11, 24, 0, 0, 2, tzinfo=timezone.utc))
    assert path.name == "20251124000002_add_user_api_keys.sql"
    assert db.run("--dir", str(tmp_path)).code == EXIT_BAD_INPUT  # comments only, not applied by accident
    path.write_text(path.read_text() + "CREATE TABLE user_api_keys (id int);\n")
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert db.applied() == [path.name]


def test_new_command_prints_the_path_it_created(db, tmp_path):
    result = db.run("new", "backfill emails", "--dir", str(tmp_path))
    assert result.code == EXIT_OK
    created = list(tmp_path.iterdir())
    assert len(created) == 1 and re.fullmatch(r"\d{14}_backfill_emails\.sql", created[0].name)
    assert result.out.strip() == f"created {created[0]}"


def test_empty_and_comment_only_files_are_bad_input(db, tmp_path):
    write(tmp_path, {"001_empty.sql": "", "002_comments.sql": "-- todo\n/* later */\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "001_empty.sql: holds no SQL statement" in result.err


def test_invalid_utf8_is_bad_input_naming_the_line(db, tmp_path):
    (tmp_path / "001_latin1.sql").write_bytes(b"CREATE TABLE a (id int);\nCOMMENT ON TABLE a IS 'caf\xe9';\n")
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "001_latin1.sql: line 2 is not valid UTF-8 (byte 0xe9)" in result.err


def test_utf8_byte_order_mark_is_ignored(db, tmp_path):
    (tmp_path / "001_bom.sql").write_bytes("\ufeffCREATE TABLE café (id int);\n".encode("utf-8"))
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert "café" in db.tables()


def test_unknown_option_is_a_usage_error(db, tmp_path):
    assert db.run("--no-such-flag").code == EXIT_BAD_INPUT


def test_bad_numeric_environment_variable_is_a_usage_error(db):
    result = db.run(env={"MIGRATION_LOCK_RETRIES": "many"})
    assert result.code == EXIT_BAD_INPUT
    assert "MIGRATION_LOCK_RETRIES must be a whole number" in result.err


def test_expected_failures_print_no_traceback(db, tmp_path):
    write(tmp_path, {"001_a.sql": "SELECT 1/0;"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED
    assert "Traceback" not in result.output


def test_validate_checks_files_without_a_database(tmp_path):
    from runner import cli
    import contextlib, io

    write(tmp_path, FILES)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["validate", "--dir", str(tmp_path)], {}) == EXIT_OK
    assert "2 migrations valid (3 statements, syntax checked by PostgreSQL's parser)" in out.getvalue()
    write(tmp_path, {"003_c.sql": "SELECT 1;\nCOMMIT;\n"})
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["validate", "--dir", str(tmp_path)], {}) == EXIT_BAD_INPUT
    assert "003_c.sql:2: COMMIT is transaction control" in err.getvalue()


def test_status_in_json_gives_one_object_per_migration(db, tmp_path):
    import json

    write(tmp_path, {"001_a.sql": FILES["001_a.sql"]})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_b.sql": FILES["002_b.sql"]})
    result = db.run("--log-format", "json", "--dir", str(tmp_path), "status")
    states = [(e["migration"], e["state"]) for e in map(json.loads, result.out.splitlines()) if e["event"] == "migration_state"]
    assert states == [("001_a.sql", "applied"), ("002_b.sql", "pending")]


JSON_BASE = {"time", "level", "event", "message"}
FAILED_FIELDS = JSON_BASE | {"error", "exit_code", "hint", "migration", "statement", "line", "sqlstate"}


def json_records(text: str) -> list[dict]:
    import json

    return [json.loads(line) for line in text.splitlines()]  # a non-JSON line fails here


def assert_documented_shape(record: dict) -> None:
    from runner.output import EVENTS

    if record["event"] == "failed":
        assert set(record) == FAILED_FIELDS, record
        assert record["level"] == "error" and isinstance(record["exit_code"], int)
        return
    assert set(record) == JSON_BASE | set(EVENTS[record["event"]][2]), record


def test_every_json_line_has_the_documented_fields_for_its_event(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n", "002_b.sql": "SELECT 1;\nSELECT 1/0;\n"})
    runs = [
        db.run("--log-format", "json", "--dir", str(tmp_path), "validate"),
        db.run("--log-format", "json", "--dir", str(tmp_path), "apply", "--dry-run"),
        db.run("--log-format", "json", "--dir", str(tmp_path)),
        db.run("--log-format", "json", "--dir", str(tmp_path), "status"),
        db.run("--log-format", "json", "--dir", str(tmp_path / "nowhere")),
    ]
    events = set()
    for result in runs:
        for record in json_records(result.out) + json_records(result.err):
            assert_documented_shape(record)
            events.add(record["event"])
    assert {"directory", "connected", "lock_acquired", "applied", "would_apply", "migration_state", "summary",
            "failed"} <= events
    failure = json_records(runs[2].err)[-1]
    assert (failure["error"], failure["migration"], failure["statement"], failure["line"], failure["sqlstate"]) == (
        "migration_failed", "002_b.sql", 2, 2, "22012")
    assert failure["hint"] == "" and "division by zero" in failure["message"]


def test_json_mode_prints_nothing_but_json_even_when_a_library_warns(tmp_path):
    import subprocess
    import sys

    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    script = (
        "import sys, warnings\n"
        "from runner import cli, run\n"
        "validate = run.validate\n"
        "def warns_first(*args):\n"
        "    warnings.warn('from a library', DeprecationWarning)\n"
        "    return validate(*args)\n"
        "run.validate = warns_first\n"
        "sys.exit(cli.main(['--log-format', 'json', 'validate', '--dir', sys.argv[1]]))\n"
    )
    result = subprocess.run([sys.executable, "-W", "always", "-c", script, str(tmp_path)],
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert result.returncode == EXIT_OK, result.stderr
    records = json_records(result.stdout) + json_records(result.stderr)
    assert [(r["text"], r["category"]) for r in records if r["event"] == "warning"] == [
        ("from a library", "DeprecationWarning")]


def test_readme_documents_every_json_event_with_its_fields():
    import re as regex

    from runner.output import EVENTS

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## JSON log schema")[1].split("## Exit codes")[0]
    documented = {}
    for events, fields in regex.findall(r"^\|([^|]+)\|([^|]*)\|$", table, flags=regex.M):
        if "`" not in events:
            continue
        named = set(regex.findall(r"`(\w+)`", regex.sub(r"\([^)]*\)", "", fields)))
        for event in regex.findall(r"`(\w+)`", regex.sub(r"\([^)]*\)", "", events)):
            documented[event] = named
    assert set(documented) == set(EVENTS) | {"failed"}
    for event, (_, _, fields) in EVENTS.items():
        assert documented[event] == set(fields), event
    assert documented["failed"] == {"error", "exit_code", "hint", "migration", "statement", "line", "sqlstate"}


def test_a_database_error_outside_a_migration_is_transient(db, tmp_path, monkeypatch):
    import psycopg2

    from runner import history

    def connection_dropped(cursor):
        raise psycopg2.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(history.Tracking, "ensure", staticmethod(connection_dropped))
    write(tmp_path, {"001_a.sql": "SELECT 1;"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == 75
    assert "database error (SQLSTATE ?): server closed the connection unexpectedly" in result.err
    assert "Traceback" not in result.output


def test_new_with_several_directories_asks_which_instead_of_making_one_named_after_both(db, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    result = db.run("new", "add_notes", env={"MIGRATIONS_DIR": f"{first}:{second}"})
    assert result.code == EXIT_BAD_INPUT
    assert "MIGRATIONS_DIR names 2 directories" in result.err
    assert f"`python -m runner new add_notes --dir {second}`" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_new_into_a_directory_that_does_not_exist_is_refused_not_created(db, tmp_path):
    result = db.run("new", "add_notes", "--dir", str(tmp_path / "migratons"))
    assert result.code == EXIT_BAD_INPUT
    assert "does not exist" in result.err
    assert not (tmp_path / "migratons").exists()


@pytest.mark.parametrize("bad, suggested", [
    ("2025-01-15_add_users.sql", "20250115_add_users.sql"),
    ("V3__add_users.sql", "3_add_users.sql"),
    ("add_users.sql", None),
])
def test_the_hint_for_a_badly_named_file_suggests_a_name_that_works(tmp_path, bad, suggested):
    from runner.migration import MigrationFileError, parse_file_name, _FILE_NAME

    with pytest.raises(MigrationFileError) as raised:
        parse_file_name(bad)
    name = re.search(r"rename it, e\.g\. to (\S+\.sql)", raised.value.hint).group(1)
    assert _FILE_NAME.match(name), name
    assert len(re.findall(r"\d{8,}", name)) <= 1  # one version, not a timestamp before the old date
    if suggested:
        assert name == suggested
    else:
        assert re.fullmatch(r"\d{14}_add_users\.sql", name)


def test_readme_lists_every_error_name_the_runner_can_print():
    from runner import errors

    readme = (ROOT / "README.md").read_text()
    listed = readme.split("`error` is one of")[1].split("\n\n")[0]
    bases = {errors.RunnerError, errors.TransientError}  # never raised themselves
    names = {cls.error for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.RunnerError) and cls not in bases}
    for name in names | {"database_error", "internal_error"}:
        assert f"`{name}`" in listed, name
