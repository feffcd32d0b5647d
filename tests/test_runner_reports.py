"""What the runner says when something else is in the way: blockers, standbys, lost sessions.

Each message must be true (what happened, where), actionable, and free of secrets.
"""

import contextlib
import json
import re
import time
from pathlib import Path

import psycopg2
import pytest
import yaml

from runner.errors import EXIT_BAD_INPUT, EXIT_MIGRATION_FAILED, EXIT_OK, EXIT_TRANSIENT
from runner.scratch import ScratchPostgres
from tests.pg import ROOT, Database, write


def blocking_session(db, table: str, last_query: str):
    """A session that holds a lock on `table` and whose last query (what pg_stat_activity shows)
    is `last_query`, as a DBA's session idle in transaction would."""
    blocker = db.connect()
    blocker.autocommit = False
    with blocker.cursor() as cursor:
        cursor.execute("SET application_name = 'dba-console'")
        cursor.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")
        cursor.execute(last_query)
    return blocker


# -- the blocker is reported without the literals of its SQL -----------------------------------

def run_behind_a_blocker(db, tmp_path, blockers_query: str):
    """One run (JSON log, one lock retry) while a session whose last query is `blockers_query`
    holds a lock on `items`; returns the result and the termination log's path."""
    log = tmp_path / "termination-log"
    log.write_text("")
    blocker = blocking_session(db, "items", blockers_query)
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "600ms", "--lock-retries", "1",
                        "--retry-delay", "0.1", "--log-format", "json", env={"TERMINATION_LOG": str(log)})
    finally:
        blocker.close()
    return result, log


def test_the_blocking_sessions_query_is_reported_without_its_secrets(db, tmp_path):
    db.execute("CREATE TABLE items (id int); CREATE ROLE reporting_reader")
    write(tmp_path, {"001_alter.sql": "ALTER TABLE items ADD COLUMN name text;\n"})
    result, log = run_behind_a_blocker(db, tmp_path, "ALTER ROLE reporting_reader PASSWORD 'S3cret-Rotation-2025'")
    assert result.code == EXIT_TRANSIENT, result.output
    printed = result.output + log.read_text()
    assert "S3cret-Rotation-2025" not in printed
    retry = next(json.loads(line) for line in result.out.splitlines() if '"lock_timeout_retry"' in line)
    assert retry["blockers"] and "ALTER ROLE reporting_reader PASSWORD ?" in retry["blockers"][0]
    assert "dba-console" in retry["blockers"][0]
    assert "ALTER ROLE reporting_reader PASSWORD ?" in json.loads(result.err.splitlines()[-1])["message"]


def test_customer_data_in_any_kind_of_literal_stays_out_of_the_report(db, tmp_path):
    db.execute("CREATE TABLE customers (id int, email text, note text, card text)")
    write(tmp_path, {"001_alter.sql": "ALTER TABLE customers ADD COLUMN tier text;\n"})
    query = ("UPDATE customers SET email = 'ann@example.com', note = $n$VIP: call 555-0100$n$, "
             "card = E'4111\\'1111', id = 4242 /* ticket: ann's refund */ WHERE id = 17 -- sent by ops")
    blocker = blocking_session(db, "customers", query)
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "600ms", "--lock-retries", "0")
    finally:
        blocker.close()
    assert result.code == EXIT_TRANSIENT
    for secret in ("ann@example.com", "555-0100", "4111", "4242", "ticket", "sent by ops"):
        assert secret not in result.output, secret
    assert "UPDATE customers SET email = ?, note = ?, card = ?, id = ? WHERE id = ?" in result.err


@pytest.mark.parametrize("query, shown", [
    ("SELECT 'cut off in the midd", "SELECT ?"),  # track_activity_query_size cuts long queries
    ("SELECT $$body", "SELECT ?"),
    ("SELECT 1 /* a comment cut off", "SELECT ?"),
    ('SELECT "Quoted Name", u&\'\\0041\', b\'101\', x\'ff\', 1.5e3, .5 FROM t', 'SELECT "Quoted Name", ?, ?, ?, ?, ? FROM t'),
    ("SELECT $1, a$b FROM t", "SELECT $1, a$b FROM t"),
])
def test_literals_are_removed_also_from_cut_off_and_unusual_sql(query, shown):
    from runner.redaction import without_literals

    assert " ".join(without_literals(query).split()) == shown


