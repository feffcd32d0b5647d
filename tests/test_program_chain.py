"""The deploy chain under Pulumi mocks: readiness -> migration Job -> (seed) -> backend -> frontend."""

import pytest

from tests.program import ROOT, dev, run_program

NS = "20890-ideaforge-ai-dev-58a50"


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


def test_every_manifest_of_the_dev_stack_passes_strict_kubernetes_validation(deployment):
    kinds = sorted(m["kind"] for m in deployment.manifests())
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Deployment", "HorizontalPodAutoscaler", "HorizontalPodAutoscaler",
                     "Ingress", "Job", "Job", "Job", "Service", "Service"]
    assert deployment.invalid == []


def test_migration_job_waits_for_postgres_and_redis_readiness(deployment):
    job = deployment.find("Job", "db-migrations")
    assert deployment.depends_on(job, deployment.find("Job", "wait-for-postgres"))
    assert deployment.depends_on(job, deployment.find("Job", "wait-for-redis"))


def test_migration_job_waits_for_the_runner_configmap(deployment):
    assert deployment.depends_on(deployment.find("Job", "db-migrations"),
                                 deployment.find("ConfigMap", "db-migrations-runner"))


def test_backend_waits_for_the_completed_migration_job(deployment):
    assert deployment.depends_on(deployment.find("Deployment", "backend"), deployment.find("Job", "db-migrations"))


def test_frontend_waits_for_the_backend(deployment):
    frontend = deployment.find("Deployment", "frontend")
    assert deployment.depends_on(frontend, deployment.find("Deployment", "backend"))
    assert deployment.depends_on(frontend, deployment.find("Job", "db-migrations"))


def test_readiness_does_not_wait_for_anything_later_in_the_chain(deployment):
    for name in ("wait-for-postgres", "wait-for-redis"):
        job = deployment.find("Job", name)
        assert not deployment.depends_on(job, deployment.find("Job", "db-migrations"))
        assert not deployment.depends_on(job, deployment.find("Deployment", "backend"))


def test_the_seed_job_when_enabled_runs_after_migrations_and_before_the_backend(tmp_path):
    result = run_program(dev(**{"seed.enabled": True, "seed.file": "tests/fixtures/seed/sample.sql"}))
    assert result.error is None, result.error
    seed = result.find("Job", "db-seed")
    assert result.depends_on(seed, result.find("Job", "db-migrations"))
    assert result.depends_on(result.find("Deployment", "backend"), seed)
    data = result.find("ConfigMap", "db-seed").inputs["data"]
    assert data == {"seed.sql": (ROOT / "tests/fixtures/seed/sample.sql").read_text()}
    env = {e["name"]: e for e in seed.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SKIP_IF_QUERY"]["value"] == "SELECT 1 FROM products LIMIT 1"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "ideaforge-ai-secrets", "key": "POSTGRES_PASSWORD"}


def test_there_is_no_seed_job_by_default(deployment):
    assert [r for r in deployment.of_kind("Job") if r.object_name == "db-seed"] == []


def test_readiness_jobs_run_a_protocol_check_against_the_app_configmaps_addresses(deployment):
    postgres = deployment.find("Job", "wait-for-postgres").inputs["spec"]["template"]["spec"]
    redis = deployment.find("Job", "wait-for-redis").inputs["spec"]["template"]["spec"]
    pg_env = {e["name"]: e for e in postgres["containers"][0]["env"]}
    redis_env = {e["name"]: e for e in redis["containers"][0]["env"]}
    assert pg_env["CHECK"]["value"].startswith("pg_isready ")
    assert pg_env["PGHOST"]["valueFrom"]["configMapKeyRef"] == {"name": "ideaforge-ai-config", "key": "POSTGRES_HOST"}
    assert pg_env["TARGET"]["value"] == "$(PGHOST):$(PGPORT)"
    assert "PING" in redis_env["CHECK"]["value"] and "PONG" in redis_env["CHECK"]["value"]
    assert redis_env["REDIS_URL"]["valueFrom"]["configMapKeyRef"] == {"name": "ideaforge-ai-config", "key": "REDIS_URL"}
    assert "redis://" not in redis_env["TARGET"]["value"]
    assert postgres["restartPolicy"] == redis["restartPolicy"] == "Never"


def test_readiness_failure_message_names_the_service_and_the_wait(deployment):
    container = deployment.find("Job", "wait-for-postgres").inputs["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    assert "did not become ready within ${TIMEOUT}s (waited ${waited}s)" in script
    assert "$SERVICE at $TARGET" in script
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_outputs_show_namespace_job_services_tags_and_what_carries_the_migrations(deployment):
    out = deployment.outputs
    assert out["namespace"] == NS
    assert out["migrationJobName"] == "db-migrations"
    assert out["migrationsSource"] == "image" and out["migrations"] == []
    assert len(out["runnerChecksum"]) == 64
    assert (out["backendService"], out["frontendService"]) == ("backend", "frontend")
    assert (out["backendImageTag"], out["frontendImageTag"]) == ("24f45fd", "24f45fd")


@pytest.mark.parametrize("name", ["wait-for-postgres", "wait-for-redis"])
def test_readiness_jobs_are_replaced_like_the_migration_job(deployment, name):
    job = deployment.find("Job", name)
    assert job.replace_on_changes == ["*"] and job.delete_before_replace is True
    assert job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"
    deadline = job.inputs["spec"]["activeDeadlineSeconds"]
    assert int(job.custom_timeouts["create"].rstrip("s")) > deadline > 300


def readiness_inputs(config):
    result = run_program(config)
    assert result.error is None, result.error
    return result.find("Job", "wait-for-postgres").inputs


def test_readiness_is_checked_again_when_the_backend_image_changes_and_not_for_the_frontend(deployment):
    baseline = deployment.find("Job", "wait-for-postgres").inputs
    assert readiness_inputs(dev()) == baseline
    assert readiness_inputs(dev(backendImageTag="abc1234")) != baseline
    assert readiness_inputs(dev(frontendImageTag="abc1234")) == baseline


def test_readiness_is_checked_again_when_a_shipped_migration_file_changes(tmp_path):
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (id int);\n")
    shipped = dev(**{"migrations.source": "configmap", "migrations.dirs": [str(tmp_path)]})
    before = readiness_inputs(shipped)
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (id bigint);\n")
    assert readiness_inputs(shipped) != before


def test_existing_objects_the_stack_uses_are_read_at_preview():
    assert sorted(run_program(dev(readSecrets="true")).reads) == sorted([
        ("kubernetes:core/v1:Secret", f"{NS}/ideaforge-ai-secrets"),
        ("kubernetes:core/v1:Secret", f"{NS}/ghcr-secret"),
    ])


def test_the_dev_stack_reads_no_secret_so_its_state_holds_none(deployment):
    # readSecrets false: the pull-request preview reads the state; deploy.py checks the Secrets.
    assert [r for r in deployment.reads if r[0] == "kubernetes:core/v1:Secret"] == []


def test_a_missing_app_secret_stops_the_deploy_before_anything_is_created():
    result = run_program(dev(readSecrets="true"), missing={f"{NS}/ideaforge-ai-secrets"})
    assert f"{NS}/ideaforge-ai-secrets" in str(result.error)
    assert [r for r in result.resources if r.kind in ("Job", "Deployment")] == []

