"""Connecting from the backend's environment: POSTGRES_*, DATABASE_URL, passwords, waiting."""

import contextlib
import time

import psycopg2
import pytest

from runner.connection import target_from_env
from runner.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT, UsageError
from runner.scratch import free_port
from tests.pg import write

PASSWORD = "p@ss:w/rd?x y#1'\"\\"


@pytest.fixture
def scram_role(controllable_server):
    """A role that must present its password (the scratch server trusts everyone else)."""
    scratch = controllable_server.scratch
    with contextlib.closing(controllable_server.admin()) as admin, admin.cursor() as cursor:
        cursor.execute("SET password_encryption = 'scram-sha-256'")
        cursor.execute("DROP ROLE IF EXISTS app_user")
        cursor.execute("CREATE ROLE app_user LOGIN CREATEDB PASSWORD %s", (PASSWORD,))
    hba = scratch.data / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text("host all app_user 127.0.0.1/32 scram-sha-256\n" + original)
    with contextlib.closing(controllable_server.admin()) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT pg_reload_conf()")
    yield "app_user"
    hba.write_text(original)
    with contextlib.closing(controllable_server.admin()) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT pg_reload_conf()")


def postgres_env(db, user, password):
    scratch = db.server.scratch
    return {
        "DATABASE_URL": "",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(scratch.port),
        "POSTGRES_USER": user,
        "POSTGRES_PASSWORD": password,
        "POSTGRES_DB": db.name,
    }


def test_postgres_variables_with_a_password_full_of_url_characters_connect(db, tmp_path, scram_role):
    db.execute(f"GRANT ALL ON SCHEMA public TO {scram_role}")
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    result = db.run("--dir", str(tmp_path), env=postgres_env(db, scram_role, PASSWORD))
    assert result.code == EXIT_OK, result.output
    assert f"connected to {scram_role}@127.0.0.1:" in result.out
    assert db.query("SELECT tableowner FROM pg_tables WHERE tablename = 'a'") == [(scram_role,)]


def test_a_wrong_password_fails_at_once_without_printing_any_password(db, tmp_path, scram_role):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    wrong = "Wr0ng-S3cret@host:5432/db?"
    started = time.monotonic()
    result = db.run("--dir", str(tmp_path), "--wait-for-db", "30", env=postgres_env(db, scram_role, wrong))
    assert result.code == EXIT_BAD_INPUT
    assert time.monotonic() - started < 10  # not retried for the whole --wait-for-db
    assert "refused the connection" in result.err and "password authentication failed" in result.err
    assert "retrying does not help" in result.err
    assert wrong not in result.output and PASSWORD not in result.output


@pytest.mark.parametrize("change, reason", [
    ({"POSTGRES_DB": "no_such_database"}, 'database "no_such_database" does not exist'),
    ({"POSTGRES_USER": "no_such_role"}, 'role "no_such_role" does not exist'),
])
def test_a_database_or_role_that_does_not_exist_fails_at_once(db, controllable_server, tmp_path, change, reason):
    write(tmp_path, {"001_a.sql": "SELECT 1;"})
    env = dict(postgres_env(db, "postgres", ""), **change)
    env["DATABASE_URL"] = ""
    result = db.run("--dir", str(tmp_path), "--wait-for-db", "30", env=env)
    assert result.code == EXIT_BAD_INPUT, result.output
    assert reason in result.err


