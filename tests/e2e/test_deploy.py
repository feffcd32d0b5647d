"""The deploy, for real: deploy.py and the Pulumi CLI against a Kubernetes control plane.

The scenarios build on each other, in order, on one stack `e2e` (Pulumi.e2e.yaml) and one
namespace: each starts from what the previous one left, as a team's deploys do. The
take-over scenario has a namespace and a stack of its own.
"""

from __future__ import annotations

import base64
import json
import shutil
import time

from tests import backend_image
from tests.e2e.conftest import NAMESPACE, PASSWORD

APP_MIGRATIONS = ["20251121000001_create_tenants.sql", "20251121000002_create_products.sql",
                  "20251124000003_api_keys.sql", "20251126000001_product_scores.sql"]
NEW = "20251202000000_add_sso_fields.sql"
BROKEN = "20251203000000_backfill_scores.sql"


def created(obj) -> float:
    return obj.metadata.creation_timestamp.timestamp()


def output_of(result) -> str:
    return result.stdout + result.stderr


def backend_image_with(e2e, tag: str, tmp_path, files: dict[str, str]) -> None:
    """A new backend image tag whose /app/migrations holds these files more than e2e-1's."""
    folder = tmp_path / f"image-{tag}"
    shutil.copytree(backend_image.IMAGE_DIRS["/app/migrations"], folder)
    for name, text in files.items():
        (folder / name).write_text(text)
    e2e.images.backend_tags[tag] = {**backend_image.IMAGE_DIRS, "/app/migrations": folder}


def pod_uids(e2e, job: str) -> set[str]:
    return {p.metadata.uid for p in e2e.pods_of_job(job)}


def backend_image_now(e2e) -> str:
    return e2e.apps.read_namespaced_deployment("backend", NAMESPACE).spec.template.spec.containers[0].image


def test_1_preview_then_up_on_an_empty_namespace_runs_the_chain_in_order(e2e):
    e2e.prepare_namespace()
    e2e.init_stack()
    preview = e2e.deploy("preview")
    assert preview.returncode == 0, output_of(preview)
    assert "db-migrations" in preview.stdout

    up = e2e.deploy("up")

    assert up.returncode == 0, output_of(up)[-6000:]
    postgres, redis, job = e2e.job("wait-for-postgres"), e2e.job("wait-for-redis"), e2e.job("db-migrations")
    backend = e2e.apps.read_namespaced_deployment("backend", NAMESPACE)
    frontend = e2e.apps.read_namespaced_deployment("frontend", NAMESPACE)
    assert max(created(postgres), created(redis)) <= created(job) <= created(backend) <= created(frontend)
    assert job.status.succeeded == 1
    assert e2e.applied() == APP_MIGRATIONS
    outputs = json.loads(e2e.pulumi("stack", "output", "--json").stdout)
    assert (outputs["migrationJobName"], outputs["backendImageTag"], outputs["migrationsSource"]) == (
        "db-migrations", "e2e-1", "image")
    assert f"the migration Job ran and applied 4: {APP_MIGRATIONS[0]}" in up.stdout


def test_2_an_unchanged_up_changes_nothing_and_runs_no_new_pod(e2e):
    pods = pod_uids(e2e, "db-migrations")
    up = e2e.deploy("up")
    assert up.returncode == 0, output_of(up)
    assert "deployed: no changes" in up.stdout
    assert "the migration Job did not run" in up.stdout
    assert pod_uids(e2e, "db-migrations") == pods


def test_3_a_new_frontend_tag_does_not_run_the_migrations_again(e2e):
    job, pods = e2e.job("db-migrations").metadata.uid, pod_uids(e2e, "db-migrations")
    up = e2e.deploy("up", "--frontend-tag", "e2e-1b")
    assert up.returncode == 0, output_of(up)
    assert e2e.job("db-migrations").metadata.uid == job and pod_uids(e2e, "db-migrations") == pods
    frontend = e2e.apps.read_namespaced_deployment("frontend", NAMESPACE)
    assert frontend.spec.template.spec.containers[0].image.endswith("/frontend:e2e-1b")


def test_4_a_backend_tag_with_one_more_migration_applies_only_it_before_the_backend_rolls(e2e, tmp_path):
    backend_image_with(e2e, "e2e-2", tmp_path, {NEW: "ALTER TABLE tenants ADD COLUMN sso_domain text;\n"})
    old_job = e2e.job("db-migrations").metadata.uid

    up = e2e.deploy("up", "--backend-tag", "e2e-2")

    assert up.returncode == 0, output_of(up)
    job = e2e.job("db-migrations")
    assert job.metadata.uid != old_job and job.status.succeeded == 1
    assert f"the migration Job ran and applied 1: {NEW}" in up.stdout
    assert e2e.applied() == sorted(APP_MIGRATIONS + [NEW])
    replica_sets = e2e.apps.list_namespaced_replica_set(NAMESPACE, label_selector="app=backend").items
    rolled = [rs for rs in replica_sets if rs.spec.template.spec.containers[0].image.endswith(":e2e-2")]
    assert rolled and created(rolled[0]) >= job.status.completion_time.timestamp()


