"""Finding migrations: search path, ConfigMap layouts, file names."""

import os

import pytest

from runner import discovery
from runner.errors import EXIT_BAD_INPUT, EXIT_OK, UsageError
from tests.pg import write


def configmap_mount(directory, files):
    """Lay files out as the kubelet does: symlinks into a timestamped folder via `..data`."""
    stamp = directory / "..2025_11_24_10_00_00.123456789"
    write(stamp, files)
    (directory / "..data").symlink_to(stamp.name)
    for name in files:
        (directory / name).symlink_to(f"..data/{name}")
    return directory


def test_first_directory_holding_migrations_wins(tmp_path):
    empty, first, second = tmp_path / "empty", tmp_path / "first", tmp_path / "second"
    empty.mkdir()
    write(first, {"001_a.sql": "SELECT 1;"})
    write(second, {"001_b.sql": "SELECT 1;"})
    chosen = discovery.find_directories(None, [str(tmp_path / "absent"), str(empty), str(first), str(second)])
    assert chosen == [first]


def test_no_directory_with_migrations_is_a_usage_error_listing_the_search(tmp_path):
    with pytest.raises(UsageError, match=r"no migrations found; searched .*nowhere"):
        discovery.find_directories(None, [str(tmp_path / "nowhere")])


def test_override_that_does_not_exist_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        discovery.find_directories(str(tmp_path / "missing"))


def test_configmap_mount_is_read_without_its_dot_entries(tmp_path):
    configmap_mount(tmp_path / "m", {"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"})
    names = [m.name for m in discovery.load_directory(tmp_path / "m")]
    assert names == ["001_a.sql", "002_b.sql"]


def test_files_that_are_not_sql_are_ignored(tmp_path):
    write(tmp_path, {"001_a.sql": "SELECT 1;", "README.md": "x", "002_notes.txt": "x", ".003_hidden.sql": "x",
                     "seed.csv": "x"})
    assert [m.name for m in discovery.load_directory(tmp_path)] == ["001_a.sql"]


@pytest.mark.parametrize("name, renamed", [
    ("002_b.SQL", "002_b.sql"),
    ("002_b.Sql", "002_b.sql"),
    ("002_b.sql.txt", "002_b.sql"),
    ("002_b.sql.gz", "002_b.sql"),
    ("002_b.sql~", "002_b.sql"),
    ("002_b.psql", "002_b.sql"),
])
def test_a_file_named_like_sql_that_would_never_run_is_refused_by_validate(tmp_path, name, renamed):
    from runner import cli
    import contextlib, io

    write(tmp_path, {"001_a.sql": "SELECT 1;", name: "CREATE TABLE b (id int);"})
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["validate", "--dir", str(tmp_path)], {}) == EXIT_BAD_INPUT
    assert f"{name}: looks like a migration, but only names ending in .sql (lower case) run" in err.getvalue()
    assert f"rename it to {renamed}" in err.getvalue()


def test_a_directory_that_exists_but_holds_no_migrations_is_an_error_pointing_below(db, tmp_path):
    write(tmp_path / "supabase" / "migrations", {"001_a.sql": "CREATE TABLE a (id int);"})
    result = db.run("--dir", str(tmp_path / "supabase"))
    assert result.code == EXIT_BAD_INPUT, result.output
    assert f"migrations directory {tmp_path / 'supabase'} holds no migration files" in result.err
    assert f"did you mean {tmp_path / 'supabase' / 'migrations'}?" in result.err
    assert db.tables() == set()


def test_one_wrong_directory_among_several_is_an_error_too(db, tmp_path):
    write(tmp_path / "init-db" / "migrations", {"001_a.sql": "CREATE TABLE a (id int);"})
    (tmp_path / "supabase" / "migratons").mkdir(parents=True)  # the typo made by `mkdir -p`
    result = db.run("--dir", f"{tmp_path / 'init-db' / 'migrations'}:{tmp_path / 'supabase' / 'migratons'}")
    assert result.code == EXIT_BAD_INPUT
    assert "migratons holds no migration files" in result.err