MALFORMED_URLS = [
    "postgresql://app:s3cr/etPW@db.internal:5432/app",  # an unescaped / in the password
    "postgresql://app:s3cr@etPW@db.internal:5432/app",  # an unescaped @
    "postgresql://app:s3cr?etPW@db.internal:5432/app",  # an unescaped ?
    "postgresql://app:s3cr#etPW@db.internal:5432/app",  # an unescaped #
    "postgresql://app:s3cr%zzetPW@db.internal:5432/app",  # a broken percent escape
    "postgresql://app:s3cr:etPW@db.internal:s3cr:etPW/app",  # a "port" that holds the password's text
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_nothing_of_a_malformed_database_url_is_printed_anywhere(tmp_path, url):
    from tests.pg import Database

    write(tmp_path / "m", {"001_a.sql": "SELECT 1;"})
    log = tmp_path / "termination-log"
    log.write_text("")

    class FromUrl(Database):
        def __init__(self):
            self.dsn = url

    result = FromUrl().run("--dir", str(tmp_path / "m"), "--wait-for-db", "1",
                           env={"TERMINATION_LOG": str(log)})
    printed = result.output + log.read_text()
    assert result.code == EXIT_BAD_INPUT, printed
    for fragment in ("s3cr", "etPW"):
        assert fragment not in printed
    assert "percent-encode" in result.err


def test_a_bad_option_in_a_database_url_fails_at_once_without_the_password(tmp_path):
    from tests.pg import Database

    write(tmp_path, {"001_a.sql": "SELECT 1;"})

    class FromUrl(Database):
        def __init__(self):
            self.dsn = "postgres://app:s3cr etPW@db.internal/app?sslmode=bogus"

    result = FromUrl().run("--dir", str(tmp_path), "--wait-for-db", "30")
    assert result.code == EXIT_BAD_INPUT
    assert 'invalid sslmode value: "bogus"' in result.err
    assert "s3cr" not in result.output and "etPW" not in result.output


def test_unreachable_database_exits_transient_after_the_wait_bound(tmp_path):
    write(tmp_path, {"001_a.sql": "SELECT 1;"})
    from tests.pg import Database

    class Nowhere(Database):
        def __init__(self):
            self.dsn = f"postgresql://postgres:secret-pw@127.0.0.1:{free_port()}/x"

    result = Nowhere().run("--dir", str(tmp_path), "--wait-for-db", "1")
    assert result.code == EXIT_TRANSIENT
    assert "not reachable after 1s" in result.err
    assert "waiting for database postgres@127.0.0.1:" in result.out
    assert "secret-pw" not in result.output


def test_a_well_formed_url_with_escaped_characters_connects(db, tmp_path, scram_role):
    from urllib.parse import quote

    db.execute(f"GRANT ALL ON SCHEMA public TO {scram_role}")
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    url = f"postgresql://{scram_role}:{quote(PASSWORD, safe='')}@127.0.0.1:{db.server.scratch.port}/{db.name}"
    result = db.run("--dir", str(tmp_path), env={"DATABASE_URL": url})
    assert result.code == EXIT_OK, result.output
    assert PASSWORD not in result.output and quote(PASSWORD, safe="") not in result.output


def test_no_database_settings_is_a_usage_error():
    with pytest.raises(UsageError, match="set DATABASE_URL, or POSTGRES_HOST"):
        target_from_env({})


def test_sslmode_and_application_name_reach_the_dsn_and_the_display_hides_the_password():
    target = target_from_env(
        {"POSTGRES_HOST": "db", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "a b@c", "POSTGRES_DB": "app"},
        sslmode="require",
    )
    from psycopg2.extensions import parse_dsn

    assert parse_dsn(target.dsn) == {
        "host": "db", "port": "5432", "user": "u", "password": "a b@c", "dbname": "app",
        "application_name": "db-migrations", "sslmode": "require",
    }
    assert target.display == "u@db:5432/app"


def test_redis_url_is_accepted_and_ignored(db, tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    result = db.run("--dir", str(tmp_path), env={"REDIS_URL": "redis://:pw@redis:6379/0"})
    assert result.code == EXIT_OK
    assert "redis://" not in result.output


def test_servers_that_do_not_know_the_client_check_setting_are_still_used(db, tmp_path, monkeypatch):
    # PostgreSQL < 14 rejects client_connection_check_interval at connection start.
    monkeypatch.setattr("runner.connection._CLIENT_CHECK", "no_such_setting_on_this_server=1")
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    result = db.run("--dir", str(tmp_path))
    assert result.code == EXIT_OK, result.output
    assert "a" in db.tables()


# -- what the password's text must never reach, whatever path the message took -----------------

# libpq options whose invalid values libpq quotes back in its error (fe-connect.c). Not
# connect_timeout: psycopg2 connects asynchronously when a wait callback is set (the runner's
# is), and libpq reads connect_timeout only in its blocking connect.
QUOTED_BACK = ["gssencmode", "target_session_attrs", "sslmode", "channel_binding", "load_balance_hosts",
               "sslnegotiation", "sslcertmode", "require_auth", "ssl_min_protocol_version", "keepalives"]


def run_with_url(url: str, *args: str, env: dict | None = None):
    """The runner with only DATABASE_URL set (nothing reachable needed), its termination log read back."""
    import tempfile
    from pathlib import Path

    from tests.pg import Database

    folder = Path(tempfile.mkdtemp())
    write(folder / "m", {"001_a.sql": "SELECT 1;"})
    log = folder / "termination-log"
    log.write_text("")

    class FromUrl(Database):
        def __init__(self):
            self.dsn = url

    started = time.monotonic()
    result = FromUrl().run("--dir", str(folder / "m"), *args, env=dict({"TERMINATION_LOG": str(log)}, **(env or {})))
    return result, log.read_text(), time.monotonic() - started


def test_check_server_errors_never_print_the_password():
    url = "postgresql://app:Hunter2secret@127.0.0.1:1/postgres?gssencmode=Hunter2secret"
    result, log, _ = run_with_url(url, "check", "--server", url)
    assert result.code == EXIT_BAD_INPUT, result.output
    assert "invalid gssencmode value" in result.err
    assert "Hunter2secret" not in result.output + log


def test_an_invalid_option_value_is_refused_at_once_not_retried_as_an_outage():
    result, _, elapsed = run_with_url("postgresql://app@127.0.0.1:1/app?target_session_attrs=primary-only",
                                      "--wait-for-db", "30")
    assert result.code == EXIT_BAD_INPUT, result.output
    assert elapsed < 5
    assert 'invalid target_session_attrs value: "primary-only"' in result.err
    assert "waiting for database" not in result.out


def _password_and_option_values():
    from hypothesis import strategies as st

    text = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="\\"), max_size=6)
    # Passwords as people make them: at least one letter (a digits-only value is a valid timeout).
    password = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=6, max_size=16).filter(
        lambda p: any(c.isalpha() for c in p))
    return st.tuples(password, st.sampled_from(QUOTED_BACK), text, text, st.sampled_from(["apply", "check"]))


# Values that some option accepts: a generated value equal to one is not a bad value.
VALID_VALUES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full", "any", "read-write", "read-only",
                "primary", "standby", "prefer-standby", "random", "postgres", "direct", "password", "md5", "gss",
                "sspi", "scram-sha-256", "none", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}


def test_no_option_value_holding_the_password_ever_reaches_the_output():
    """Property: whatever option libpq quotes back and wherever the password's text sits in its
    value, percent-encoded or not, nothing printed or written to the termination log holds it;
    and the run stops at once with exit 2, since such a value never becomes valid."""
    from urllib.parse import quote

    from hypothesis import assume, given, settings

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(_password_and_option_values())
    def check(case):
        password, option, before, after, command = case
        value = before + password + after
        assume(value not in VALID_VALUES)
        url = (f"postgresql://app:{quote(password, safe='')}@127.0.0.1:1/app"
               f"?{option}={quote(value, safe='')}")
        args = ("check", "--server", url) if command == "check" else ("--wait-for-db", "1")
        result, log, _ = run_with_url(url, *args)
        printed = result.output + log
        assert result.code == EXIT_BAD_INPUT, printed  # not 75: such a value never becomes valid
        for form in {password, quote(password, safe="")}:
            assert form not in printed, (option, printed)

    check()


# -- the user's own session settings: options=, application_name, PGOPTIONS, PGAPPNAME -----------

SEEN = ("CREATE TABLE seen AS SELECT current_schema() AS schema, current_setting('application_name') AS app, "
        "current_setting('work_mem') AS work_mem, current_setting('lock_timeout') AS lock_timeout;\n")


def test_options_and_application_name_in_the_database_url_reach_every_migration(db, tmp_path):
    from urllib.parse import quote

    db.execute("CREATE SCHEMA app")
    write(tmp_path, {"001_t.sql": "CREATE TABLE t (id int);\n", "002_seen.sql": SEEN})
    url = f"{db.dsn}?options={quote('-c search_path=app -c work_mem=7MB')}&application_name=ideaforge-backend"
    result = db.run("--dir", str(tmp_path), env={"DATABASE_URL": url})
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT to_regclass('app.t') IS NOT NULL, to_regclass('public.t') IS NULL") == [(True, True)]
    # The second migration starts after RESET ALL: the user's settings are the session's defaults.
    assert db.query("SELECT * FROM app.seen") == [("app", "ideaforge-backend (db-migrations)", "7MB", "5s")]


