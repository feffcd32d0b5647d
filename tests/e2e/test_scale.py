"""Scale and deploy time on the real node (BENCHMARKS.md, "Deploy time"): 10,000 migrations
shipped through the configmap source (chunked ConfigMaps, one Job) applied within the Job's
deadline; what an unchanged `up` costs with them in the stack; what one new migration adds.
The figures are printed in the run's summary (`e2e timings`), not asserted: the machine is
shared, and the Job's own deadline is the bound that matters."""

from __future__ import annotations

import time

from tests.e2e.conftest import record_timing

COUNT = 10_000


def write_migrations(directory, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "20260101000000_scale_marks.sql").write_text("CREATE TABLE scale_marks (n integer PRIMARY KEY);\n")
    for i in range(1, count):
        (directory / f"{20260101000000 + i}_mark_{i:05d}.sql").write_text(f"INSERT INTO scale_marks VALUES ({i});\n")


def output_of(result) -> str:
    return result.stdout + result.stderr


def timed_up(e2e, *args: str):
    started = time.monotonic()
    result = e2e.deploy("up", *args)
    return result, time.monotonic() - started


def test_ten_thousand_migrations_from_configmaps_run_in_one_job_within_its_deadline(e2e):
    e2e.fresh_stack("scale")
    write_migrations(e2e.project / "scale-migrations", COUNT)
    e2e.config("migrations.source", "configmap", path=True)
    e2e.config("migrations.dirs[0]", "scale-migrations", path=True)

    first, first_seconds = timed_up(e2e)

    assert first.returncode == 0, output_of(first)[-6000:]
    job = e2e.job("db-migrations")
    assert job.status.succeeded == 1 and len(e2e.pods_of_job("db-migrations")) == 1
    # Besides the first deploy's (the image's four, recorded before the source changed):
    assert e2e.query("SELECT count(*) FROM schema_migrations WHERE migration_name >= '2026'") == [(COUNT,)]
    assert e2e.query("SELECT count(*) FROM scale_marks") == [(COUNT - 1,)]
    job_seconds = (job.status.completion_time - job.status.start_time).total_seconds()
    assert job_seconds < job.spec.active_deadline_seconds
    record_timing(f"{COUNT} migrations (configmap source): deploy.py up {first_seconds:.1f} s, "
                  f"the Job {job_seconds:.0f} s (deadline {job.spec.active_deadline_seconds} s)")

    unchanged, unchanged_seconds = timed_up(e2e)
    assert unchanged.returncode == 0 and "deployed: no changes" in unchanged.stdout, output_of(unchanged)
    record_timing(f"unchanged up with {COUNT} migrations in the stack: {unchanged_seconds:.1f} s")

    (e2e.project / "scale-migrations" / "20270101000000_one_more.sql").write_text(
        "ALTER TABLE scale_marks ADD COLUMN note text;\n")
    one_more, one_more_seconds = timed_up(e2e)
    assert one_more.returncode == 0, output_of(one_more)
    assert "the migration Job ran and applied 1: 20270101000000_one_more.sql" in one_more.stdout
    record_timing(f"one new migration among {COUNT}: {one_more_seconds:.1f} s")
