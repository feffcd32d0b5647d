"""The tracking table: adopting the old script's table, drift, missing files."""

from runner.errors import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_OK
from tests.pg import write

OLD_TABLE = """
CREATE TABLE schema_migrations (
    id serial,
    migration_name varchar(255) UNIQUE NOT NULL,
    applied_at timestamptz DEFAULT now()
);
"""


def adopt_old_table(db, names):
    db.execute(OLD_TABLE)
    for name in names:
        db.execute("INSERT INTO schema_migrations (migration_name, applied_at) VALUES (%s, '2025-01-01')", (name,))


def test_old_scripts_table_is_adopted_without_losing_a_row(db, tmp_path):
    write(tmp_path, {
        "001_users.sql": "CREATE TABLE users (id int);",
        "002_products.sql": "CREATE TABLE products (id int);",
        "003_new.sql": "CREATE TABLE orders (id int);",
    })
    db.execute("CREATE TABLE users (id int); CREATE TABLE products (id int);")
    adopt_old_table(db, ["001_users.sql", "002_products.sql"])
    old_rows = db.query("SELECT id, migration_name, applied_at FROM schema_migrations ORDER BY id")

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_OK, result.output
    assert "schema_migrations: added columns checksum, duration_ms, statements, status" in result.out
    assert db.query("SELECT id, migration_name, applied_at FROM schema_migrations WHERE id <= 2 ORDER BY id") == old_rows
    assert db.applied() == ["001_users.sql", "002_products.sql", "003_new.sql"]
    assert "orders" in db.tables()