def test_5_a_failing_migration_stops_the_deploy_with_the_runners_message_and_leaves_the_backend(e2e, tmp_path):
    backend_image_with(e2e, "e2e-3", tmp_path, {
        NEW: "ALTER TABLE tenants ADD COLUMN sso_domain text;\n",
        BROKEN: "UPDATE products SET score = 1;\nUPDATE products SET nope = 2;\n",
    })

    up = e2e.deploy("up", "--backend-tag", "e2e-3")

    text = output_of(up)
    assert up.returncode == 1, text
    assert f"migration {BROKEN} failed at statement 2 of 2 ({BROKEN}:2)" in text
    assert 'SQLSTATE 42703: column "nope" of relation "products" does not exist' in text
    assert backend_image_now(e2e).endswith(":e2e-2")
    assert "=== Job ideaforge-e2e/db-migrations ===" in up.stderr
    assert "condition Failed=True reason=BackoffLimitExceeded" in up.stderr
    migration_report = up.stderr.split("=== Job ideaforge-e2e/db-migrations ===")[1].split("=== Job ")[0]
    assert migration_report.count("--- attempt ") == 2  # backoffLimit 1: two attempts, each with its log
    assert migration_report.count(f"migration {BROKEN} failed at statement 2 of 2") >= 2
    assert BROKEN not in e2e.applied()


def test_6_the_fixed_migration_replaces_the_failed_job_and_completes(e2e, tmp_path):
    backend_image_with(e2e, "e2e-4", tmp_path, {
        NEW: "ALTER TABLE tenants ADD COLUMN sso_domain text;\n",
        BROKEN: "UPDATE products SET score = 1;\n",
    })
    failed = e2e.job("db-migrations").metadata.uid

    up = e2e.deploy("up", "--backend-tag", "e2e-4")

    assert up.returncode == 0, output_of(up)
    job = e2e.job("db-migrations")
    assert job.metadata.uid != failed and job.status.succeeded == 1
    assert BROKEN in e2e.applied()
    assert backend_image_now(e2e).endswith(":e2e-4")


def test_7_after_the_ttl_deletes_the_job_an_up_is_a_no_op_and_refresh_then_up_runs_it_again(e2e):
    e2e.config("migrations.ttlSecondsAfterFinished", "60", path=True)
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


def test_9_no_password_in_the_state_or_in_what_deploys_print(e2e):
    # The password both ways: read from the app Secret (since scenario 1), and given to Pulumi.
    e2e.pulumi("config", "set", "--secret", "postgresPassword", PASSWORD)
    up = e2e.deploy("up")
    assert up.returncode == 0, output_of(up)
    assert e2e.job("db-migrations").status.succeeded == 1  # the Job reads it from the Secret Pulumi made
    exported = e2e.pulumi("stack", "export").stdout
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    for text in (exported, output_of(up), e2e.pulumi("stack", "output", "--json").stdout):
        assert PASSWORD not in text and encoded not in text
    assert "ideaforge-ai-credentials" in exported


def test_10_a_second_up_while_one_runs_stops_at_the_stack_lock(e2e, tmp_path):
    # The first deploy holds the stack for as long as its migration sleeps.
    backend_image_with(e2e, "e2e-5", tmp_path, {
        NEW: "ALTER TABLE tenants ADD COLUMN sso_domain text;\n",
        BROKEN: "UPDATE products SET score = 1;\n",
        "20251204000000_slow.sql": "SELECT pg_sleep(20);\n",
    })
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


def test_11_a_pull_request_preview_shows_which_migrations_the_deploy_adds(e2e):
    folder = e2e.project / "db"
    shutil.copytree(backend_image.IMAGE_DIRS["/app/migrations"], folder)
    e2e.config("migrations.source", "configmap", path=True)
    e2e.config("migrations.dirs[0]", "db", path=True)
    assert e2e.deploy("up").returncode == 0
    (folder / "20251210000000_add_tenant_notes.sql").write_text("ALTER TABLE tenants ADD COLUMN notes text;\n")

    preview = e2e.deploy("preview")

    assert preview.returncode == 0, output_of(preview)
    added = [line for line in preview.stdout.splitlines() if "20251210000000_add_tenant_notes.sql" in line]
    assert added and all(line.lstrip().startswith("+") for line in added), preview.stdout[-4000:]
    assert "db-migrations" in preview.stdout and "replace" in preview.stdout
