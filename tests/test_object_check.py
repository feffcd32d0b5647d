"""The take-over check: recorded migrations whose objects are not in the live database.

The database is the old flow's (tests/old_flow.py); the objects each file creates are named
by PostgreSQL's parser on the deploy side (deploytool.expected_objects), and checked by the
runner against the catalog (`runner verify`), which is what runs in the cluster.
"""

from __future__ import annotations

import json

import pytest

from deploytool import expected_objects
from tests import old_flow
from tests.pg import Result
from runner import cli

DIRS = ":".join(str(folder) for folder in old_flow.FOLDERS)
V0_TRACKING = "20251128000000_add_v0_project_tracking.sql"


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    path = tmp_path_factory.mktemp("expected") / "expected.json"
    path.write_text(json.dumps(expected_objects.expected(expected_objects.read_directories(list(old_flow.FOLDERS)))))
    return path


def runner(dsn: str, *args: str) -> Result:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([*args, "--dir", DIRS], {"DATABASE_URL": dsn, "TERMINATION_LOG": "", "MIGRATION_WAIT_FOR_DB": "5"})
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def copy(old_flow_db, request):
    return old_flow_db.clone(f"copy_{request.node.name[:40]}")


def test_the_parser_names_what_each_file_creates():
    files = {"1_a.sql": "CREATE TABLE t (id int); CREATE INDEX t_id ON t (id);",
             "2_b.sql": "ALTER TABLE t ADD COLUMN n text; CREATE POLICY p ON t USING (true); "
                        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
             "3_c.sql": "DROP INDEX t_id; DROP POLICY p ON t;"}
    found = expected_objects.expected(files)["files"]
    assert [(o["kind"], o["name"]) for o in found["1_a.sql"]["objects"]] == [("table", "t"), ("column", "id")]
    assert [(o["kind"], o["name"]) for o in found["2_b.sql"]["objects"]] == [("column", "n"), ("function", "f")]


def test_verify_lists_recorded_migrations_whose_objects_are_missing_file_by_file(old_flow_db, expected):
    result = runner(old_flow_db.dsn, "verify", str(expected))
    assert result.code == 3, result.output
    assert ("MISSING: 20251121223018_allow_anonymous_knowledge_access.sql is recorded, and 3 of the objects it creates "
            "are not in the database: policy Allow anonymous read access to knowledge articles on knowledge_articles"
            in result.out)
    assert "20251202000000_add_mckinsey_sso_fields.sql" not in result.out  # all its columns are there
    assert "7 recorded migrations left objects out" in result.out and "runner reapply FILE" in result.out


def test_verify_passes_when_every_recorded_object_is_there(old_flow_db, expected, copy):
    old_flow_db.query("DELETE FROM schema_migrations WHERE migration_name <> %s", (V0_TRACKING,), dsn=copy)
    result = runner(copy, "verify", str(expected))
    assert result.code == 0, result.output
    assert "every object of the 1 recorded migration is in the database" in result.out


def test_reapply_restores_what_a_recorded_migration_left_out(old_flow_db, expected, copy):
    old_flow_db.query("ALTER TABLE design_mockups DROP COLUMN v0_chat_id", dsn=copy)
    assert "column v0_chat_id on design_mockups" in runner(copy, "verify", str(expected)).out

    result = runner(copy, "reapply", V0_TRACKING)

    assert result.code == 0, result.output
    assert "v0_chat_id" not in runner(copy, "verify", str(expected)).out
    assert old_flow_db.query("SELECT checksum IS NOT NULL FROM schema_migrations WHERE migration_name = %s",
                             (V0_TRACKING,), dsn=copy) == [(True,)]


def test_a_failing_reapply_leaves_the_database_and_the_record_as_they_were(old_flow_db, copy):
    file = "20251128000001_add_review_reports.sql"  # its policies call auth.uid()
    before = old_flow_db.query("SELECT id, migration_name FROM schema_migrations ORDER BY id", dsn=copy)
    result = runner(copy, "reapply", file)
    assert result.code == 1
    assert 'schema "auth" does not exist' in result.err
    assert "rolled back; the database and its record are as they were" in result.err
    assert old_flow_db.query("SELECT id, migration_name FROM schema_migrations ORDER BY id", dsn=copy) == before
