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
from tests.pg import Result, write
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


# Later files rename and drop what earlier ones created: applied in order by the runner, the
# database holds every object the list still expects, so verify passes.
FUNCTION = "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
RENAMED_AND_DROPPED = {
    "table renamed": ["CREATE TABLE t (id int, note text); CREATE POLICY p ON t USING (true); "
                      f"{FUNCTION} CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();",
                      "ALTER TABLE t RENAME TO u;"],
    "column dropped": ["CREATE TABLE t (id int, note text);", "ALTER TABLE t DROP COLUMN note;"],
    "column renamed": ["CREATE TABLE t (id int, note text);", "ALTER TABLE t RENAME COLUMN note TO remark;"],
    "table dropped with its index": ["CREATE TABLE t (id int); CREATE INDEX t_id_idx ON t (id);", "DROP TABLE t;"],
    "index renamed": ["CREATE TABLE t (id int); CREATE INDEX t_id_idx ON t (id);", "ALTER INDEX t_id_idx RENAME TO t_id;"],
    "view renamed": ["CREATE VIEW v AS SELECT 1 AS one;", "ALTER VIEW v RENAME TO w;"],
    "function renamed": ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;", "ALTER FUNCTION f() RENAME TO g;"],
    "policy renamed": ["CREATE TABLE t (id int); CREATE POLICY p ON t USING (true);", "ALTER POLICY p ON t RENAME TO q;"],
    "trigger renamed": [f"CREATE TABLE t (id int); {FUNCTION} "
                        "CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();",
                        "ALTER TRIGGER tr ON t RENAME TO tr2;"],
    "schema dropped": ["CREATE SCHEMA s; CREATE TABLE s.t (id int); CREATE INDEX t_id ON s.t (id); "
                       "CREATE VIEW s.v AS SELECT 1 AS one;", "DROP SCHEMA s CASCADE;"],
    "table in another schema renamed": ["CREATE SCHEMA s; CREATE TABLE s.t (id int); CREATE POLICY p ON s.t USING (true);",
                                        "ALTER TABLE s.t RENAME TO u;"],
}


def apply_and_verify(db, tmp_path, files: dict[str, str]) -> Result:
    migrations = write(tmp_path / "migrations", files)
    applied = db.run("apply", "--dir", str(migrations))
    assert applied.code == 0, applied.output
    listed = tmp_path / "expected.json"
    listed.write_text(json.dumps(expected_objects.expected(expected_objects.read_directories([migrations]))))
    return db.run("verify", str(listed), "--dir", str(migrations))


@pytest.mark.parametrize("case", RENAMED_AND_DROPPED)
def test_verify_follows_later_files_that_rename_or_drop_objects(db, tmp_path, case):
    first, second = RENAMED_AND_DROPPED[case]
    result = apply_and_verify(db, tmp_path, {"1_create.sql": first, "2_change.sql": second})
    assert result.code == 0, result.output


def test_a_renamed_table_is_still_checked_under_its_new_name(db, tmp_path):
    first, second = RENAMED_AND_DROPPED["table renamed"]
    migrations = {"1_create.sql": first, "2_change.sql": second, "3_drop_note.sql": "ALTER TABLE u DROP COLUMN note;"}
    migrations_dir = write(tmp_path / "migrations", migrations)
    assert db.run("apply", "--dir", str(migrations_dir)).code == 0
    db.execute("DELETE FROM schema_migrations WHERE migration_name = '3_drop_note.sql'")
    db.execute("ALTER TABLE u ADD COLUMN note text; DROP POLICY p ON u")  # as if 2 was recorded but p never made
    listed = tmp_path / "expected.json"
    listed.write_text(json.dumps(expected_objects.expected(expected_objects.read_directories([migrations_dir]))))
    result = db.run("verify", str(listed), "--dir", str(migrations_dir))
    assert result.code == 3, result.output
    assert "policy p on u" in result.out


def expected_for(directory) -> str:
    listed = directory.parent / "expected.json"
    listed.write_text(json.dumps(expected_objects.expected(expected_objects.read_directories([directory]))))
    return str(listed)


def test_objects_a_do_block_makes_are_checked(db, tmp_path):
    # Errors swallowed as the old script did: recorded whether or not the block made anything.
    migrations = write(tmp_path / "migrations", {
        "1_t.sql": "CREATE TABLE t (id int);",
        "2_note.sql": "DO $$\nBEGIN\n  ALTER TABLE t ADD COLUMN note text;\n  CREATE INDEX t_note ON t (note);\n"
                      "EXCEPTION WHEN OTHERS THEN NULL;\nEND $$;",
    })
    assert db.run("apply", "--dir", str(migrations)).code == 0
    db.execute("DROP INDEX t_note; ALTER TABLE t DROP COLUMN note")  # recorded, as if it never ran

    result = db.run("verify", expected_for(migrations), "--dir", str(migrations))

    assert result.code == 3, result.output
    assert "MISSING: 2_note.sql is recorded, and 2 of the objects it creates are not in the database: " \
           "column note on t (in a DO block), index t_note (in a DO block)" in result.out


def test_what_verify_cannot_check_is_named_file_by_file(db, tmp_path):
    migrations = write(tmp_path / "migrations", {
        "1_dynamic.sql": "DO $$ BEGIN EXECUTE 'CREATE TABLE made_' || 'late (id int)'; END $$;",
        "2_typo.sql": "CREATE TABEL t (id int);",
        # The app's style (20251126000001_fix_missing_tables_and_columns.sql): the index is made only
        # when the column is, so its absence proves nothing.
        "3_conditional.sql": "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_tables WHERE tablename = 'x') THEN "
                             "CREATE TABLE x (id int); CREATE INDEX x_id ON x (id); END IF; END $$;",
    })
    assert db.run("baseline", "--through", "3", "--dir", str(migrations)).code == 0

    result = db.run("verify", expected_for(migrations), "--dir", str(migrations))

    assert result.code == 0, result.output
    assert "1_dynamic.sql: not checked: 1 statement run with EXECUTE in a DO block (its objects cannot be named)" \
        in result.out
    assert "3_conditional.sql: not checked: 2 statements under a condition (IF, CASE or a loop) in a DO block" \
        in result.out
    assert "2_typo.sql: not checked: PostgreSQL's parser cannot read it (syntax error at or near \"TABEL\"" in result.out
    assert "3 files could be checked only in part (above)" in result.out


def test_objects_in_a_schema_that_is_not_there_are_reported_missing(db, tmp_path):
    migrations = write(tmp_path / "migrations", {
        "1_api.sql": "CREATE SCHEMA api; CREATE TABLE api.keys (id int); "
                     "CREATE FUNCTION api.next_key() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$; "
                     "CREATE POLICY own ON api.keys USING (true);",
    })
    assert db.run("baseline", "--through", "1", "--dir", str(migrations)).code == 0  # recorded, never ran

    result = db.run("verify", expected_for(migrations), "--dir", str(migrations))

    assert result.code == 3, result.output
    assert "4 of the objects it creates are not in the database: table api.keys, column id on api.keys, " \
           "function api.next_key, policy own on api.keys" in result.out
