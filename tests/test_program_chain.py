"""The deploy chain under Pulumi mocks: readiness -> migration Job -> backend -> frontend."""

import pytest

from tests.program import dev, run_program


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


def test_every_manifest_passes_strict_kubernetes_validation(deployment):
    kinds = sorted(m["kind"] for m in deployment.manifests())
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Job", "Job", "Job", "Service", "Service"]
    assert deployment.invalid == []


def test_migration_job_waits_for_postgres_and_redis_readiness(deployment):
    job = deployment.find("Job", "db-migrations")
    assert deployment.depends_on(job, deployment.find("Job", "wait-for-postgres"))
    assert deployment.depends_on(job, deployment.find("Job", "wait-for-redis"))


def test_migration_job_waits_for_its_configmap(deployment):
    assert deployment.depends_on(deployment.find("Job", "db-migrations"), deployment.find("ConfigMap", "db-migrations"))


def test_backend_waits_for_the_completed_migration_job(deployment):
    backend = deployment.find("Deployment", "backend")
    assert deployment.depends_on(backend, deployment.find("Job", "db-migrations"))


def test_frontend_waits_for_the_backend(deployment):
    frontend = deployment.find("Deployment", "frontend")
    assert deployment.depends_on(frontend, deployment.find("Deployment", "backend"))
    assert deployment.depends_on(frontend, deployment.find("Job", "db-migrations"))


def test_readiness_does_not_wait_for_anything_later_in_the_chain(deployment):
    for name in ("wait-for-postgres", "wait-for-redis"):
        job = deployment.find("Job", name)
        assert not deployment.depends_on(job, deployment.find("Job", "db-migrations"))
        assert not deployment.depends_on(job, deployment.find("Deployment", "backend"))


def test_readiness_jobs_run_a_protocol_check_not_a_port_probe(deployment):
    postgres = deployment.find("Job", "wait-for-postgres").inputs
    redis = deployment.find("Job", "wait-for-redis").inputs
    pg_env = {e["name"]: e.get("value") for e in postgres["spec"]["template"]["spec"]["containers"][0]["env"]}
    redis_env = {e["name"]: e.get("value") for e in redis["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert pg_env["CHECK"].startswith("pg_isready ")
    assert (pg_env["PGHOST"], pg_env["PGPORT"], pg_env["TIMEOUT"]) == ("postgres-ha-primary", "5432", "300")
    assert "PING" in redis_env["CHECK"] and "PONG" in redis_env["CHECK"]
    assert (redis_env["REDIS_HOST"], redis_env["REDIS_PORT"]) == ("redis", "6379")


def test_readiness_failure_message_names_the_service_and_the_wait(deployment):
    container = deployment.find("Job", "wait-for-postgres").inputs["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    assert "did not become ready within ${TIMEOUT}s (waited ${waited}s)" in script
    assert "$SERVICE at $TARGET" in script
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_outputs_show_namespace_job_migration_set_services_and_tags(deployment):
    out = deployment.outputs
    assert out["namespace"] == "20890-ideaforge-ai-dev-58a50"
    assert out["migrationJobName"] == "db-migrations"
    assert [m["name"] for m in out["migrations"]][:2] == ["20251101000001_create_users.sql", "20251101000002_create_products.sql"]
    assert all(len(m["sha256"]) == 64 for m in out["migrations"])
    assert (out["backendService"], out["frontendService"]) == ("backend", "frontend")
    assert (out["backendImageTag"], out["frontendImageTag"]) == ("672425b", "672425b")


@pytest.mark.parametrize("name", ["wait-for-postgres", "wait-for-redis"])
def test_readiness_jobs_are_replaced_like_the_migration_job(deployment, name):
    job = deployment.find("Job", name)
    assert job.replace_on_changes == ["*"] and job.delete_before_replace is True
    assert job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"
    deadline = job.inputs["spec"]["activeDeadlineSeconds"]
    assert int(job.custom_timeouts["create"].rstrip("s")) > deadline > 300


def readiness_inputs(**change):
    result = run_program(dev(**change))
    assert result.error is None, result.error
    return result.find("Job", "wait-for-postgres").inputs


def test_readiness_is_checked_again_exactly_when_migrations_would_run(deployment):
    baseline = deployment.find("Job", "wait-for-postgres").inputs
    assert readiness_inputs() == baseline
    assert readiness_inputs(backendImageTag="abc1234") != baseline
    assert readiness_inputs(frontendImageTag="abc1234") == baseline


def test_existing_objects_the_stack_uses_are_read_at_preview(deployment):
    ns = "20890-ideaforge-ai-dev-58a50"
    assert sorted(deployment.reads) == sorted([
        ("kubernetes:core/v1:Secret", f"{ns}/ideaforge-ai-secrets"),
        ("kubernetes:core/v1:Secret", f"{ns}/ghcr-secret"),
        ("kubernetes:core/v1:ConfigMap", f"{ns}/ideaforge-ai-config"),
    ])


def test_a_missing_app_secret_stops_the_deploy_before_anything_is_created():
    result = run_program(dev(), missing={"20890-ideaforge-ai-dev-58a50/ideaforge-ai-secrets"})
    assert "20890-ideaforge-ai-dev-58a50/ideaforge-ai-secrets" in str(result.error)
    assert [r for r in result.resources if r.kind in ("Job", "Deployment")] == []


def test_nothing_is_read_in_a_namespace_the_stack_creates():
    result = run_program(dev(createNamespace="true"))
    assert result.error is None, result.error
    assert result.reads == []
