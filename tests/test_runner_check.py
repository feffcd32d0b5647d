"""`python -m runner check`: the pull-request replay on a throw-away PostgreSQL."""

import subprocess
import sys

from tests.pg import ROOT, write


def check(*args):
    return subprocess.run([sys.executable, "-m", "runner", "check", *args], cwd=ROOT, capture_output=True, text=True)


def test_check_passes_on_the_projects_migrations():
    result = check("--dir", "migrations")
    assert result.returncode == 0, result.stderr
    assert "check passed: 6 migrations from migrations apply from scratch" in result.stdout


def test_check_reports_the_first_failure_with_file_and_line(tmp_path):
    write(tmp_path, {
        "001_ok.sql": "CREATE TABLE a (id int);\n",
        "002_broken.sql": "-- typo below\nALTER TABLE a ADD COLUMN b int;\nALTER TABLE nope ADD COLUMN c int;\n",
        "003_never.sql": "CREATE TABLE c (id int);\n",
    })
    result = check("--dir", str(tmp_path))
    assert result.returncode == 1
    assert "migration 002_broken.sql failed at statement 2 of 2 (002_broken.sql:3)" in result.stderr
    assert 'SQLSTATE 42P01: relation "nope" does not exist' in result.stderr
    assert "003_never.sql" not in result.stdout


def test_check_applies_a_base_schema_first(tmp_path):
    write(tmp_path / "m", {"001_add.sql": "ALTER TABLE legacy ADD COLUMN note text;\n"})
    (tmp_path / "base.sql").write_text("CREATE TABLE legacy (id int);\n")
    assert check("--dir", str(tmp_path / "m")).returncode == 1
    result = check("--dir", str(tmp_path / "m"), "--base-schema", str(tmp_path / "base.sql"))
    assert result.returncode == 0, result.stderr
    assert f"on top of {tmp_path / 'base.sql'}" in result.stdout


def test_broken_base_schema_is_reported_as_bad_input(tmp_path):
    write(tmp_path / "m", {"001_a.sql": "SELECT 1;\n"})
    (tmp_path / "base.sql").write_text("CREATE TABLE (;\n")
    result = check("--dir", str(tmp_path / "m"), "--base-schema", str(tmp_path / "base.sql"))
    assert result.returncode == 2
    assert "did not load" in result.stderr and "syntax error" in result.stderr
