"""Backend and frontend as the app's manifests run them: capacity, probes, autoscalers, security,
init containers, the take-over, and migration sets too big for one ConfigMap."""

import os
import subprocess

import pytest

from tests import app_files

from components.migration_bundle import CONFIGMAP_BUDGET, MAX_CONFIGMAPS
from tests.program import dev, run_program

NS = "20890-ideaforge-ai-dev-58a50"


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


def pod(resource):
    return resource.inputs["spec"]["template"]["spec"]


def main_container(deployment, name):
    return pod(deployment.find("Deployment", name))["containers"][0]


def test_the_dev_backend_runs_without_init_containers_as_the_live_one(deployment):
    live = app_files.manifest("backend.yaml", "Deployment", "backend")["spec"]["template"]["spec"]
    assert "initContainers" not in live
    assert "initContainers" not in pod(deployment.find("Deployment", "backend"))


def test_no_web_workload_has_migration_parts(deployment):
    for name in ("backend", "frontend"):
        spec = pod(deployment.find("Deployment", name))
        assert "volumes" not in spec
        assert all("runner" not in " ".join(c.get("command", [])) for c in spec["containers"])


def init_containers(**waits):
    result = run_program(dev(**{"backend.initWaits": None}, **{f"backend.initWaits.{k}": v for k, v in waits.items()}))
    assert result.error is None, result.error
    return {c["name"]: {e["name"]: e.get("value") for e in c["env"]}
            for c in pod(result.find("Deployment", "backend")).get("initContainers", [])}


def test_by_default_the_backend_waits_forever_for_postgres_and_redis():
    waits = init_containers()
    assert list(waits) == ["wait-for-postgres", "wait-for-redis"]
    assert [(w["TIMEOUT"], w.get("ON_TIMEOUT")) for w in waits.values()] == [("0", None), ("0", None)]


def test_one_wait_can_be_turned_off_and_the_other_kept():
    assert list(init_containers(redis="off")) == ["wait-for-postgres"]


def test_a_bounded_wait_starts_the_pod_anyway_when_it_runs_out():
    waits = init_containers(redis=30)
    assert (waits["wait-for-redis"]["TIMEOUT"], waits["wait-for-redis"]["ON_TIMEOUT"]) == ("30", "start")
    assert waits["wait-for-postgres"]["TIMEOUT"] == "0"


