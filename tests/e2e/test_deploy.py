"""The deploy, for real: deploy.py and the Pulumi CLI against a cluster whose kubelet runs every pod.

One stack `e2e` (Pulumi.e2e.yaml: the dev stack's defaults) and one namespace. Each scenario
builds the state it needs (the `deployed` fixture makes the first deploy once), so any one
runs alone with -k; run in order they go on from what the previous one left, as a team's
deploys do. The backend images carry app-like migration folders (tests/fixtures/app_image)
at the app's paths: the app's own history cannot build an empty database (README, "What was
and was not run end to end"); the take-over scenario runs it.
"""

from __future__ import annotations

import base64
import json
import shutil
import time

import pytest
from kubernetes import client

from tests.e2e import events
from tests.e2e import images as image_builds
from tests.e2e.conftest import FIRST_TAG, FIXTURE_FOLDERS as FIXTURES, NAMESPACE, PASSWORD, record_timing

APP_MIGRATIONS = ["20251121000001_create_tenants.sql", "20251121000002_create_products.sql",
                  "20251124000003_api_keys.sql", "20251126000001_product_scores.sql"]
NEW = "20251202000000_add_sso_fields.sql"
BROKEN = "20251203000000_backfill_scores.sql"
SSO = {NEW: "ALTER TABLE tenants ADD COLUMN sso_domain text;\n"}
FIXED = {**SSO, BROKEN: "UPDATE products SET score = 1;\n"}


def output_of(result) -> str:
    return result.stdout + result.stderr


def backend_tag(e2e, tag: str, files: dict[str, str] | None = None) -> None:
    """Build and import a backend image tag: the fixtures' folders plus `files`."""
    e2e.images.node.import_images([image_builds.backend(tag, files, FIXTURES)])


def pod_uids(e2e, job: str) -> set[str]:
    return {p.metadata.uid for p in e2e.pods_of_job(job)}


def backend_image_now(e2e) -> str:
    return e2e.apps.read_namespaced_deployment("backend", NAMESPACE).spec.template.spec.containers[0].image


def up_with_events(e2e, tmp_path, *args: str):
    """`pulumi up` as README gives it, with the engine's event log (a flag the CLI shows only with
    PULUMI_DEBUG_COMMANDS)."""
    log = tmp_path / "events.jsonl"
    result = e2e.pulumi("up", "--yes", "--skip-preview", "--event-log", str(log), *args, check=False,
                        env={"PULUMI_DEBUG_COMMANDS": "true"})
    return result, (events.read(log) if log.exists() else {})


def autoscaler_minimum(e2e, name: str) -> int:
    """The autoscaler raises a new Deployment from 1 replica to its minimum within its sync period
    (15 s), after the deploy has awaited the rollout (the program leaves replicas to it)."""
    try:
        return client.AutoscalingV2Api(e2e.kube).read_namespaced_horizontal_pod_autoscaler(
            f"{name}-hpa", NAMESPACE).spec.min_replicas or 1
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return 0
        raise