def test_pgoptions_and_pgappname_are_kept_too(db, tmp_path):
    db.execute('CREATE SCHEMA "Billing Data"')
    write(tmp_path, {"001_seen.sql": SEEN})
    result = db.run("--dir", str(tmp_path), env={"PGOPTIONS": '-c search_path="Billing\\ Data"',
                                                  "PGAPPNAME": "nightly"})
    assert result.code == EXIT_OK, result.output
    assert db.query('SELECT schema, app FROM "Billing Data".seen') == [("Billing Data", "nightly (db-migrations)")]


def test_the_runners_own_timeouts_win_over_the_urls_and_it_says_so(db, tmp_path):
    from urllib.parse import quote

    write(tmp_path, {"001_seen.sql": SEEN})
    url = f"{db.dsn}?options={quote('-c lock_timeout=0')}"
    result = db.run("--dir", str(tmp_path), "--lock-timeout", "3s", env={"DATABASE_URL": url})
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT lock_timeout FROM seen") == [("3s",)]
    assert "the connection's options set lock_timeout=0; migrations use the runner's own value" in result.out


def test_an_option_the_server_refuses_at_connection_start_fails_at_once(db, tmp_path):
    from urllib.parse import quote

    write(tmp_path, {"001_a.sql": "SELECT 1;"})
    url = f"{db.dsn}?options={quote('-c work_mem=lots')}"
    started = time.monotonic()
    result = db.run("--dir", str(tmp_path), "--wait-for-db", "30", env={"DATABASE_URL": url})
    assert result.code == EXIT_BAD_INPUT, result.output
    assert time.monotonic() - started < 5
    assert 'invalid value for parameter "work_mem": "lots"' in result.err
    assert "refused the options sent at connection start" in result.err


# -- timeouts are checked as strictly as the server reads them -----------------------------------

@pytest.mark.parametrize("variable, value", [
    ("MIGRATION_LOCK_TIMEOUT", "5 s"),
    ("MIGRATION_STATEMENT_TIMEOUT", "5"),  # PostgreSQL would read 5 milliseconds
    ("MIGRATION_IDLE_IN_TRANSACTION_TIMEOUT", "30days"),
    ("MIGRATION_LOCK_TIMEOUT", "30d"),  # past the 32-bit milliseconds PostgreSQL holds
])
def test_a_timeout_the_server_would_refuse_fails_before_connecting(db, tmp_path, variable, value):
    write(tmp_path, {"001_a.sql": "SELECT 1;"})
    started = time.monotonic()
    result = db.run("--dir", str(tmp_path), "--wait-for-db", "30", env={variable: value})
    assert result.code == EXIT_BAD_INPUT, result.output
    assert time.monotonic() - started < 5
    assert f"({variable}) {value!r}" in result.err
    assert "connected" not in result.out


# -- where the runner connects, said truthfully -------------------------------------------------

def test_a_service_file_target_is_shown_as_where_it_connected(db, tmp_path, monkeypatch):
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[appdb]\nhost=127.0.0.1\nport={db.server.scratch.port}\ndbname={db.name}\nuser=postgres\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    write(tmp_path / "m", {"001_a.sql": "CREATE TABLE a (id int);"})
    result = db.run("--dir", str(tmp_path / "m"), env={"DATABASE_URL": "service=appdb"})
    assert result.code == EXIT_OK, result.output
    assert f"connected to postgres@127.0.0.1:{db.server.scratch.port}/{db.name}" in result.out
    assert "?@" not in result.output


def test_a_missing_service_file_fails_at_once(db, tmp_path, monkeypatch):
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "absent.conf"))
    write(tmp_path / "m", {"001_a.sql": "SELECT 1;"})
    started = time.monotonic()
    result = db.run("--dir", str(tmp_path / "m"), "--wait-for-db", "30", env={"DATABASE_URL": "service=appdb"})
    assert result.code == EXIT_BAD_INPUT, result.output
    assert time.monotonic() - started < 5
    assert f'service file "{tmp_path / "absent.conf"}" not found' in result.err
    assert "cannot connect to service appdb" in result.err