# -- why a blocker is not named, said truthfully -----------------------------------------------

@pytest.fixture
def limited_role(db):
    """A login role allowed two connections: the runner's own (the lock session and the migration
    session), none left to look for blockers."""
    db.execute("DROP ROLE IF EXISTS one_conn; CREATE ROLE one_conn LOGIN CONNECTION LIMIT 2")
    db.execute("GRANT ALL ON SCHEMA public TO one_conn; CREATE TABLE items (id int); ALTER TABLE items OWNER TO one_conn")
    yield "one_conn"
    db.execute("DROP OWNED BY one_conn; DROP ROLE one_conn")


def test_a_blocker_that_could_not_be_looked_up_is_not_called_finished(db, tmp_path, limited_role):
    write(tmp_path, {"001_alter.sql": "ALTER TABLE items ADD COLUMN name text;\n"})
    blocker = blocking_session(db, "items", "SELECT 1")
    url = db.dsn.replace("postgres@", f"{limited_role}@")
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "600ms", "--lock-retries", "0",
                        env={"DATABASE_URL": url})
    finally:
        blocker.close()
    assert result.code == EXIT_TRANSIENT, result.output
    assert "may have finished" not in result.err
    assert "the blocking session could not be identified: the second connection that looks it up failed" in result.err
    assert f'too many connections for role "{limited_role}"' in result.err


def test_a_wait_too_short_to_look_at_is_said_to_be_one(db, tmp_path):
    db.execute("CREATE TABLE items (id int)")
    write(tmp_path, {"001_alter.sql": "ALTER TABLE items ADD COLUMN name text;\n"})
    blocker = blocking_session(db, "items", "SELECT 1")
    try:
        result = db.run("--dir", str(tmp_path), "--lock-timeout", "50ms", "--lock-retries", "0")
    finally:
        blocker.close()
    assert result.code == EXIT_TRANSIENT
    assert "the blocking session was not looked up (each wait ended within 0.25s)" in result.err


def test_the_lock_timeout_hint_names_keys_the_program_accepts():
    """Every stack key a runner message names exists in Pulumi.yaml, and no retired flat key is named."""
    from components.settings import MOVED_KEYS

    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    source = "\n".join(p.read_text() for p in (ROOT / "runner").glob("*.py"))
    strings = "\n".join(re.findall(r'"[^"\n]*"', source))  # what messages say, not what code calls
    named = set(re.findall(r"\b(migrations|database|readiness)\.([a-zA-Z]+)\b", strings))
    assert ("migrations", "lockTimeout") in named
    for section, key in named:
        declared = config.get(f"{section}", {}).get("default", {}) if isinstance(config.get(section), dict) else {}
        assert key in declared, f"{section}.{key} is not a key of Pulumi.yaml"
    for retired in MOVED_KEYS:
        assert not re.search(rf"\b{retired}\b", source), f"runner names the retired key {retired}"


# -- read-only targets -------------------------------------------------------------------------

@pytest.fixture
def standby(controllable_server, db):
    """A hot standby of the test server, streaming from it (pg_basebackup -R)."""
    primary = controllable_server.scratch
    replica = ScratchPostgres()
    replica._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                 "-D", str(replica.data), "-R", "-X", "stream", "--no-sync", timeout=120)
    replica.start()
    yield replica
    replica.cleanup()


