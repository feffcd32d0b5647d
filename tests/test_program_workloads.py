"""Backend and frontend workloads, secure defaults, and migration sets too big for one ConfigMap."""

import pytest

from components.migration_bundle import CONFIGMAP_BUDGET, MAX_CONFIGMAPS
from tests.program import dev, run_program


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


def pod(resource):
    return resource.inputs["spec"]["template"]["spec"]


def test_backend_keeps_its_wait_for_init_containers_and_has_no_migration_parts(deployment):
    spec = pod(deployment.find("Deployment", "backend"))
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-postgres", "wait-for-redis"]
    assert "volumes" not in spec
    assert all("runner" not in " ".join(c.get("command", [])) for c in spec["initContainers"] + spec["containers"])


def test_backend_takes_env_from_the_shared_configmap_and_secret(deployment):
    c = pod(deployment.find("Deployment", "backend"))["containers"][0]
    assert c["envFrom"] == [{"configMapRef": {"name": "ideaforge-ai-config"}}, {"secretRef": {"name": "ideaforge-ai-secrets"}}]


def test_backend_has_health_probes_resources_and_a_service(deployment):
    c = pod(deployment.find("Deployment", "backend"))["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    service = deployment.find("Service", "backend").inputs["spec"]
    assert service["selector"] == {"app": "backend"} and service["ports"][0]["port"] == 8000


def test_frontend_uses_its_own_tag(deployment):
    c = pod(deployment.find("Deployment", "frontend"))["containers"][0]
    assert c["image"] == "ghcr.io/soumantrivedi/ideaforge-ai/frontend:672425b"


def all_pods(deployment):
    return [pod(r) for r in deployment.resources if r.kind in ("Deployment", "Job", "StatefulSet")]


def test_every_pod_is_locked_down_by_default(deployment):
    for spec in all_pods(deployment):
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["securityContext"]["runAsNonRoot"] is True
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_running_as_root_is_a_setting_for_images_that_need_it():
    result = run_program(dev(runAsNonRoot="false"))
    backend = pod(result.find("Deployment", "backend"))
    assert "runAsNonRoot" not in backend["securityContext"]
    assert backend["initContainers"][0]["securityContext"]["runAsUser"] == 65534


def write_migrations(directory, count, size):
    body = "-- " + "x" * (size - 40) + "\n"
    for i in range(count):
        (directory / f"{20250101000000 + i}_m{i}.sql").write_text(f"CREATE TABLE t{i} (id int);\n{body}")


def test_thousands_of_migrations_are_spread_over_several_configmaps(tmp_path):
    write_migrations(tmp_path, 3000, 1024)
    result = run_program(dev(migrationsDir=str(tmp_path)))
    assert result.error is None, result.error
    maps = result.of_kind("ConfigMap")
    assert len(maps) == 4
    assert all(sum(len(v.encode()) for v in m.inputs["data"].values()) <= CONFIGMAP_BUDGET for m in maps)
    assert sum(len(m.inputs["data"]) for m in maps) == 3000
    sources = pod(result.find("Job", "db-migrations"))["volumes"][0]["projected"]["sources"]
    assert [s["configMap"]["name"] for s in sources] == ["db-migrations", "db-migrations-2", "db-migrations-3", "db-migrations-4"]
    assert result.invalid == []


def test_a_file_larger_than_a_configmap_stops_at_preview_with_the_alternative(tmp_path):
    write_migrations(tmp_path, 1, 1100 * 1024)
    result = run_program(dev(migrationsDir=str(tmp_path)))
    assert "a ConfigMap holds at most 900 KiB of migrations" in str(result.error)
    assert "pulumi config set migrationImage <image>" in str(result.error)
    assert [r for r in result.resources if r.custom] == []


def test_more_migrations_than_the_configmap_cap_stop_at_preview(tmp_path):
    write_migrations(tmp_path, MAX_CONFIGMAPS + 1, 800 * 1024)
    result = run_program(dev(migrationsDir=str(tmp_path)))
    assert f"more than the {MAX_CONFIGMAPS} this program ships" in str(result.error)
