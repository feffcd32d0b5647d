"""Small transactional files share a round trip, each in its own transaction: a failure in any
of them ends as it would one file per round trip (those before it applied once, it rolled back
and named, those after it not run), and nothing of one file's session reaches the next."""

import pytest

from runner import executor
from runner.errors import EXIT_BAD_INPUT, EXIT_MIGRATION_FAILED, EXIT_OK, EXIT_TRANSIENT
from runner.run import batches
from tests.pg import write
from tests.test_runner_concurrency import hold_share_lock, wait_for_query
from tests.test_runner_lock_holding import end_the_lock_session

# `calls` counts the statements that ran (a sequence is not rolled back); `seen` keeps the text
# of the query a file ran in (current_query(): the whole round trip's text).
SETUP = "CREATE SEQUENCE calls;\nCREATE TABLE seen (file text, query text);\n"
FILES = 5


def good(n: int) -> str:
    return (f"SELECT nextval('calls');\nCREATE TABLE t{n} (id int);\n"
            f"INSERT INTO seen VALUES ('{n}', current_query());\n")


FAILURES = {
    # the error has a position in the statement
    "position": ("SELECT nextval('calls');\nCREATE TABLE t{n} (id int);\nINSERT INTO missing VALUES (1);\n",
                 "SQLSTATE 42P01"),
    # no position: the runner's markers say which statement
    "no position": ("SELECT nextval('calls');\nCREATE TABLE t{n} (id int);\nSELECT 1 / (SELECT 0);\n",
                    "SQLSTATE 22012"),
}


def prepared(db, tmp_path, files: dict) -> None:
    write(tmp_path, {"000_setup.sql": SETUP})
    assert db.run("--dir", str(tmp_path)).code == EXIT_OK
    write(tmp_path, files)


def calls(db) -> int:
    return db.query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM calls")[0][0]


def test_small_files_are_applied_in_one_round_trip(db, tmp_path):
    prepared(db, tmp_path, {f"00{n}_f.sql": good(n) for n in range(1, FILES + 1)})

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_OK, result.output
    queries = db.query("SELECT DISTINCT query FROM seen")
    assert len(queries) == 1  # one query held them all
    assert all(f"CREATE TABLE t{n} " in queries[0][0] for n in range(1, FILES + 1))
    assert db.applied() == ["000_setup.sql"] + [f"00{n}_f.sql" for n in range(1, FILES + 1)]
    assert calls(db) == FILES
    for n in range(1, FILES + 1):
        assert f"applied 00{n}_f.sql (3 statements" in result.output


@pytest.mark.parametrize("kind", sorted(FAILURES))
@pytest.mark.parametrize("failing", [1, 3, FILES])
def test_a_failing_file_in_a_batch_ends_as_it_would_alone(db, tmp_path, failing, kind):
    body, sqlstate = FAILURES[kind]
    files = {f"00{n}_f.sql": good(n) for n in range(1, FILES + 1)}
    files[f"00{failing}_f.sql"] = body.format(n=failing)
    prepared(db, tmp_path, files)

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_MIGRATION_FAILED, result.output
    assert f"migration 00{failing}_f.sql failed at statement 3 of 3 (00{failing}_f.sql:3)" in result.err
    assert sqlstate in result.err
    before = list(range(1, failing))
    assert db.applied() == ["000_setup.sql"] + [f"00{n}_f.sql" for n in before]  # each once: names are unique
    for n in before:
        assert f"applied 00{n}_f.sql" in result.output
    assert f"applied 00{failing}_f.sql" not in result.output
    assert {f"t{n}" for n in range(1, FILES + 1)} & db.tables() == {f"t{n}" for n in before}
    assert calls(db) == len(before) + 1  # the failing file's statements ran once; later files not at all
    if before:  # the files before it ran in the failing round trip itself
        assert len(db.query("SELECT DISTINCT query FROM seen")) == 1

    write(tmp_path, {f"00{failing}_f.sql": good(failing)})
    again = db.run("--dir", str(tmp_path))
    assert again.code == EXIT_OK, again.output
    assert db.applied() == ["000_setup.sql"] + [f"00{n}_f.sql" for n in range(1, FILES + 1)]


@pytest.mark.parametrize("failing", [1, 3])
def test_a_syntax_error_in_a_batch_applies_the_files_before_it_and_names_it(db, tmp_path, failing):
    """PostgreSQL parses a whole query before running it: nothing of the batch ran, and the
    files before the bad one are still applied (once), as one file per round trip would."""
    files = {f"00{n}_f.sql": good(n) for n in range(1, FILES + 1)}
    files[f"00{failing}_f.sql"] = "SELECT nextval('calls');\nCREATE TABLE t (id int;\n"
    prepared(db, tmp_path, files)

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_MIGRATION_FAILED, result.output
    assert f"migration 00{failing}_f.sql failed at statement 2 of 2 (00{failing}_f.sql:2)" in result.err
    assert "SQLSTATE 42601" in result.err
    assert db.applied() == ["000_setup.sql"] + [f"00{n}_f.sql" for n in range(1, failing)]
    assert calls(db) == failing - 1  # nothing of the bad file ran, nothing ran twice


