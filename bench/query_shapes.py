"""What each part of a one-line migration's query costs the server, side by side.

    .venv/bin/python -m bench.query_shapes [ITERATIONS]

Sends the query a one-line migration costs, with and without each of the runner's checks
(statement markers, the tracking row's read-back, the lock check, the session reset), in
interleaved shuffled rounds on a throw-away server, and prints wall time and the server
backend's CPU (from /proc) per migration. BENCHMARKS.md quotes it; the numbers it prints are
relative to "base" (BEGIN, the statement, the tracking row, COMMIT, a short reset).
"""

from __future__ import annotations

import os
import random
import sys
import time

import psycopg2

from runner.scratch import ScratchPostgres

MARK = "SELECT pg_catalog.pg_advisory_lock(7501166, 1);\n"
RECORD = ("SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; SET LOCAL search_path = pg_catalog, pg_temp; "
          "INSERT INTO public.schema_migrations (migration_name, checksum, duration_ms, statements, status, applied_at) "
          "VALUES ('{n}', 'abc', (extract(epoch FROM clock_timestamp() - now()) * 1000)::int, 1, 'applied', now());\n")
LANDED = ("SELECT EXISTS (SELECT FROM public.schema_migrations WHERE migration_name = '{n}' AND checksum = 'abc' "
          "AND status = 'applied')")
LOCK_HELD = "NOT pg_catalog.pg_try_advisory_xact_lock_shared(7, 4242)"
LOCKS_VIEW = ("(SELECT EXISTS (SELECT FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted "
              "AND pid = {pid} AND classid = 0 AND objid = 42 AND objsubid = 1))")
SHORT_RESET = "SET SESSION AUTHORIZATION DEFAULT; RESET ALL"
FULL_RESET = ("CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *; DISCARD PLANS; "
              "DISCARD TEMP; DISCARD SEQUENCES; SELECT pg_catalog.pg_advisory_unlock_all()")


def check(held: str, landed: str) -> str:
    return (f"SELECT CAST(CASE WHEN NOT {held} THEN 'x' WHEN NOT ({landed}) THEN 'y' ELSE '0' END AS pg_catalog.int4), "
            "pg_catalog.pg_advisory_lock(7501166, 2), pg_catalog.pg_advisory_unlock(7501166, 1);\n")


def shapes(lock_pid: int) -> dict:
    def one(body):
        return lambda n: ["BEGIN;\nSELECT 1;\n;\n" + body(n)]
    return {
        "base": one(lambda n: RECORD.format(n=n) + "COMMIT; " + SHORT_RESET),
        "+ read-back": one(lambda n: RECORD.format(n=n) + LANDED.format(n=n) + ";\nCOMMIT; " + SHORT_RESET),
        "+ full reset": one(lambda n: RECORD.format(n=n) + "COMMIT; " + FULL_RESET),
        "+ marker": one(lambda n: MARK + RECORD.format(n=n) + "COMMIT; " + SHORT_RESET),
        "+ check (token)": one(lambda n: RECORD.format(n=n) + check(LOCK_HELD, LANDED.format(n=n)) + "COMMIT; "
                               + SHORT_RESET),
        "+ check (pg_locks)": one(lambda n: RECORD.format(n=n) + check(LOCKS_VIEW.format(pid=lock_pid),
                                                                        LANDED.format(n=n)) + "COMMIT; " + SHORT_RESET),
        "runner now": one(lambda n: MARK + RECORD.format(n=n) + check(LOCK_HELD, LANDED.format(n=n)) + "COMMIT; "
                          + FULL_RESET),
        "two round trips": lambda n: ["BEGIN;\nSELECT 1;\n;\n" + MARK + RECORD.format(n=n)
                                      + f"SELECT ({LANDED.format(n=n)}), {LOCKS_VIEW.format(pid=lock_pid)}",
                                      "COMMIT; " + FULL_RESET],
    }


def _cpu(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(iterations: int = 4000, rounds: int = 4) -> None:
    server = ScratchPostgres().start()
    try:
        connection = psycopg2.connect(server.url("postgres"))
        connection.autocommit = True
        holder = psycopg2.connect(server.url("postgres"))
        holder.autocommit = True
        holder.cursor().execute("SELECT pg_advisory_lock(42), pg_advisory_lock(7, 4242)")
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE public.schema_migrations (id serial PRIMARY KEY, migration_name varchar(255) "
                       "UNIQUE NOT NULL, applied_at timestamptz DEFAULT now(), checksum varchar(64), duration_ms "
                       "integer, statements integer, status varchar(16) NOT NULL DEFAULT 'applied')")
        pid = connection.get_backend_pid()
        table = shapes(holder.get_backend_pid())
        wall = {name: 0.0 for name in table}
        server_cpu = dict(wall)
        count = 0
        for _ in range(rounds):
            order = list(table)
            random.shuffle(order)
            for name in order:
                cursor.execute("TRUNCATE public.schema_migrations")
                started, cpu = time.perf_counter(), _cpu(pid)
                for _ in range(iterations // rounds):
                    count += 1
                    for query in table[name](f"m{count}"):
                        cursor.execute(query)
                wall[name] += time.perf_counter() - started
                server_cpu[name] += _cpu(pid) - cpu
        print(f"per one-line migration, {iterations} of each, {rounds} interleaved rounds; load {os.getloadavg()[0]:.1f}")
        print(f"  {'shape':22s} {'wall':>9s} {'server CPU':>11s}")
        for name in table:
            print(f"  {name:22s} {wall[name] / iterations * 1e6:7.0f} us {server_cpu[name] / iterations * 1e6:8.0f} us")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000)
