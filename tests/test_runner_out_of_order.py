"""Pending files older than the newest applied migration are refused unless allowed."""

import json

from runner.errors import EXIT_DRIFT, EXIT_OK
from tests.pg import write


def applied(db) -> list[str]:
    return [r[0] for r in db.query("SELECT migration_name FROM public.schema_migrations ORDER BY 1")]


def test_an_older_file_set_does_not_apply_its_file_after_a_newer_applied_one(db, tmp_path):
    newer, older = tmp_path / "newer", tmp_path / "older"
    write(newer, {"1_a.sql": "CREATE TABLE a (id int);\n", "3_c.sql": "CREATE TABLE c (id int);\n"})
    assert db.run("--dir", str(newer)).code == EXIT_OK
    write(older, {"1_a.sql": "CREATE TABLE a (id int);\n", "2_old_only.sql": "CREATE TABLE old_only (id int);\n"})

    result = db.run("--dir", str(older))

    assert result.code == EXIT_DRIFT, result.output
    assert "2_old_only.sql is older than 3_c.sql, which is already applied" in result.err
    assert "--allow-out-of-order" in result.err
    assert "old_only" not in db.tables()
    assert applied(db) == ["1_a.sql", "3_c.sql"]


def test_a_late_file_is_refused_then_applied_once_allowed_and_status_shows_it(db, tmp_path):
    write(tmp_path, {"1_a.sql": "CREATE TABLE a (id int);\n", "3_c.sql": "CREATE TABLE c (id int);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"2_b.sql": "CREATE TABLE b (id int);\n"})

    status = db.run("--dir", str(tmp_path), "status", "--check")
    dry = db.run("--dir", str(tmp_path), "apply", "--dry-run")
    refused = db.run("--dir", str(tmp_path))

    assert status.code == dry.code == refused.code == EXIT_DRIFT, status.output + dry.output
    assert "2_b.sql  OUT OF ORDER" in status.out
    assert "b" not in db.tables()

    allowed = db.run("--dir", str(tmp_path), "--log-format", "json", "apply", "--allow-out-of-order")
    events = [json.loads(line) for line in allowed.out.splitlines()]
    assert allowed.code == EXIT_OK, allowed.output
    assert {"event": "out_of_order", "migration": "2_b.sql", "newest_applied": "3_c.sql"}.items() <= next(
        e for e in events if e["event"] == "out_of_order").items()
    assert applied(db) == ["1_a.sql", "2_b.sql", "3_c.sql"]


def test_the_environment_allows_it_for_the_job(db, tmp_path):
    write(tmp_path, {"3_c.sql": "CREATE TABLE c (id int);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"2_b.sql": "CREATE TABLE b (id int);\n"})
    result = db.run("--dir", str(tmp_path), env={"MIGRATION_ALLOW_OUT_OF_ORDER": "true"})
    assert result.code == EXIT_OK, result.output
    assert "2_b.sql is older than 3_c.sql, which is already applied; applying it" in result.out


def test_an_older_release_with_nothing_pending_succeeds_with_a_warning(db, tmp_path):
    newer, older = tmp_path / "newer", tmp_path / "older"
    write(newer, {"1_a.sql": "CREATE TABLE a (id int);\n", "3_c.sql": "CREATE TABLE c (id int);\n"})
    assert db.run("--dir", str(newer)).code == EXIT_OK
    write(older, {"1_a.sql": "CREATE TABLE a (id int);\n"})
    result = db.run("--dir", str(older))
    assert result.code == EXIT_OK, result.output
    assert "3_c.sql is recorded as applied but its file is gone" in result.out