def test_runner_uses_the_local_search_path_and_logs_the_choice(db, tmp_path, monkeypatch):
    write(tmp_path / "supabase" / "migrations", {"001_a.sql": "CREATE TABLE a (id int);"})
    write(tmp_path / "init-db" / "migrations", {"001_b.sql": "CREATE TABLE b (id int);"})
    monkeypatch.chdir(tmp_path)
    result = db.run()
    assert result.code == EXIT_OK, result.output
    assert "migrations: supabase/migrations (1 file)" in result.out
    assert db.applied() == ["001_a.sql"]


def test_same_configmap_at_two_mount_points_is_applied_once(db, tmp_path, monkeypatch):
    files = {"001_a.sql": "CREATE TABLE a (id int);", "002_b.sql": "INSERT INTO a VALUES (1);"}
    configmap_mount(tmp_path / "supabase" / "migrations", files)
    configmap_mount(tmp_path / "init-db" / "migrations", files)
    monkeypatch.chdir(tmp_path)
    assert db.run().code == EXIT_OK
    assert db.run().code == EXIT_OK
    assert db.query("SELECT count(*) FROM a") == [(1,)]
    assert db.applied() == ["001_a.sql", "002_b.sql"]


def test_migrations_dir_environment_variable_overrides_the_search(db, tmp_path):
    write(tmp_path / "custom", {"001_a.sql": "CREATE TABLE a (id int);"})
    result = db.run(env={"MIGRATIONS_DIR": str(tmp_path / "custom")})
    assert result.code == EXIT_OK
    assert db.applied() == ["001_a.sql"]


def test_sql_file_without_a_version_is_an_error_naming_it(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);", "add_users.sql": "SELECT 1;"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "add_users.sql: a migration file name must start with its version" in result.err
    assert db.applied() == []


def test_versions_run_in_numeric_order_whatever_their_width(tmp_path):
    write(tmp_path, {"10_c.sql": "SELECT 10;", "2_b.sql": "SELECT 2;", "1_a.sql": "SELECT 1;", "2_a.sql": "SELECT 2;"})
    assert [m.name for m in discovery.load_directory(tmp_path)] == ["1_a.sql", "2_a.sql", "2_b.sql", "10_c.sql"]


def test_every_unusable_entry_is_named_before_anything_runs(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    os.symlink(tmp_path / "gone.sql", tmp_path / "002_dangling.sql")
    (tmp_path / "003_dir.sql").mkdir()
    (tmp_path / os.fsdecode(b"004_caf\xe9.sql")).write_text("SELECT 4;")
    (tmp_path / "005_bad.sql").write_bytes(b"SELECT 1;\nSELECT '\xff';\n")
    for command in (["validate"], ["apply"]):
        result = db.run(*command, "--dir", str(tmp_path))
        assert result.code == EXIT_BAD_INPUT, result.output
        assert "4 problems in" in result.err
        assert "002_dangling.sql: is a symbolic link to a file that does not exist" in result.err
        assert "003_dir.sql: is a directory" in result.err
        assert "004_caf\\xe9.sql: the file name is not valid UTF-8" in result.err
        assert "005_bad.sql: line 2 is not valid UTF-8 (byte 0xff)" in result.err
        assert "Traceback" not in result.output
    assert db.applied() == []


def test_an_unreadable_directory_is_reported_without_a_traceback(tmp_path, monkeypatch):
    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(discovery.os, "scandir", refuse)
    with pytest.raises(UsageError, match="cannot read migrations directory .*: Permission denied"):
        discovery.load_directory(tmp_path)


def test_several_directories_are_one_set_where_the_later_copy_wins_and_a_difference_is_reported(db, tmp_path):
    write(tmp_path / "init-db", {"001_a.sql": "CREATE TABLE a (v text);", "002_b.sql": "CREATE TABLE b (v text);",
                                 "003_only_here.sql": "CREATE TABLE c (v text);"})
    write(tmp_path / "supabase", {"001_a.sql": "CREATE TABLE a (v text);",
                                  "002_b.sql": "CREATE TABLE b (v text, newer int);"})
    dirs = f"{tmp_path / 'init-db'}:{tmp_path / 'supabase'}"
    result = db.run("--dir", dirs)
    assert result.code == EXIT_OK, result.output
    assert db.applied() == ["001_a.sql", "002_b.sql", "003_only_here.sql"]
    assert db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'b'") == [(2,)]
    assert result.out.count("WARNING:") == 1
    assert f"WARNING: 002_b.sql differs between {tmp_path / 'init-db' / '002_b.sql'} and " in result.out
