"""Test databases on a real PostgreSQL: a throw-away server, or TEST_DATABASE_URL's."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psycopg2
import psycopg2.extensions

from runner import cli
from runner.scratch import ScratchPostgres, _binaries

ROOT = Path(__file__).resolve().parent.parent


class Server:
    """Where test databases are created: our own scratch server unless TEST_DATABASE_URL is set."""

    def __init__(self, binaries: Optional[Path] = None) -> None:
        """binaries: a scratch server of another installation (an older major version)."""
        self.external_url = None if binaries else os.environ.get("TEST_DATABASE_URL")
        self.scratch: Optional[ScratchPostgres] = None
        if not self.external_url:
            self.scratch = ScratchPostgres(binaries=binaries).start()

    @property
    def controllable(self) -> bool:
        """True when the tests own the server and may stop, kill or reconfigure it."""
        return self.scratch is not None

    def dsn(self, dbname: str) -> str:
        if self.scratch:
            return self.scratch.url(dbname)
        return psycopg2.extensions.make_dsn(self.external_url, dbname=dbname)

    def admin(self):
        connection = psycopg2.connect(self.dsn("postgres"))
        connection.autocommit = True
        return connection

    def create_database(self, encoding: Optional[str] = None) -> "Database":
        """A new database; in another encoding than the server's (SQL_ASCII, LATIN1) when asked."""
        name = "t_" + uuid.uuid4().hex[:12]
        options = f" TEMPLATE template0 ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C'" if encoding else ""
        with contextlib.closing(self.admin()) as connection, connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"{options}')
        return Database(self, name)

    def drop_database(self, name: str) -> None:
        with contextlib.closing(self.admin()) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.scratch:
            self.scratch.cleanup()


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


class Database:
    def __init__(self, server: Server, name: str):
        self.server = server
        self.name = name
        self.dsn = server.dsn(name)

    @property
    def environ(self) -> dict[str, str]:
        """What the Job gives the runner, plus settings that keep tests fast."""
        return {
            "DATABASE_URL": self.dsn,
            "TERMINATION_LOG": "",
            "MIGRATION_WAIT_FOR_DB": "5",
            "MIGRATION_WAIT_FOR_LOCK": "30",
        }

    def connect(self):
        connection = psycopg2.connect(self.dsn)
        connection.autocommit = True
        return connection

    def query(self, sql: str, params=None) -> list[tuple]:
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def execute(self, sql: str, params=None) -> None:
        self.query(sql, params)

    def tables(self) -> set[str]:
        return {r[0] for r in self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

    def applied(self) -> list[str]:
        if "schema_migrations" not in self.tables():
            return []
        return [r[0] for r in self.query("SELECT migration_name FROM schema_migrations ORDER BY migration_name")]

    def dump(self, *extra: str) -> str:
        """pg_dump of schema and data, without the tracking table: the database's observable state."""
        result = subprocess.run(
            [str(_binaries() / "pg_dump"), "--no-owner", "--no-privileges", "--restrict-key=test",
             "--exclude-table=schema_migrations", "--exclude-table=schema_migrations_id_seq", *extra, self.dsn],
            capture_output=True, text=True, check=True,
        )
        # Sequences are not transactional in PostgreSQL (psql rolls them back no better),
        # so their current values are left out of "the database is as it was".
        return "\n".join(line for line in result.stdout.splitlines() if "pg_catalog.setval(" not in line)

    def tracking_rows(self) -> list[tuple]:
        if "schema_migrations" not in self.tables():
            return []
        return self.query("SELECT * FROM schema_migrations ORDER BY id")

    def run(self, *args: str, env: Optional[dict] = None) -> Result:
        """The runner in this process, as `python -m runner ARGS` with the Job's environment."""
        out, err = io.StringIO(), io.StringIO()
        environ = dict(self.environ, **(env or {}))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args), environ)
            except SystemExit as exc:  # argparse usage errors
                code = exc.code
        return Result(code, out.getvalue(), err.getvalue())

    def spawn(self, *args: str, env: Optional[dict] = None, cwd: Optional[Path] = None) -> subprocess.Popen:
        """The runner as its own process (signals, concurrency)."""
        environ = dict(os.environ, **self.environ, **(env or {}))
        environ["PYTHONPATH"] = str(ROOT)
        return subprocess.Popen(
            [sys.executable, "-m", "runner", *args],
            env=environ, cwd=cwd or ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory
