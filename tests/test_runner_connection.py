"""Connecting from the backend's environment: POSTGRES_*, DATABASE_URL, passwords, waiting."""

import contextlib
import time

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
    "postgresql://app:s3cretPW@db.internal:54x2/app",  # a port that is not a number
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