def test_the_readmes_port_placeholder_is_named_as_the_problem():
    result, _, _ = run_with_url("postgresql://postgres@127.0.0.1:PORT/postgres")
    assert result.code == EXIT_BAD_INPUT
    assert "DATABASE_URL's port is 'PORT', not a number" in result.err
    assert "percent-encode" not in result.err


def test_waiting_for_a_wrong_port_prints_a_line_when_something_changes_not_every_attempt(tmp_path):
    result, _, _ = run_with_url(f"postgresql://postgres@127.0.0.1:{free_port()}/x", "--wait-for-db", "8")
    assert result.code == EXIT_TRANSIENT
    waiting = [line for line in result.out.splitlines() if line.startswith("waiting for database")]
    assert len(waiting) == 1, result.out
    assert "not reachable after 8s" in result.err


def test_a_server_that_never_answers_is_given_up_on_within_the_wait(tmp_path):
    """libpq ignores connect_timeout when psycopg2 polls the connection (the runner's wait
    callback): without a bound of its own, one attempt would hang past --wait-for-db, for ever."""
    import socket
    import subprocess
    import sys

    from tests.pg import ROOT

    write(tmp_path, {"001_a.sql": "SELECT 1;"})
    with socket.socket() as silent:  # accepts TCP connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/x?sslmode=disable"
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "runner", "--dir", str(tmp_path), "--wait-for-db", "3"],
                                env={"DATABASE_URL": url, "TERMINATION_LOG": "", "PYTHONPATH": str(ROOT)},
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert time.monotonic() - started < 15
    assert "did not complete the connection" in result.stderr


# -- the user's options and the runner's own session ----------------------------------------------

FIXED_CLOCK = "CREATE FUNCTION app.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$"


def test_the_users_search_path_decides_the_migrations_names_but_never_the_runners(db, tmp_path):
    """options= puts `app` before pg_catalog, where app.now() answers 2000-01-01: the migration's
    SQL sees it; the history the runner writes on its own session (no-transaction progress, the
    row of a transactional file) does not."""
    from urllib.parse import quote

    db.execute(f"CREATE SCHEMA app; {FIXED_CLOCK}")
    write(tmp_path, {
        "001_clock.sql": "CREATE TABLE clock AS SELECT now() AS seen;\n",
        "002_index.sql": "-- runner:no-transaction\nCREATE INDEX CONCURRENTLY clock_seen ON clock (seen);\n",
    })
    url = f"{db.dsn}?options={quote('-c search_path=app,pg_catalog')}"
    result = db.run("--dir", str(tmp_path), env={"DATABASE_URL": url})
    assert result.code == EXIT_OK, result.output
    assert db.query("SELECT extract(year FROM seen)::int FROM app.clock") == [(2000,)]
    # The history is public.schema_migrations (found in the catalog, not through app), its
    # times the server's own.
    assert db.query("SELECT migration_name, extract(year FROM applied_at)::int > 2000 FROM public.schema_migrations "
                    "ORDER BY 1") == [("001_clock.sql", True), ("002_index.sql", True)]
    assert db.query("SELECT to_regclass('app.schema_migrations')") == [(None,)]
    # Without the options, the same history: nothing runs twice.
    again = db.run("--dir", str(tmp_path))
    assert again.code == EXIT_OK and "nothing to apply; 2 migrations already applied" in again.out, again.output


def test_the_lock_sessions_search_path_comes_after_the_users_and_the_server_takes_the_last(db):
    from runner.connection import lock_session_options, session_options

    options = lock_session_options(session_options("5s", "5min", "60s", "-c search_path=app"))
    with contextlib.closing(psycopg2.connect(db.dsn, options=options)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('search_path'), current_setting('lock_timeout')")
        assert cursor.fetchone() == ("pg_catalog,pg_temp", "5s")


def test_a_line_built_from_the_connection_options_is_redacted_where_it_is_printed():
    # The note about the user's own lock_timeout quotes the options as given, with no redaction
    # of its own: only the reporter's stands between it and the log.
    url = "postgresql://app:Hunter2secret@127.0.0.1:1/postgres?options=-c%20lock_timeout%3DHunter2secret"
    for log_format in ("text", "json"):
        result, log, _ = run_with_url(url, "--wait-for-db", "0", "--log-format", log_format)
        assert "the connection's options set lock_timeout=***" in result.out, result.output
        assert "Hunter2secret" not in result.output + log
