"""The local stack: its own Postgres and Redis, and the same chain after them."""

import pytest

from tests.program import LOCAL_CONFIG, run_program


@pytest.fixture(scope="module")
def local():
    result = run_program(LOCAL_CONFIG, stack="local")
    assert result.error is None, result.error
    return result


def test_local_stack_manifests_pass_strict_validation(local):
    kinds = sorted(m["kind"] for m in local.manifests())
    assert kinds == sorted(["Namespace", "Secret", "StatefulSet", "Service", "Deployment", "Service", "ConfigMap",
                            "ConfigMap", "Job", "Job", "Job", "Deployment", "Service", "Deployment", "Service"])  # no HPA, no Ingress
    assert local.invalid == []


def test_postgres_runs_as_a_statefulset_with_a_volume_and_a_readiness_probe(local):
    sts = local.find("StatefulSet", "postgres").inputs["spec"]
    container = sts["template"]["spec"]["containers"][0]
    # the app's migrations create the vector (pgvector) and uuid-ossp (contrib) extensions
    assert container["image"] == "pgvector/pgvector:pg17"
    assert sts["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {"storage": "1Gi"}
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "ideaforge-ai-credentials"
    assert local.find("Service", "postgres").inputs["spec"]["selector"] == {"app": "postgres"}


def test_redis_runs_with_a_readiness_probe_under_the_configured_service_name(local):
    container = local.find("Deployment", "redis").inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["exec"]["command"] == ["redis-cli", "ping"]
    assert local.find("Service", "redis").inputs["spec"]["ports"][0]["port"] == 6379


def test_chain_starts_with_the_local_services(local):
    for check in ("wait-for-postgres", "wait-for-redis"):
        job = local.find("Job", check)
        assert local.depends_on(job, local.find("StatefulSet", "postgres"))
        assert local.depends_on(job, local.find("Deployment", "redis"))
    migration = local.find("Job", "db-migrations")
    assert local.depends_on(migration, local.find("Job", "wait-for-postgres"))
    backend = local.find("Deployment", "backend")
    assert local.depends_on(backend, migration)
    assert local.depends_on(local.find("Deployment", "frontend"), backend)


def test_local_password_is_a_pulumi_secret(local):
    secret = local.find("Secret", "ideaforge-ai-credentials")
    assert secret.raw_inputs["stringData"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"


def test_local_stack_needs_no_pull_secret_or_shared_config(local):
    backend = local.find("Deployment", "backend").inputs["spec"]["template"]["spec"]
    assert "imagePullSecrets" not in backend
    assert "envFrom" not in backend["containers"][0]


def test_without_an_app_configmap_the_backend_gets_the_database_and_redis_from_the_stack(local):
    env = {e["name"]: e for e in local.find("Deployment", "backend").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {k: env[k].get("value") for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_DB",
                                             "REDIS_URL")} == {
        "POSTGRES_HOST": "postgres", "POSTGRES_PORT": "5432", "POSTGRES_USER": "agentic_pm",
        "POSTGRES_DB": "agentic_pm_db", "REDIS_URL": "redis://redis:6379/0"}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "ideaforge-ai-credentials"


def test_the_local_backend_runs_one_replica_without_an_autoscaler(local):
    assert local.find("Deployment", "backend").inputs["spec"]["replicas"] == 1
    assert local.of_kind("HorizontalPodAutoscaler") == []