def test_the_bounded_wait_script_ends_in_success_when_the_service_never_answers():
    result = run_program(dev(**{"backend.initWaits.redis": 1}))
    container = pod(result.find("Deployment", "backend"))["initContainers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    run = subprocess.run(container["command"], env={**os.environ, **env, "CHECK": "false"}, capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert "did not answer within 1s; starting without it" in run.stdout


def test_a_wait_setting_that_is_not_a_duration_fails_at_preview():
    result = run_program(dev(**{"backend.initWaits.postgres": "soon"}))
    assert "backend.initWaits.postgres: 'soon' is not forever, off or a number of seconds" in str(result.error)


def test_the_readiness_jobs_are_deleted_after_the_stacks_jobs_ttl():
    result = run_program(dev(**{"migrations.ttlSecondsAfterFinished": 120}))
    for name in ("wait-for-postgres", "wait-for-redis", "db-migrations"):
        assert result.find("Job", name).inputs["spec"]["ttlSecondsAfterFinished"] == 120


def test_a_password_given_to_pulumi_reaches_the_backend_from_the_secret_it_creates():
    result = run_program(dev(), secrets={"postgresPassword": "s3cret"})
    env = {e["name"]: e for e in main_container(result, "backend")["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "ideaforge-ai-credentials",
                                                                      "key": "POSTGRES_PASSWORD"}


def test_backend_capacity_and_probes_match_the_apps_manifest(deployment):
    c = main_container(deployment, "backend")
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}}
    assert c["readinessProbe"] == {"httpGet": {"path": "/health", "port": 8000}, "initialDelaySeconds": 10,
                                   "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
    assert c["livenessProbe"] == {"httpGet": {"path": "/health", "port": 8000}, "initialDelaySeconds": 40,
                                  "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 3}


def test_frontend_capacity_and_probes_match_the_apps_manifest(deployment):
    c = main_container(deployment, "frontend")
    assert c["image"] == "ghcr.io/soumantrivedi/ideaforge-ai/frontend:24f45fd"
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
    assert (c["readinessProbe"]["periodSeconds"], c["readinessProbe"]["timeoutSeconds"]) == (5, 3)
    assert (c["livenessProbe"]["initialDelaySeconds"], c["livenessProbe"]["timeoutSeconds"]) == (30, 5)


def test_an_autoscaled_deployment_leaves_its_replicas_to_the_autoscaler(deployment):
    for name in ("backend", "frontend"):
        assert "replicas" not in deployment.find("Deployment", name).inputs["spec"]


def test_the_autoscalers_match_the_apps_hpa_manifests(deployment):
    backend = deployment.find("HorizontalPodAutoscaler", "backend-hpa").inputs["spec"]
    assert backend["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"}
    assert (backend["minReplicas"], backend["maxReplicas"]) == (5, 20)
    assert [(m["resource"]["name"], m["resource"]["target"]["averageUtilization"]) for m in backend["metrics"]] == [
        ("cpu", 60), ("memory", 75)]
    assert backend["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 600,
                                                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}
    assert backend["behavior"]["scaleUp"]["policies"][1] == {"type": "Pods", "value": 6, "periodSeconds": 30}
    frontend = deployment.find("HorizontalPodAutoscaler", "frontend-hpa").inputs["spec"]
    assert (frontend["minReplicas"], frontend["maxReplicas"]) == (3, 10)


def test_without_autoscaling_the_deployment_sets_its_replicas_and_has_no_autoscaler():
    result = run_program(dev(**{"frontend.autoscaling.enabled": False, "frontend.replicas": 2}))
    assert result.find("Deployment", "frontend").inputs["spec"]["replicas"] == 2
    assert [r.object_name for r in result.of_kind("HorizontalPodAutoscaler")] == ["backend-hpa"]


def test_services_and_selectors_keep_the_old_names_and_labels(deployment):
    for name, port, component in (("backend", 8000, "api"), ("frontend", 3000, "web")):
        service = deployment.find("Service", name).inputs["spec"]
        assert service["selector"] == {"app": name} and service["ports"][0]["port"] == port
        template = deployment.find("Deployment", name).inputs["spec"]["template"]["metadata"]["labels"]
        assert template == {"app": name, "component": component}


def test_a_service_follows_its_awaited_rollout_and_is_not_awaited_itself(deployment):
    # The provider's wait on a Service adds a fixed 10 s after its endpoints settle: the
    # rollout before it already proved the pods it selects Ready.
    for name in ("backend", "frontend"):
        service = deployment.find("Service", name)
        assert deployment.depends_on(service, deployment.find("Deployment", name)), name
        assert service.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true", name


def test_the_app_images_run_as_they_are_built_root_allowed_with_dropped_capabilities(deployment):
    backend = pod(deployment.find("Deployment", "backend"))
    frontend = pod(deployment.find("Deployment", "frontend"))
    assert "runAsNonRoot" not in backend["securityContext"] and "runAsNonRoot" not in frontend["securityContext"]
    assert backend["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert frontend["containers"][0]["securityContext"]["capabilities"] == {
        "drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID", "NET_BIND_SERVICE"]}


def test_a_hardened_image_can_be_required_to_run_as_non_root():
    result = run_program(dev(**{"backend.security.runAsNonRoot": True, "backend.security.runAsUser": 10001,
                                "backend.security.readOnlyRootFilesystem": True}))
    spec = pod(result.find("Deployment", "backend"))
    assert (spec["securityContext"]["runAsNonRoot"], spec["securityContext"]["runAsUser"]) == (True, 10001)
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    job = pod(result.find("Job", "db-migrations"))
    assert job["securityContext"]["runAsNonRoot"] is True  # the migration Job runs in the backend image


def test_the_jobs_this_program_owns_run_unprivileged(deployment):
    for name in ("wait-for-postgres", "wait-for-redis"):
        spec = pod(deployment.find("Job", name))
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["containers"][0]["securityContext"]["runAsUser"] == 65534


def test_take_over_forces_ownership_of_the_objects_make_eks_deploy_created():
    result = run_program(dev(takeOver="true"))
    for kind, name in (("Deployment", "backend"), ("Service", "frontend"), ("HorizontalPodAutoscaler", "backend-hpa"),
                       ("Ingress", "ideaforge-ai-ingress-nginx")):
        assert result.find(kind, name).inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"


def test_without_take_over_nothing_forces_ownership_but_the_retained_app_configmap(deployment):
    # The app ConfigMap is replaced when its data changes, over the retained live object
    # (components/app_config.py): its own previous fields are the only ones it forces.
    forced = [(r["kind"], r["metadata"]["name"]) for r in deployment.manifests()
              if "pulumi.com/patchForce" in (r["metadata"].get("annotations") or {})]
    assert forced == [("ConfigMap", "ideaforge-ai-config")]


# -- migration sets too big for one ConfigMap -------------------------------------------------


def write_migrations(directory, count, size):
    directory.mkdir(parents=True, exist_ok=True)
    body = "-- " + "x" * (size - 40) + "\nSELECT 1;\n"
    for i in range(count):
        (directory / f"{20260101000000 + i}_m{i:05d}.sql").write_text(body)


def shipped_from(directory):
    return dev(**{"migrations.source": "configmap", "migrations.dirs": [str(directory)]})


def test_thousands_of_migrations_are_split_across_configmaps_all_mounted(tmp_path):
    write_migrations(tmp_path / "many", 3000, 1000)
    result = run_program(shipped_from(tmp_path / "many"))
    assert result.error is None, result.error
    maps = [r for r in result.of_kind("ConfigMap") if r.object_name.startswith("db-migrations-files")]
    assert len(maps) == 4
    assert all(sum(len(v) for v in m.inputs["data"].values()) <= CONFIGMAP_BUDGET for m in maps)
    assert sum(len(m.inputs["data"]) for m in maps) == 3000
    volume = pod(result.find("Job", "db-migrations"))["volumes"][0]
    assert sorted(s["configMap"]["name"] for s in volume["projected"]["sources"]) == sorted(m.object_name for m in maps)


def test_more_migrations_than_configmaps_can_carry_stop_the_preview(tmp_path):
    write_migrations(tmp_path / "huge", MAX_CONFIGMAPS + 1, 900 * 1024 - 100)
    result = run_program(shipped_from(tmp_path / "huge"))
    assert "Build a migrations image" in str(result.error)


def test_a_rollout_gives_up_after_the_kubernetes_default_progress_deadline(deployment):
    for name in ("backend", "frontend"):
        assert deployment.find("Deployment", name).inputs["spec"]["progressDeadlineSeconds"] == 600


def test_up_waits_ten_minutes_for_a_rollout_by_default(deployment):
    for name in ("backend", "frontend"):
        assert deployment.find("Deployment", name).custom_timeouts == {"create": "600s", "update": "600s"}


def test_a_stack_can_bound_how_long_up_waits_for_a_workloads_rollout():
    result = run_program(dev(**{"backend.rolloutTimeoutSeconds": 90}))
    assert result.find("Deployment", "backend").custom_timeouts == {"create": "90s", "update": "90s"}
    assert result.find("Deployment", "frontend").custom_timeouts == {"create": "600s", "update": "600s"}


def test_a_stack_can_shorten_the_progress_deadline_of_a_workload():
    result = run_program(dev(**{"backend.progressDeadlineSeconds": 120}))
    assert result.error is None, result.error
    assert result.find("Deployment", "backend").inputs["spec"]["progressDeadlineSeconds"] == 120
    assert result.find("Deployment", "frontend").inputs["spec"]["progressDeadlineSeconds"] == 600
