"""What the runner writes to schema_migrations is read back: a row that did not land stops the run."""

import pytest

from runner.errors import EXIT_BAD_INPUT, EXIT_OK
from tests.pg import write

DISCARD_INSERTS = (
    "CREATE FUNCTION public.discard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;\n"
    "CREATE TRIGGER discard BEFORE INSERT ON public.schema_migrations FOR EACH ROW EXECUTE FUNCTION public.discard();\n"
)


def prepare(db, tmp_path, files):
    """A history with 001 applied, then something that tampers with schema_migrations."""
    write(tmp_path, {"001_users.sql": "CREATE TABLE users (id int);\n"})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, files)


def test_a_trigger_that_discards_the_row_stops_the_run_and_rolls_the_migration_back(db, tmp_path):
    prepare(db, tmp_path, {"002_seed.sql": "CREATE TABLE seed (v text);\nINSERT INTO seed VALUES ('x');\n"})
    db.execute(DISCARD_INSERTS)

    first = db.run("--dir", str(tmp_path))
    second = db.run("--dir", str(tmp_path))

    for result in (first, second):
        assert result.code == EXIT_BAD_INPUT, result.output
        assert "its row in public.schema_migrations did not land" in result.err
        assert "trigger or rule" in result.err
    assert "seed" not in db.tables()


def test_a_rule_that_turns_the_insert_into_nothing_is_noticed(db, tmp_path):
    prepare(db, tmp_path, {"002_orders.sql": "CREATE TABLE orders (id int);\n"})
    db.execute("CREATE RULE nothing AS ON INSERT TO public.schema_migrations DO INSTEAD NOTHING")
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT, result.output
    assert "orders" not in db.tables()


def test_a_no_transaction_migration_does_not_start_when_its_incomplete_row_does_not_land(db, tmp_path):
    prepare(db, tmp_path, {"002_index.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY users_id_idx ON users (id);\n"})
    db.execute(DISCARD_INSERTS)
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT, result.output
    assert "nothing of it ran" in result.err
    assert db.query("SELECT to_regclass('users_id_idx')") == [(None,)]


def test_a_no_transaction_migration_whose_completion_does_not_land_says_so(db, tmp_path):
    prepare(db, tmp_path, {"002_index.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY users_id_idx ON users (id);\n"})
    db.execute(
        "CREATE FUNCTION public.keep_old() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.status = 'applied' THEN RETURN OLD; END IF; RETURN NEW; END $$;"
        "CREATE TRIGGER keep_old BEFORE UPDATE ON public.schema_migrations FOR EACH ROW EXECUTE FUNCTION public.keep_old()")
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT, result.output
    assert "all 1 statement ran" in result.err
    assert db.query("SELECT status FROM public.schema_migrations WHERE migration_name = '002_index.sql'") == [("incomplete",)]


@pytest.mark.parametrize("command", [("baseline", "--through", "002"), ("baseline", "002_orders.sql")])
def test_baseline_does_not_claim_rows_that_did_not_land(db, tmp_path, command):
    prepare(db, tmp_path, {"002_orders.sql": "CREATE TABLE orders (id int);\n"})
    db.execute(DISCARD_INSERTS)
    result = db.run("--dir", str(tmp_path), *command)
    assert result.code == EXIT_BAD_INPUT, result.output
    assert "recorded" not in result.out
