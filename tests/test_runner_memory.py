"""A migration that is one large statement costs the runner about what it costs psql in memory:
the Job's memory limit is the same for both, and a seed file is often one INSERT ... VALUES."""

import os
import subprocess
import sys

from runner.errors import EXIT_OK
from runner.scratch import _binaries
from tests.pg import ROOT

# A parent that does nothing but wait: a child's peak memory includes its parent's size at the
# fork (Linux carries the high-water mark across fork and exec), so the parent must be small.
_PEAK = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[1], sys.argv[1:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def peak_kib(command: list[str], env: dict) -> int:
    result = subprocess.run([sys.executable, "-S", "-c", _PEAK, *command], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    code, peak = result.stdout.split()[-2:]
    assert int(code) == EXIT_OK, result.stderr
    return int(peak)


def one_insert(path, megabytes: int) -> None:
    row = "('" + "x" * 90 + "')"
    count = megabytes * 1024 * 1024 // (len(row) + 2)
    with path.open("w") as handle:
        handle.write("CREATE TABLE seed (id bigserial, v text);\nINSERT INTO seed (v) VALUES\n")
        handle.write(",\n".join([row] * count) + ";\n")


def test_one_large_statement_peaks_within_two_and_a_half_times_psqls_memory(pg_server, tmp_path):
    one_insert(tmp_path / "001_seed.sql", 16)
    by_psql, by_runner = pg_server.create_database(), pg_server.create_database()
    try:
        psql = peak_kib([str(_binaries() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1",
                         "-f", str(tmp_path / "001_seed.sql"), by_psql.dsn], dict(os.environ))
        runner = peak_kib([sys.executable, "-m", "runner", "--dir", str(tmp_path)],
                          dict(os.environ, **by_runner.environ, PYTHONPATH=str(ROOT)))
        assert by_runner.query("SELECT count(*) FROM seed") == by_psql.query("SELECT count(*) FROM seed")
    finally:
        pg_server.drop_database(by_psql.name)
        pg_server.drop_database(by_runner.name)
    assert runner < 2.5 * psql, f"runner peak {runner / 1024:.0f} MiB, psql {psql / 1024:.0f} MiB"
