"""`make postgres` (python -m runner.scratch): a local server that leaves nothing behind."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from tests.pg import ROOT, write


def environment_without_xdg() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# The last case: started with SIGINT ignored, as a script's background command is (Python then
# leaves it ignored unless the program handles it), Ctrl-C still stops it.
@pytest.mark.parametrize("signum, started_ignoring_sigint", [
    (signal.SIGTERM, False), (signal.SIGHUP, False), (signal.SIGINT, False), (signal.SIGINT, True)])
def test_make_postgres_stopped_by_a_signal_removes_its_server_and_data(signum, started_ignoring_sigint):
    process = subprocess.Popen([sys.executable, "-m", "runner.scratch"], env=environment_without_xdg(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ignore_sigint if started_ignoring_sigint else None)
    try:
        first = process.stdout.readline()
        assert "is up" in first, first + process.stderr.read()
        port = int(first.split()[1])
        with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=port, user="postgres",
                                                 dbname="postgres")) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            data = Path(cursor.fetchone()[0])
        assert data.is_dir()
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert not data.parent.exists(), f"{data.parent} was left behind"
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=3).close()
    assert "XDG_RUNTIME_DIR" not in process.stderr.read()


def test_runner_check_prints_no_runtime_dir_warning(tmp_path):
    write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    result = subprocess.run([sys.executable, "-m", "runner", "check", "--dir", str(tmp_path)],
                            env=environment_without_xdg(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stdout + result.stderr
    assert result.stderr == ""