def rolled_out(e2e, name: str, image_suffix: str, seconds: float = 240) -> bool:
    """Every pod of the Deployment runs the image and is Ready (what the kubelet reports). Waits:
    the autoscaler raises the replicas to its minimum after the rollout the deploy awaited, and
    each new pod is Ready only after its probe's initial delay."""
    deadline = time.monotonic() + seconds
    while True:
        pods = e2e.pods(f"app={name}")
        deployment = e2e.apps.read_namespaced_deployment(name, NAMESPACE)
        ready = [p for p in pods if p.spec.containers[0].image.endswith(image_suffix)
                 and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
        wanted = max(deployment.spec.replicas or 0, deployment.status.updated_replicas or 0, autoscaler_minimum(e2e, name))
        if ready and len(ready) >= wanted and len(ready) == len(pods):
            return True
        if time.monotonic() > deadline:
            print(f"{name}: {len(ready)} of {len(pods)} pods Ready with {image_suffix}, {wanted} wanted:",
                  [(p.metadata.name, p.spec.containers[0].image, p.status.phase) for p in pods])
            return False
        time.sleep(2)


@pytest.fixture(scope="module")
def deployed(e2e, tmp_path_factory):
    """The namespace as the app team keeps it, the stack, and the first deploy (the engine's
    event log and the CLI's output), made once per module."""
    e2e.images.node.import_images([image_builds.backend(FIRST_TAG, None, FIXTURES)])
    e2e.prepare_namespace()
    e2e.init_stack()
    preview = e2e.deploy("preview")
    assert preview.returncode == 0, output_of(preview)
    started = time.monotonic()
    up, steps = up_with_events(e2e, tmp_path_factory.mktemp("first-up"))
    seconds = time.monotonic() - started
    assert up.returncode == 0, output_of(up)[-6000:]
    record_timing(f"first deploy (pulumi up on an empty namespace, the whole chain): {seconds:.1f} s")
    chain = [(events.JOB, "wait-for-postgres"), (events.JOB, "wait-for-redis"), (events.JOB, "db-migrations"),
             (events.DEPLOYMENT, "backend"), (events.DEPLOYMENT, "frontend")]
    record_timing("  of it, each link from its start to its end (the engine's events, 1 s resolution): " + ", ".join(
        f"{name} {steps[(kind, name)].seconds:.0f} s" for kind, name in chain if (kind, name) in steps))
    # Every scenario starts from the settled namespace: the autoscalers' minimums Ready.
    assert rolled_out(e2e, "backend", f"/backend:{FIRST_TAG}") and rolled_out(e2e, "frontend", f"/frontend:{FIRST_TAG}")
    return {"preview": preview, "up": up, "steps": steps, "seconds": seconds}


def test_1_preview_then_up_on_an_empty_namespace_runs_the_chain_in_order(e2e, deployed):
    assert "db-migrations" in deployed["preview"].stdout
    steps = deployed["steps"]
    job, backend, frontend = (events.JOB, "db-migrations"), (events.DEPLOYMENT, "backend"), (events.DEPLOYMENT,
                                                                                               "frontend")
    for readiness in ("wait-for-postgres", "wait-for-redis"):
        assert events.ended_before_started(steps, (events.JOB, readiness), job), readiness
    assert events.ended_before_started(steps, job, backend)
    assert events.ended_before_started(steps, backend, frontend)
    for service in ("backend", "frontend"):
        assert events.ended_before_started(steps, (events.SERVICE, service), (events.INGRESS, "ideaforge-ai-ingress-nginx"))
    # No ingress controller answers here: the Ingress has no address, and the deploy did not wait for one.
    ingress = e2e.networking.read_namespaced_ingress("ideaforge-ai-ingress-nginx", NAMESPACE)
    assert not (ingress.status.load_balancer and ingress.status.load_balancer.ingress)
    assert e2e.job("db-migrations").status.succeeded == 1
    assert e2e.applied() == APP_MIGRATIONS
    # The kubelet ran them: the backend's stand-in answers its probe, nginx serves the app's config.
    assert rolled_out(e2e, "backend", f"/backend:{FIRST_TAG}") and rolled_out(e2e, "frontend", f"/frontend:{FIRST_TAG}")
    outputs = json.loads(e2e.pulumi("stack", "output", "--json").stdout)
    assert (outputs["migrationJobName"], outputs["backendImageTag"], outputs["migrationsSource"]) == (
        "db-migrations", FIRST_TAG, "image")


def test_2_an_unchanged_up_changes_nothing_and_runs_no_new_pod(e2e, deployed):
    pods = pod_uids(e2e, "db-migrations") | {p.metadata.uid for p in e2e.pods("app in (backend,frontend)")}
    started = time.monotonic()
    up = e2e.deploy("up")
    record_timing(f"unchanged deploy.py up: {time.monotonic() - started:.1f} s")
    assert up.returncode == 0, output_of(up)
    assert "deployed: no changes" in up.stdout
    assert "the migration Job did not run" in up.stdout
    now = e2e.core.list_namespaced_pod(NAMESPACE).items
    new = [(p.metadata.name, p.metadata.creation_timestamp, p.status.phase, p.status.reason, p.metadata.labels)
           for p in now if p.metadata.uid not in pods and not p.metadata.name.startswith("wait-for-")]
    assert pod_uids(e2e, "db-migrations") | {p.metadata.uid for p in e2e.pods("app in (backend,frontend)")} == pods, (
        new, [(p.metadata.name, p.status.phase, p.status.reason) for p in now], up.stdout[-3000:])


def test_3_a_new_frontend_tag_does_not_run_the_migrations_again(e2e, deployed):
    job, pods = e2e.job("db-migrations").metadata.uid, pod_uids(e2e, "db-migrations")
    up = e2e.deploy("up", "--frontend-tag", "e2e-1b")
    assert up.returncode == 0, output_of(up)
    assert e2e.job("db-migrations").metadata.uid == job and pod_uids(e2e, "db-migrations") == pods
    assert rolled_out(e2e, "frontend", "/frontend:e2e-1b")


def test_4_a_backend_tag_with_one_more_migration_applies_only_it_before_the_backend_rolls(e2e, deployed, tmp_path):
    backend_tag(e2e, "e2e-2", SSO)
    e2e.config("backendImageTag", "e2e-2")
    old_job = e2e.job("db-migrations").metadata.uid

    up, steps = up_with_events(e2e, tmp_path)

    assert up.returncode == 0, output_of(up)
    job = e2e.job("db-migrations")
    assert job.metadata.uid != old_job and job.status.succeeded == 1
    assert e2e.applied() == sorted(APP_MIGRATIONS + [NEW])
    assert "create-replacement" in steps[(events.JOB, "db-migrations")].ops
    assert events.ended_before_started(steps, (events.JOB, "db-migrations"), (events.DEPLOYMENT, "backend"))
    assert rolled_out(e2e, "backend", "/backend:e2e-2")


def attempts(report: str) -> list[str]:
    """The report's sections, one per attempt of the migration Job."""
    job = report.split("=== Job ideaforge-e2e/db-migrations ===")[1].split("=== Job ")[0]
    return job.split("--- attempt ")[1:]


def logged(section: str) -> str:
    """The pod log part of one attempt's section (not its termination message)."""
    return section.split("log (last ")[1] if "log (last " in section else ""


def test_5_a_failing_migration_stops_the_deploy_with_the_runners_message_and_leaves_the_backend(e2e, deployed):
    backend_tag(e2e, "e2e-3", {**SSO, BROKEN: "UPDATE products SET score = 1;\nUPDATE products SET nope = 2;\n"})
    before = backend_image_now(e2e)

    up = e2e.deploy("up", "--backend-tag", "e2e-3")

    text = output_of(up)
    assert up.returncode == 1, text
    assert f"migration {BROKEN} failed at statement 2 of 2 ({BROKEN}:2)" in text
    assert backend_image_now(e2e) == before
    assert "condition Failed=True reason=BackoffLimitExceeded" in up.stderr
    # backoffLimit 3 (the dev default): four attempts, each a pod of its own with its own log.
    tried = attempts(up.stderr)
    assert len(tried) == 4
    assert len({section.split("pod ")[1].split(",")[0] for section in tried}) == 4  # four pods
    for section in tried:
        assert f"ERROR: migration {BROKEN} failed at statement 2 of 2" in logged(section), section
        assert 'column "nope" of relation "products" does not exist' in logged(section), section
    assert BROKEN not in e2e.applied()


def failed_job_in_place(e2e) -> None:
    job = e2e.job("db-migrations")
    if job is None or not job.status.failed:
        backend_tag(e2e, "e2e-3", {**SSO, BROKEN: "UPDATE products SET nope = 2;\n"})
        assert e2e.deploy("up", "--backend-tag", "e2e-3").returncode == 1


def test_6_the_fixed_migration_replaces_the_failed_job_and_completes(e2e, deployed):
    failed_job_in_place(e2e)
    backend_tag(e2e, "e2e-4", FIXED)
    failed = e2e.job("db-migrations").metadata.uid

    up = e2e.deploy("up", "--backend-tag", "e2e-4")

    assert up.returncode == 0, output_of(up)
    job = e2e.job("db-migrations")
    assert job.metadata.uid != failed and job.status.succeeded == 1
    assert BROKEN in e2e.applied()
    assert "the migration Job ran and applied" in up.stdout and BROKEN in up.stdout
    assert rolled_out(e2e, "backend", "/backend:e2e-4")


def test_7_after_the_ttl_deletes_the_job_an_up_is_a_no_op_and_refresh_then_up_runs_it_again(e2e, deployed):
    e2e.config("migrations.ttlSecondsAfterFinished", "60", path=True)
    try:
        assert e2e.deploy("up").returncode == 0
        deadline = time.monotonic() + 150
        while e2e.job("db-migrations") is not None:
            assert time.monotonic() < deadline, "the TTL controller did not delete the finished Job"
            time.sleep(2)

        unchanged = e2e.deploy("up")
        assert unchanged.returncode == 0, output_of(unchanged)
        assert "deployed: no changes" in unchanged.stdout and e2e.job("db-migrations") is None

        refreshed = e2e.deploy("up", "--refresh")
        assert refreshed.returncode == 0, output_of(refreshed)
        assert e2e.job("db-migrations").status.succeeded == 1
        assert "the migration Job ran and applied 0: nothing was pending" in refreshed.stdout
    finally:
        e2e.pulumi("config", "rm", "--path", "migrations.ttlSecondsAfterFinished")  # back to dev's 3600
        assert e2e.deploy("up").returncode == 0


def test_9_a_created_password_reaches_the_job_and_never_the_state_or_the_output(e2e, deployed):
    # The app Secret keeps the old password; the database now takes only the one given to Pulumi.
    created = "created-Other/p@ss-9"
    e2e.query("ALTER ROLE agentic_pm PASSWORD %s", (created,))
    e2e.pulumi("config", "set", "--secret", "postgresPassword", created)
    try:
        backend_tag(e2e, "e2e-9", {**FIXED, "20251209000000_note.sql": "ALTER TABLE tenants ADD COLUMN note text;\n"})
        up = e2e.deploy("up", "--backend-tag", "e2e-9")
        assert up.returncode == 0, output_of(up)
        assert e2e.job("db-migrations").status.succeeded == 1  # it logged in with the created password
        assert "20251209000000_note.sql" in e2e.applied()
        exported = e2e.pulumi("stack", "export").stdout
        for secret in (created, PASSWORD):
            encoded = base64.b64encode(secret.encode()).decode()
            for text in (exported, output_of(up), e2e.pulumi("stack", "output", "--json").stdout):
                assert secret not in text and encoded not in text
        assert "ideaforge-ai-credentials" in exported
    finally:
        e2e.query("ALTER ROLE agentic_pm PASSWORD %s", (PASSWORD,))
        e2e.pulumi("config", "rm", "postgresPassword")
        assert e2e.deploy("up").returncode == 0


def test_10_a_second_up_while_one_runs_stops_at_the_stack_lock(e2e, deployed):
    # The first deploy holds the stack for as long as its migration sleeps.
    backend_tag(e2e, "e2e-5", {**FIXED, "20251209500000_slow.sql": "SELECT pg_sleep(20);\n"})
    first = e2e.spawn_deploy("up", "--backend-tag", "e2e-5")
    deadline = time.monotonic() + 60
    while not list(e2e.state.glob(".pulumi/locks/**/*.json")):
        assert time.monotonic() < deadline and first.poll() is None, "the first up never took the stack lock"
        time.sleep(0.2)
    second = e2e.deploy("up")
    first_out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_out + first_err
    assert second.returncode == 75, output_of(second)
    assert "stack e2e is locked by another update" in second.stderr


def test_11_a_pull_request_preview_shows_which_migrations_the_deploy_adds(e2e, deployed):
    folder = e2e.project / "db"
    if not folder.exists():
        shutil.copytree(FIXTURES[0], folder)
    e2e.config("migrations.source", "configmap", path=True)
    e2e.config("migrations.dirs[0]", "db", path=True)
    try:
        assert e2e.deploy("up").returncode == 0
        (folder / "20251210000000_add_tenant_notes.sql").write_text("ALTER TABLE tenants ADD COLUMN notes text;\n")

        preview = e2e.deploy("preview")

        assert preview.returncode == 0, output_of(preview)
        added = [line for line in preview.stdout.splitlines() if "20251210000000_add_tenant_notes.sql" in line]
        assert added and all(line.lstrip().startswith("+") for line in added), preview.stdout[-4000:]
        assert "db-migrations" in preview.stdout and "replace" in preview.stdout
        # What pull-request.yml runs (pulumi/actions, command preview, diff: true): the CLI itself.
        reviewed = e2e.pulumi("preview", "--diff")
        assert "20251210000000_add_tenant_notes.sql" in reviewed.stdout, reviewed.stdout[-4000:]
        assert "db-migrations" in reviewed.stdout and "replace" in reviewed.stdout, reviewed.stdout[-4000:]
    finally:
        (folder / "20251210000000_add_tenant_notes.sql").unlink(missing_ok=True)
        e2e.pulumi("config", "rm", "--path", "migrations.dirs")
        e2e.pulumi("config", "rm", "--path", "migrations.source")
