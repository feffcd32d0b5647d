"""One rule for timeouts in the stack settings and in the runner, and the server agrees with it."""

import contextlib

import psycopg2
import pytest

from runner.connection import session_options
from tests.test_program_settings import load, problems

ACCEPTED = ["5s", "500ms", "0", "1.5s", "10min", "2h", "1d", "250000us", "24d",
            "0s", "0min"]  # zero with a unit disables the timeout as 0 does
REFUSED = [
    "5 s",  # the server splits startup options at spaces: refused at connection start, retried for a minute
    "5",  # a bare number is milliseconds to PostgreSQL, rarely what was meant
    "5sec", "5S", "-1s", " ", "soon",
    "25d",  # more than 2^31-1 milliseconds
    "0.1us",  # rounds to 0, which disables the timeout
    "\u0665s", "\uff15s",  # digits of other scripts (Arabic-Indic, fullwidth five): the server reads ASCII digits only
]


@pytest.mark.parametrize("value", ACCEPTED)
def test_a_timeout_both_accept(value):
    from runner.run import duration_problem

    assert duration_problem(value) is None
    assert load(**{"migrations.lockTimeout": value}).migrations.lock_timeout == value


@pytest.mark.parametrize("value", REFUSED)
def test_a_timeout_both_refuse(value):
    from runner.run import duration_problem

    assert duration_problem(value.strip()) is not None  # the command line strips what it reads
    assert "migrations.lockTimeout: " in problems(**{"migrations.lockTimeout": value})


def test_every_accepted_timeout_is_accepted_by_the_server_at_connection_start(db):
    for value in ACCEPTED:
        options = session_options(value, value, value)
        with contextlib.closing(psycopg2.connect(db.dsn, options=options)) as connection, \
                connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] is not None


def test_the_stack_says_what_a_duration_is():
    text = problems(**{"migrations.statementTimeout": "5 min"})
    assert "migrations.statementTimeout: '5 min' is not a PostgreSQL duration: a number and a unit" in text
    assert "with no space" in text
