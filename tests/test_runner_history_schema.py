"""The history table is found and written in a fixed schema, whatever any search_path says."""

from runner.errors import EXIT_BAD_INPUT, EXIT_OK
from tests.pg import write

SET_DATABASE_PATH = (
    "CREATE SCHEMA app;\n"
    "CREATE TABLE public.seed (v text);\n"
    "INSERT INTO public.seed VALUES ('once');\n"
    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = app', current_database()); END $$;\n"
)


def history_tables(db) -> list[str]:
    return [r[0] for r in db.query(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = 'schema_migrations' AND c.relkind = 'r' ORDER BY 1")]


def applied_in(db, schema: str) -> list[str]:
    return [r[0] for r in db.query(f"SELECT migration_name FROM {schema}.schema_migrations ORDER BY 1")]


def test_a_database_search_path_set_by_a_migration_does_not_hide_the_history(db, tmp_path):
    write(tmp_path, {"001_app.sql": SET_DATABASE_PATH})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_more.sql": "CREATE TABLE public.more (id int);\n"})

    status = db.run("--dir", str(tmp_path), "status")
    result = db.run("--dir", str(tmp_path))

    assert "1 applied, 1 pending" in status.out, status.output
    assert result.code == EXIT_OK, result.output
    assert "applied 1 migration; 1 already applied" in result.out
    assert db.query("SELECT count(*) FROM public.seed") == [(1,)]
    assert history_tables(db) == ["public.schema_migrations"]
    assert applied_in(db, "public") == ["001_app.sql", "002_more.sql"]


def test_a_role_search_path_pointing_at_another_tools_table_does_not_hide_the_history(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE public.users (id int);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    # A DBA points the login role at the app's schema, where another tool keeps a table of the same name.
    db.execute("CREATE SCHEMA app; CREATE TABLE app.schema_migrations (version varchar(128) PRIMARY KEY)")
    db.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {db.name} SET search_path = app")
    try:
        write(tmp_path, {"002_orders.sql": "CREATE TABLE public.orders (id int);\n"})
        result = db.run("--dir", str(tmp_path))
        check = db.run("--dir", str(tmp_path), "status", "--check")
    finally:
        db.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {db.name} RESET search_path")
    assert result.code == EXIT_OK, result.output
    assert check.code == EXIT_OK, check.output
    assert applied_in(db, "public") == ["001_users.sql", "002_orders.sql"]
    assert db.query("SELECT count(*) FROM app.schema_migrations") == [(0,)]


def test_the_old_scripts_table_is_adopted_in_the_schema_it_was_made_in(db, tmp_path):
    # The old script ran while the database's search_path named `legacy`; it no longer does.
    db.execute("CREATE SCHEMA legacy; CREATE TABLE legacy.schema_migrations (id serial, "
               "migration_name varchar(255) UNIQUE NOT NULL, applied_at timestamptz DEFAULT now());"
               "INSERT INTO legacy.schema_migrations (migration_name) VALUES ('001_users.sql');"
               "CREATE TABLE public.users (id int)")
    write(tmp_path, {"001_users.sql": "CREATE TABLE public.users (id int);\n",
                     "002_orders.sql": "CREATE TABLE public.orders (id int);\n"})

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_OK, result.output
    assert history_tables(db) == ["legacy.schema_migrations"]
    assert applied_in(db, "legacy") == ["001_users.sql", "002_orders.sql"]


def test_two_history_tables_stop_the_run_naming_both(db, tmp_path):
    write(tmp_path, {"001_users.sql": "CREATE TABLE public.users (id int);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    db.execute("CREATE SCHEMA app; CREATE TABLE app.schema_migrations (LIKE public.schema_migrations)")
    write(tmp_path, {"002_orders.sql": "CREATE TABLE public.orders (id int);\n"})

    result = db.run("--dir", str(tmp_path))
    status = db.run("--dir", str(tmp_path), "status")

    assert result.code == status.code == EXIT_BAD_INPUT, result.output
    assert "app.schema_migrations" in result.err and "public.schema_migrations" in result.err
    assert "orders" not in db.tables()


def test_the_tracking_row_ignores_functions_a_migration_put_on_the_search_path(db, tmp_path):
    write(tmp_path, {"001_app.sql": (
        "CREATE SCHEMA app;\n"
        "CREATE FUNCTION app.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;\n"
        "SET search_path = app, pg_catalog;\n"
    )})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT duration_ms < 60000, applied_at > '2001-01-01' FROM public.schema_migrations") == [(True, True)]


def test_the_runners_own_session_ignores_functions_a_database_search_path_puts_first(db, tmp_path):
    write(tmp_path, {
        "001_app.sql": (
            "CREATE SCHEMA app;\n"
            "CREATE FUNCTION app.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;\n"
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = app, pg_catalog', current_database()); "
            "END $$;\n"),
    })
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, {"002_index.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY i ON public.seed (v);\n",
                     "001_app.sql": (tmp_path / "001_app.sql").read_text()})
    db.execute("CREATE TABLE public.seed (v text)")
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT applied_at > '2001-01-01' FROM public.schema_migrations "
                    "WHERE migration_name = '002_index.sql'") == [(True,)]
