"""Failures a cluster really has: the kubelet, the Job controller and the API server decide what
happens, and each scenario fails if the product mishandles it (a deploy that goes on, a report
without the cause, a state that does not converge).

The scenarios share one stack, deployed once by the `failures` fixture (so any one still runs
alone with `-k`), as a team's deploys follow each other: each breaks something, checks what the
deploy did about it, and leaves the stack deployed and healthy again. The stack keeps the
backend's Postgres init wait (the dev stack has none; the Postgres-down scenario checks it) and
bounds how long `up` waits for a rollout (rolloutTimeoutSeconds), so a rollout that cannot finish
fails in a minute or two rather than Pulumi's ten.

The migrations each scenario adds carry increasing versions in the order of this file, and a
later image keeps the files applied before it: the images follow each other as an app's do.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.e2e import images as image_builds
from tests.e2e.conftest import FIXTURE_FOLDERS, record_timing

STACK = "failures"
SSO = {"20251202000001_add_sso_fields.sql": "ALTER TABLE tenants ADD COLUMN sso text;\n"}
REGION = {"20251202000004_slow_column.sql": "ALTER TABLE tenants ADD COLUMN region text;\nSELECT pg_sleep(15);\n"}
NOTES = {"20251202000005_slow_notes.sql": "SELECT pg_sleep(10);\nALTER TABLE tenants ADD COLUMN notes text;\n"}


@pytest.fixture(scope="module")
def failures(e2e):
    e2e.fresh_stack(STACK, ("readiness.postgresTimeoutSeconds", "15"), ("backend.initWaits.postgres", "forever"),
                    ("backend.progressDeadlineSeconds", "30"), ("frontend.progressDeadlineSeconds", "30"),
                    ("backend.rolloutTimeoutSeconds", "90"), ("frontend.rolloutTimeoutSeconds", "90"))
    yield
    e2e.remove_namespaces()


def output_of(result) -> str:
    return result.stdout + result.stderr


def backend_tag(e2e, tag: str, files: dict[str, str]) -> None:
    e2e.images.node.import_images([image_builds.backend(tag, files, FIXTURE_FOLDERS)])


def section(report: str, header: str) -> str:
    """One object's part of deploy.py's failure report."""
    return report.split(header, 1)[1].split("\n=== ")[0] if header in report else ""


def ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"waited {seconds:.0f}s for {what}"
        time.sleep(1)


def backend_image_now(e2e) -> str:
    return e2e.apps.read_namespaced_deployment("backend", e2e.namespace).spec.template.spec.containers[0].image


def job_pod_running(e2e, job: str = "db-migrations"):
    return next((p for p in e2e.pods_of_job(job) if p.status.phase == "Running"), None)


def healed(e2e, *removed: str, tag: str | None = None) -> None:
    """The stack deployed and healthy again: the scenario's settings removed, the image it ran
    before (`tag`) back."""
    for key in removed:
        e2e.pulumi("config", "rm", "--path", key)
    up = e2e.deploy("up", *(["--backend-tag", tag] if tag else []))
    assert up.returncode == 0, output_of(up)[-6000:]


def test_postgres_down_stops_the_deploy_at_its_readiness_check_and_new_backend_pods_wait(e2e, failures):
    backend_tag(e2e, "pgdown-2", SSO)
    before, job = backend_image_now(e2e), e2e.job("db-migrations").metadata.uid
    e2e.postgres.stop()
    try:
        up = e2e.deploy("up", "--backend-tag", "pgdown-2")

        assert up.returncode == 1, output_of(up)
        report = section(up.stderr, f"=== Job {e2e.namespace}/wait-for-postgres ===")
        assert "log (last " in report, up.stderr
        assert ("postgres at postgres-ha-primary:5432 did not become ready within 15s"
                in report.split("log (last ")[1]), report
        assert backend_image_now(e2e) == before  # the deploy stopped before the backend
        assert e2e.job("db-migrations").metadata.uid == job  # and before the migrations

        # A backend pod started now (a crash, a scale-out) waits in its init container.
        old = e2e.pods("app=backend")[0]
        e2e.core.delete_namespaced_pod(old.metadata.name, e2e.namespace)
        waiting = wait_for(lambda: next(
            (p for p in e2e.pods("app=backend") if p.metadata.uid != old.metadata.uid and any(
                s.name == "wait-for-postgres" and s.state.running for s in p.status.init_container_statuses or [])),
            None),
            90, "a new backend pod waiting for postgres")
        time.sleep(5)
        log = e2e.core.read_namespaced_pod_log(waiting.metadata.name, e2e.namespace, container="wait-for-postgres")
        assert "waiting for postgres at postgres-ha-primary:5432" in log
        assert not ready(e2e.core.read_namespaced_pod(waiting.metadata.name, e2e.namespace))
    finally:
        e2e.postgres.start()
    wait_for(lambda: ready(e2e.core.read_namespaced_pod(waiting.metadata.name, e2e.namespace)), 90,
             "the waiting backend pod to start once postgres is back")
    again = e2e.deploy("up")
    assert again.returncode == 0, output_of(again)
    assert backend_image_now(e2e).endswith(":pgdown-2")


def test_a_wrong_health_path_fails_the_rollout_and_the_report_names_the_probe(e2e, failures):
    e2e.config("backend.healthPath", "/healthz", path=True)

    started = time.monotonic()
    up = e2e.deploy("up")
    record_timing(f"a wrong health path: deploy.py up failed after {time.monotonic() - started:.0f} s "
                  "(backend.rolloutTimeoutSeconds 90)")

    assert up.returncode == 1, output_of(up)
    report = section(up.stderr, f"=== Deployment {e2e.namespace}/backend: rollout not complete ===")
    assert "reason=ProgressDeadlineExceeded" in report, up.stderr[-6000:]
    assert "Readiness probe failed: HTTP probe failed with statuscode: 404" in report, report
    healed(e2e, "backend.healthPath")


def test_run_as_non_root_on_an_image_that_runs_as_root_is_named_in_the_report(e2e, failures):
    # The dev security settings start the images as built (the first deploy); runAsNonRoot does not.
    e2e.config("frontend.security.runAsNonRoot", "true", path=True)

    up = e2e.deploy("up")

    assert up.returncode == 1, output_of(up)
    report = section(up.stderr, f"=== Deployment {e2e.namespace}/frontend: rollout not complete ===")
    assert "CreateContainerConfigError: container has runAsNonRoot and image will run as root" in report, \
        up.stderr[-6000:]
    assert all(ready(p) for p in e2e.pods("app=backend"))
    healed(e2e, "frontend.security.runAsNonRoot")


def test_a_migration_over_the_jobs_memory_limit_is_reported_as_oom_killed(e2e, failures):
    before_tag = backend_image_now(e2e).rsplit(":", 1)[1]
    e2e.config("migrations.backoffLimit", "1", path=True)
    # 700 MB in the runner's memory (the Job's limit is 512Mi): libpq holds the whole result.
    backend_tag(e2e, "oom-2", {**SSO, "20251202000002_big_read.sql": "SELECT repeat('x', 700000000);\n"})
    before = backend_image_now(e2e)

    up = e2e.deploy("up", "--backend-tag", "oom-2")

    assert up.returncode == 1, output_of(up)
    report = section(up.stderr, f"=== Job {e2e.namespace}/db-migrations ===")
    assert report.count("exit code 137 (OOMKilled)") == 2, up.stderr[-6000:]
    assert backend_image_now(e2e) == before
    healed(e2e, "migrations.backoffLimit", tag=before_tag)


def test_a_migration_past_the_jobs_deadline_is_reported_as_deadline_exceeded_with_its_log(e2e, failures):
    before_tag = backend_image_now(e2e).rsplit(":", 1)[1]
    e2e.config("migrations.activeDeadlineSeconds", "30", path=True)
    backend_tag(e2e, "deadline-2", {**SSO, "20251202000003_slow.sql": "SELECT pg_sleep(300);\n"})

    up = e2e.deploy("up", "--backend-tag", "deadline-2")

    assert up.returncode == 1, output_of(up)
    report = section(up.stderr, f"=== Job {e2e.namespace}/db-migrations ===")
    assert "reason=DeadlineExceeded" in report, up.stderr[-6000:]
    assert "log (last " in report and "migration lock acquired" in report.split("log (last ")[1], report
    assert "20251202000003_slow.sql" not in e2e.applied()
    healed(e2e, "migrations.activeDeadlineSeconds", tag=before_tag)


def test_the_job_pod_killed_mid_migration_is_retried_and_the_next_attempt_converges(e2e, failures):
    [name] = REGION
    backend_tag(e2e, "killed-2", {**SSO, **REGION})
    deploying = e2e.spawn_deploy("up", "--backend-tag", "killed-2")
    # Inside the migration's transaction: the column is added, the sleep runs.
    pod = wait_for(lambda: job_pod_running(e2e) if e2e.query(
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%%ALTER TABLE tenants ADD COLUMN region%%' "
        "AND pid <> pg_backend_pid()") else None,
        120, "the migration to be running")
    e2e.core.delete_namespaced_pod(pod.metadata.name, e2e.namespace, grace_period_seconds=0)

    out, err = deploying.communicate(timeout=600)

    assert deploying.returncode == 0, out + err
    assert e2e.applied().count(name) == 1
    job = e2e.job("db-migrations")
    assert job.status.succeeded == 1 and job.status.failed == 1
    assert e2e.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'tenants' "
                     "AND column_name = 'region'") == [(1,)]
    assert backend_image_now(e2e).endswith(":killed-2")


def test_an_api_server_restart_during_an_up_then_the_next_up_converges(e2e, failures):
    [name] = NOTES
    backend_tag(e2e, "restart-2", {**SSO, **REGION, **NOTES})
    deploying = e2e.spawn_deploy("up", "--backend-tag", "restart-2")
    wait_for(lambda: job_pod_running(e2e), 120, "the migration Job's pod")
    restarted = threading.Thread(target=e2e.plane.restart_apiserver)
    restarted.start()
    first_out, first_err = deploying.communicate(timeout=600)
    restarted.join()

    again = e2e.deploy("up")

    assert again.returncode == 0, first_out + first_err + output_of(again)
    assert e2e.applied().count(name) == 1
    assert e2e.job("db-migrations").status.succeeded == 1
    assert backend_image_now(e2e).endswith(":restart-2")
    assert all(ready(p) for p in e2e.pods("app=backend"))