def test_a_standby_is_refused_by_name_before_anything_runs(db, standby, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    replica = Database(db.server, db.name)
    replica.dsn = standby.url(db.name)
    result = replica.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT, result.output
    assert "is a read-only standby (a replica in recovery)" in result.err
    assert "target_session_attrs=primary" in result.err
    assert replica.run("--dir", str(tmp_path), "status").code == EXIT_OK  # reading is fine on a standby


def test_a_database_set_read_only_is_named_as_such(db, tmp_path):
    db.execute(f'ALTER DATABASE "{db.name}" SET default_transaction_read_only = on')
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT, result.output
    assert "opens sessions read-only (default_transaction_read_only is on" in result.err


# -- a migration that ends its own session -----------------------------------------------------

def test_a_migration_that_terminates_its_own_session_is_not_called_safe_to_retry(db, tmp_path):
    write(tmp_path, {
        "001_a.sql": "CREATE TABLE a (id int);\n",
        "002_kick.sql": "CREATE TABLE b (id int);\n"
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database();\n",
    })
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_MIGRATION_FAILED, result.output
    assert "running again is safe" not in result.err
    assert "this migration calls pg_terminate_backend" in result.err
    assert "pid <> pg_backend_pid()" in result.err
    assert db.applied() == ["001_a.sql"] and "b" not in db.tables()


@pytest.mark.parametrize("marker", ["", "-- runner:no-transaction\n"])
def test_a_migration_that_terminates_the_lock_session_is_not_retried_forever(db, tmp_path, marker):
    """Sparing only its own pid, the migration ends the runner's other session, the one holding the
    migration lock: that would happen on every retry, so exit 1, not the transient lock_lost."""
    write(tmp_path, {
        "001_a.sql": "CREATE TABLE a (id int);\n",
        "002_kick.sql": marker + "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid();\n"
                                 "SELECT pg_sleep(1);\nCREATE TABLE b (id int);\n",
    })
    result = db.run("--dir", str(tmp_path), "--log-format", "json")
    assert result.code == EXIT_MIGRATION_FAILED, result.output
    failure = json.loads(result.err.splitlines()[-1])
    assert failure["error"] == "session_ended_by_migration", failure
    assert "ended the session that holds the migration lock" in failure["message"]
    assert "application_name NOT LIKE '%db-migrations%'" in failure["hint"]
    if not marker:
        assert "b" not in db.tables()  # rolled back before COMMIT


def test_a_blocker_of_a_transaction_block_in_a_no_transaction_file_is_reported_without_its_secrets(db, tmp_path):
    db.execute("CREATE TABLE items (id int); DROP ROLE IF EXISTS block_reader; CREATE ROLE block_reader")
    write(tmp_path, {"001_block.sql": "-- runner:no-transaction\nCREATE TABLE before (id int);\n"
                                      "BEGIN;\nCREATE TABLE inside (id int);\nALTER TABLE items ADD COLUMN name text;\n"
                                      "COMMIT;\n"})
    result, log = run_behind_a_blocker(db, tmp_path, "ALTER ROLE block_reader PASSWORD 'S3cret-Rotation-2025'")
    assert result.code == EXIT_TRANSIENT, result.output
    assert "S3cret-Rotation-2025" not in result.output + log.read_text()
    retry = next(json.loads(line) for line in result.out.splitlines() if '"lock_timeout_retry"' in line)
    assert (retry["rolled_back"], retry["block_start"]) == ("block", 2)
    assert "ALTER ROLE block_reader PASSWORD ?" in retry["blockers"][0]
    assert "ALTER ROLE block_reader PASSWORD ?" in log.read_text()
    assert "inside" not in db.tables() and "before" in db.tables()


def test_the_two_sessions_must_reach_the_same_server(db, standby):
    """The lock session on the primary, the migration session elsewhere (here a standby): the lock
    would not keep a second runner off the migrations, so the run stops."""
    from runner.connection import refuse_other_server
    from runner.errors import UsageError

    with contextlib.closing(db.connect()) as primary, contextlib.closing(db.connect()) as same:
        refuse_other_server(primary, same, "here")
        with contextlib.closing(psycopg2.connect(standby.url(db.name))) as other:
            with pytest.raises(UsageError, match="reached different servers"):
                refuse_other_server(primary, other, "here")
