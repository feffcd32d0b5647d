"""squawk with the checked-in config: the project's migrations pass, risky ones do not."""

import subprocess
import sys
from pathlib import Path

from tests.pg import ROOT, write

SQUAWK = Path(sys.executable).parent / "squawk"


def squawk(*paths):
    return subprocess.run([str(SQUAWK), "--reporter", "gcc", *map(str, paths)], cwd=ROOT, capture_output=True, text=True)


def test_project_migrations_pass_squawk():
    result = squawk(*sorted((ROOT / "migrations").glob("*.sql")))
    assert result.returncode == 0, result.stdout


def test_blocking_index_on_an_existing_table_is_flagged(tmp_path):
    write(tmp_path, {"001_index.sql": "CREATE INDEX users_email_idx ON users (email);\n"})
    result = squawk(tmp_path / "001_index.sql")
    assert result.returncode == 1
    assert "require-concurrent-index-creation" in result.stdout


def test_timeouts_are_not_demanded_because_the_runner_sets_them(tmp_path):
    write(tmp_path, {"001_col.sql": "ALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text;\n"})
    result = squawk(tmp_path / "001_col.sql")
    assert result.returncode == 0, result.stdout


def test_files_are_linted_as_running_inside_a_transaction(tmp_path):
    # A failed transactional file is rolled back whole, so it may be re-run as it is:
    # squawk's prefer-robust-stmts (IF NOT EXISTS) only matters outside a transaction.
    write(tmp_path, {"001_col.sql": "ALTER TABLE users ADD COLUMN nickname text;\n"})
    assert squawk(tmp_path / "001_col.sql").returncode == 0
    outside = subprocess.run([str(SQUAWK), "--no-assume-in-transaction", "--reporter", "gcc", str(tmp_path / "001_col.sql")],
                             cwd=ROOT, capture_output=True, text=True)
    assert "prefer-robust-stmts" in outside.stdout