def test_a_row_that_does_not_land_in_a_batch_stops_there(db, tmp_path):
    files = {f"00{n}_f.sql": good(n) for n in range(1, FILES + 1)}
    prepared(db, tmp_path, files)
    db.execute(
        "CREATE FUNCTION public.discard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.migration_name = '003_f.sql' THEN RETURN NULL; END IF; RETURN NEW; END $$;\n"
        "CREATE TRIGGER discard BEFORE INSERT ON public.schema_migrations FOR EACH ROW "
        "EXECUTE FUNCTION public.discard();\n")

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_BAD_INPUT, result.output
    assert "migration 003_f.sql ran, but its row in public.schema_migrations did not land" in result.err
    assert db.applied() == ["000_setup.sql", "001_f.sql", "002_f.sql"]
    assert {"t1", "t2", "t3", "t4"} & db.tables() == {"t1", "t2"}


def test_a_lost_lock_in_the_middle_of_a_batch_stops_before_that_file_commits(db, tmp_path):
    files = {f"00{n}_f.sql": good(n) for n in range(1, FILES + 1)}
    files["003_f.sql"] = "CREATE TABLE t3 (id int);\nSELECT pg_sleep(3);\n"
    prepared(db, tmp_path, files)
    runner = db.spawn("--dir", str(tmp_path))
    wait_for_query(db, "pg_sleep(3)")
    end_the_lock_session(db)

    assert runner.wait(timeout=30) == EXIT_TRANSIENT
    out, err = runner.stdout.read(), runner.stderr.read()
    assert "lost the migration lock while applying 003_f.sql" in err
    assert "applied 002_f.sql" in out and "applied 003_f.sql" not in out
    assert db.applied() == ["000_setup.sql", "001_f.sql", "002_f.sql"]
    assert {"t1", "t2", "t3", "t4"} & db.tables() == {"t1", "t2"}


def test_a_lock_timeout_in_the_middle_of_a_batch_retries_that_file_and_goes_on(db, tmp_path):
    import threading

    files = {f"00{n}_f.sql": good(n) for n in range(1, FILES + 1)}
    files["003_f.sql"] = "SELECT nextval('calls');\nALTER TABLE items ADD COLUMN name text;\n"
    prepared(db, tmp_path, files)
    db.execute("CREATE TABLE items (id int)")
    blocker = hold_share_lock(db, "items")
    threading.Timer(0.8, blocker.rollback).start()
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "100ms", "--lock-retries", "5",
                        "--retry-delay", "0.3")
    finally:
        blocker.close()

    assert result.code == EXIT_OK, result.output
    assert "lock timeout in 003_f.sql; attempt 1 rolled back, retrying in 0.3s" in result.out
    assert db.applied() == ["000_setup.sql"] + [f"00{n}_f.sql" for n in range(1, FILES + 1)]
    assert result.out.index("applied 002_f.sql") < result.out.index("lock timeout in 003_f.sql")
    attempts = result.out.count("lock timeout in 003_f.sql") + 1
    assert calls(db) == FILES - 1 + attempts  # each other file's statement once, 003's once per attempt


LEAVE_BEHIND = (
    "CREATE TEMP TABLE scratch (id int);\n"
    "PREPARE lookup AS SELECT 1;\n"
    "LISTEN jobs;\n"
    "DECLARE held CURSOR WITH HOLD FOR SELECT 1;\n"
    "SELECT pg_advisory_lock(4242);\n"
    "SET search_path = pg_temp, public;\n"
    "SET ROLE NONE;\n"
)
OBSERVE = (
    "INSERT INTO seen SELECT concat_ws(',',\n"
    "  (SELECT count(*) FROM pg_prepared_statements), (SELECT count(*) FROM pg_listening_channels()),\n"
    "  (SELECT count(*) FROM pg_cursors),\n"
    "  (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objid = 4242),\n"
    "  to_regclass('pg_temp.scratch') IS NOT NULL, current_setting('search_path')), current_query();\n"
)


def test_nothing_of_one_files_session_reaches_the_next_in_the_same_batch(db, tmp_path):
    prepared(db, tmp_path, {"001_leave.sql": LEAVE_BEHIND, "002_observe.sql": OBSERVE,
                            "003_leave.sql": LEAVE_BEHIND, "004_observe.sql": OBSERVE})

    result = db.run("--dir", str(tmp_path))

    assert result.code == EXIT_OK, result.output
    rows = db.query("SELECT file, query FROM seen")
    assert [file for file, _ in rows] == ["0,0,0,0,f,\"$user\", public"] * 2
    assert all("PREPARE lookup" in query for _, query in rows)  # it ran in the leaving file's round trip


def test_batches_hold_consecutive_small_transactional_files_within_their_bounds(tmp_path, monkeypatch):
    from runner.discovery import load_directories
    from runner.run import plan_all

    monkeypatch.setattr(executor, "BATCH_FILES", 3)
    monkeypatch.setattr("runner.run.BATCH_FILES", 3)
    files = {f"00{n}_f.sql": "SELECT 1;\n" for n in range(1, 6)}
    files["006_alone.sql"] = "-- runner:no-transaction\nSELECT 1;\n"
    files["007_f.sql"] = "SELECT 1;\n"
    files["008_large.sql"] = "SELECT 1;\n" + "-- padding\n" * (executor.BATCH_FILE_BYTES // 10)
    files["009_f.sql"] = "SELECT 1;\n"
    write(tmp_path, files)
    migrations = load_directories([tmp_path])
    scripts = plan_all(migrations)

    def batchable(script):
        return script.transactional and len(script.kept.raw) <= executor.BATCH_FILE_BYTES

    groups = [[m.name[:3] for m in group] for group in batches(migrations, scripts, batchable)]

    assert groups == [["001", "002", "003"], ["004", "005"], ["006"], ["007"], ["008"], ["009"]]