def test_adopted_rows_get_their_checksums_on_the_first_run(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
    db.execute("CREATE TABLE users (id int);")
    adopt_old_table(db, ["001_users.sql"])
    result = db.run("--dir", str(tmp_path))
    assert "recorded checksums of 1 migration applied before checksums were kept" in result.out
    checksum = db.query("SELECT checksum FROM schema_migrations")[0][0]
    assert checksum is not None and len(checksum) == 64
    (tmp_path / "001_users.sql").write_text("CREATE TABLE users (id bigint);")
    assert db.run("--dir", str(tmp_path)).code == EXIT_DRIFT


def test_adopted_rows_named_without_extension_match_their_files(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
    db.execute("CREATE TABLE users (id int);")
    adopt_old_table(db, ["001_users"])
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    assert db.applied() == ["001_users"]


def test_a_table_from_another_tool_is_refused_untouched(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
    db.execute("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)")
    result = db.run("--dir", str(tmp_path))
    assert result.code == 2
    assert "belongs to another migration tool" in result.err
    assert db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'schema_migrations'") == [(1,)]


def test_changed_file_stops_the_run_before_anything_is_applied(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int, email text);", "002_next.sql": "CREATE TABLE next (id int);"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_DRIFT
    assert "applied migrations changed since they ran: 001_users.sql; nothing was applied" in result.err
    assert "next" not in db.tables()


def test_accept_changed_records_the_new_checksum_and_continues(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"001_users.sql": "-- reformatted\nCREATE TABLE users (id int);", "002_next.sql": "CREATE TABLE next (id int);"})
    result = db.run("--dir", str(tmp_path), "apply", "--accept-changed")
    assert result.code == EXIT_OK, result.output
    assert "001_users.sql changed after it was applied; accepted" in result.out
    assert "next" in db.tables()
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK


def test_line_ending_changes_are_not_drift(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);\nCOMMENT ON TABLE users IS 'u';\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    (tmp_path / "001_users.sql").write_bytes(b"CREATE TABLE users (id int);\r\nCOMMENT ON TABLE users IS 'u';\r\n")
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK


def test_removed_file_is_reported_and_does_not_block(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);", "002_x.sql": "CREATE TABLE x (id int);"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    (tmp_path / "001_users.sql").unlink()
    write(tmp_path, {"003_y.sql": "CREATE TABLE y (id int);"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK
    assert "001_users.sql is recorded as applied but its file is gone" in result.out
    assert db.applied() == ["001_users.sql", "002_x.sql", "003_y.sql"]


def test_pending_file_older_than_applied_ones_is_refused_and_applied_only_when_allowed(db, tmp_path):
    write(tmp_path, {"002_b.sql": "CREATE TABLE b (id int);"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    refused = db.run("--dir", str(tmp_path))
    assert refused.code == EXIT_DRIFT
    assert "a" not in db.tables()
    allowed = db.run("--dir", str(tmp_path), "apply", "--allow-out-of-order")
    assert allowed.code == EXIT_OK, allowed.output
    assert "001_a.sql is older than 002_b.sql, which is already applied" in allowed.out
    assert "a" in db.tables()


def test_status_and_dry_run_read_the_old_table_and_change_nothing(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);", "002_new.sql": "CREATE TABLE orders (id int);"})
    adopt_old_table(db, ["001_users"])
    columns = db.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'schema_migrations'")

    status = db.run("--dir", str(tmp_path), "status")
    dry = db.run("--dir", str(tmp_path), "apply", "--dry-run")

    assert status.code == dry.code == EXIT_OK, status.output + dry.output
    assert "1 applied, 1 pending" in status.out
    assert "would apply 002_new.sql" in dry.out and "would apply 001_users.sql" not in dry.out
    assert db.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'schema_migrations'") == columns


def test_a_renamed_applied_file_stops_the_run_naming_both_and_rename_records_it(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    (tmp_path / "001_users.sql").rename(tmp_path / "001_create_users.sql")

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_DRIFT
    assert "001_create_users.sql has the content of 001_users.sql" in result.err
    assert "python -m runner rename 001_users.sql 001_create_users.sql" in result.err
    assert db.run("--dir", str(tmp_path), "status", "--check").code == EXIT_DRIFT

    renamed = db.run("--dir", str(tmp_path), "rename", "001_users.sql", "001_create_users.sql")
    assert renamed.code == EXIT_OK, renamed.output
    again = db.run("--dir", str(tmp_path))
    assert again.code == EXIT_OK and "nothing to apply; 1 migration already applied" in again.out
    assert db.applied() == ["001_create_users.sql"]


def test_rename_refuses_a_file_with_other_content(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_other.sql": "CREATE TABLE other (id int);"})
    result = db.run("--dir", str(tmp_path), "rename", "001_users.sql", "002_other.sql")
    assert result.code == EXIT_DRIFT
    assert db.applied() == ["001_users.sql"]


def test_baseline_records_pending_files_through_a_version_without_running_them(db, tmp_path):
    write(tmp_path, {
        "001_users.sql": "CREATE TABLE users (id int);",
        "002_orders.sql": "CREATE TABLE orders (id int);",
        "003_items.sql": "CREATE TABLE items (id int);",
    })
    db.execute("CREATE TABLE users (id int); CREATE TABLE orders (id int);")  # made by hand, long ago

    result = db.run("--dir", str(tmp_path), "baseline", "--through", "002")

    assert result.code == EXIT_OK, result.output
    assert "recorded 2 migrations as applied without running them" in result.out
    assert db.applied() == ["001_users.sql", "002_orders.sql"]
    applied = db.run("--dir", str(tmp_path))
    assert applied.code == EXIT_OK, applied.output
    assert db.applied() == ["001_users.sql", "002_orders.sql", "003_items.sql"]
    assert "items" in db.tables()


def test_baseline_without_a_selection_is_refused(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
    result = db.run("--dir", str(tmp_path), "baseline")
    assert result.code == EXIT_BAD_INPUT
    assert "--through VERSION, or file names" in result.err
    assert db.applied() == []


def test_an_old_table_owned_by_another_role_is_a_clear_error_with_the_fix(db, tmp_path):
    role = f"r_{db.name}"
    db.execute(f"CREATE ROLE {role} LOGIN; GRANT ALL ON SCHEMA public TO {role}")
    try:
        adopt_old_table(db, ["001_users.sql"])  # created by postgres, as another tool might have
        write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);"})
        url = db.dsn.replace("postgresql://postgres@", f"postgresql://{role}@")
        result = db.run("--dir", str(tmp_path), env={"DATABASE_URL": url})
        assert result.code == EXIT_BAD_INPUT, result.output
        assert f"is owned by postgres, and the runner, logged in as {role}, must add columns" in result.err
        assert f"ALTER TABLE public.schema_migrations OWNER TO {role}" in result.err
    finally:
        db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
