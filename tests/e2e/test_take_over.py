"""Scenario 8: taking over a namespace that `make eks-deploy` filled, from the app's own files.

The namespace is filled the way the app's Makefile fills it (eks-deploy-full): the pull
secret, the app Secret from env.eks (env.eks.example here), the ConfigMaps of
create-db-configmaps.sh, then every manifest of k8s/eks applied as `kubectl apply` applies it
(its field manager and last-applied annotation), and the old db-migrations Job, which runs
the app's old migrate.py in the backend image against the database. Only what a test machine
must change is changed: the namespace, the hosts, the images (built here), and CPU requests
(2 cores). The database tier of k8s/eks (the postgres-ha StatefulSets with 20Gi volumes,
Redis, etcd, the one-off seed and restore Jobs, and the other environment's stg/ files) is
not applied: the run's PostgreSQL and Redis stand in behind the same Service names. The
database is the one the old flow's first deploy leaves (tests/old_flow.py runs its Jobs'
commands from the app's manifests: migrate.py fails on the app's dollar-quoted DO blocks,
db-setup and update-migration-tracking fill and record everything), copied in; the next
deploy's db-migrations Job then runs as a pod and finds everything recorded.
Then the documented path: deploy.py take-over.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from runner.scratch import _binaries
from tests import old_flow
from tests.e2e import images as image_builds
from tests.old_flow import STANDIN_SHARE
from tests.e2e.conftest import APP, PASSWORD, on_test_domain, record_timing

NAMESPACE = "ideaforge-takeover"
TAG = "takeover-1"
FIELD_MANAGER = "kubectl-client-side-apply"
EKS = APP / "k8s" / "eks"
# The database tier and one-off Jobs (see the module's docstring), and the namespace itself.
NOT_APPLIED = {"namespace.yaml", "postgres.yaml", "postgres-ha-simple.yaml", "postgres-ha-statefulset.yaml",
               "postgres-ha-statefulset-stg.yaml", "postgres-ha-etcd.yaml", "postgres-ha-etcd-stg.yaml",
               "redis.yaml", "db-setup-job.yaml", "db-restore-stg-job.yaml", "run-migrations-job.yaml",
               "update-migration-tracking.yaml"}
CPU_REQUESTS = {"backend": "50m", "frontend": "20m"}  # as Pulumi.e2e.yaml sets them


def for_this_machine(text: str) -> str:
    """The substitutions of a test machine: namespace, hosts, images."""
    text = re.sub(r"namespace:\s+[^\s#]+", f"namespace: {NAMESPACE}", text)  # as update-eks-namespace.py does
    text = on_test_domain(text).replace("ideaforge.ai", "ideaforge-ai.e2e.test")
    text = re.sub(r"ghcr\.io/soumantrivedi/ideaforge-ai/backend:\S+", f"{image_builds.REGISTRY}/backend:{TAG}", text)
    text = re.sub(r"ghcr\.io/soumantrivedi/ideaforge-ai/frontend:\S+", f"{image_builds.REGISTRY}/frontend:e2e-1", text)
    return text.replace("busybox:1.36", image_builds.BUSYBOX_IMAGE)


def manifests() -> list[tuple[str, dict]]:
    """(file, document) in the order `find k8s/eks -name '*.yaml' ! -name namespace.yaml` gives."""
    listed = subprocess.run(["find", str(EKS), "-maxdepth", "1", "-name", "*.yaml", "!", "-name", "namespace.yaml",
                             "-type", "f"], capture_output=True, text=True, check=True).stdout.split()
    found = []
    for path in listed:
        name = path.rsplit("/", 1)[1]
        if name in NOT_APPLIED:
            continue
        with open(path) as f:
            for document in yaml.safe_load_all(for_this_machine(f.read())):
                if document:
                    found.append((name, document))
    return found


def fit_to_node(document: dict) -> dict:
    if document["kind"] == "Deployment" and document["metadata"]["name"] in CPU_REQUESTS:
        for container in document["spec"]["template"]["spec"]["containers"]:
            container["resources"]["requests"]["cpu"] = CPU_REQUESTS[document["metadata"]["name"]]
    return document


class KubectlApply:
    """Applies objects as `kubectl apply` does on this path: a new object is created with field
    manager kubectl-client-side-apply and the manifest in the last-applied-configuration
    annotation; an existing one (the -stg HPAs and ALB Ingress share names with the dev ones;
    secrets.yaml after eks-load-secrets) is patched with the manifest, the later file winning."""

    def __init__(self, api):
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        autoscaling, networking, batch = client.AutoscalingV2Api(api), client.NetworkingV1Api(api), client.BatchV1Api(api)
        self.calls = {
            "ConfigMap": (core.create_namespaced_config_map, core.patch_namespaced_config_map),
            "Secret": (core.create_namespaced_secret, core.patch_namespaced_secret),
            "Service": (core.create_namespaced_service, core.patch_namespaced_service),
            "Deployment": (apps.create_namespaced_deployment, apps.patch_namespaced_deployment),
            "HorizontalPodAutoscaler": (autoscaling.create_namespaced_horizontal_pod_autoscaler,
                                        autoscaling.patch_namespaced_horizontal_pod_autoscaler),
            "Ingress": (networking.create_namespaced_ingress, networking.patch_namespaced_ingress),
            "Job": (batch.create_namespaced_job, batch.patch_namespaced_job),
        }

    def __call__(self, manifest: dict) -> None:
        manifest.setdefault("metadata", {}).setdefault("annotations", {})[
            "kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(manifest, separators=(",", ":"))
        kind, namespace = manifest["kind"], manifest["metadata"].get("namespace", NAMESPACE)
        create, patch = self.calls[kind]
        try:
            create(namespace, manifest, field_manager=FIELD_MANAGER)
        except client.exceptions.ApiException as exc:
            if exc.status != 409:
                raise
            patch(manifest["metadata"]["name"], namespace, manifest, field_manager=FIELD_MANAGER)


_old_flow_dump: list[Path] = []


def old_flow_database(e2e) -> None:
    """The database as the old flow's Jobs leave it, in this scenario's database: built once per
    run by tests/old_flow.py from the app's own files (the first migrate.py, which fails on the
    app's dollar-quoted DO blocks; db-setup: the base schema, every migration with errors
    ignored, the sample data; update-migration-tracking: every file recorded; migrate.py again),
    then copied here with pg_dump. Its psql Jobs run as host processes there (README, "Tests");
    the db-migrations Job of the next deploy runs here as a pod. uuid-ossp is the suite's
    stand-in extension (tests/fixtures/uuid-ossp-standin), found through extension_control_path."""
    if not _old_flow_dump:
        work = e2e.project.parent / "old-flow"
        built = old_flow.build(work)
        try:
            dump = work / "old-flow.sql"
            subprocess.run([str(_binaries() / "pg_dump"), "--file", str(dump), built.server.url(old_flow.DATABASE)],
                           check=True, capture_output=True, text=True)
        finally:
            built.server.cleanup()
        _old_flow_dump.append(dump)
    e2e.query(f'ALTER DATABASE "{e2e.database_name}" SET extension_control_path = %s', (f"{STANDIN_SHARE}:$system",))
    subprocess.run([str(_binaries() / "psql"), e2e.postgres.url(e2e.database_name), "-q", "-v", "ON_ERROR_STOP=1",
                    "-f", str(_old_flow_dump[0])], capture_output=True, text=True, check=True)


def fill_like_make_eks_deploy(e2e) -> None:
    core = e2e.core
    apply = KubectlApply(e2e.kube)
    e2e.create_namespace(NAMESPACE)  # eks-deploy needs it to exist
    core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "ghcr-secret"},  # eks-setup-ghcr-secret
                                              "type": "kubernetes.io/dockerconfigjson",
                                              "stringData": {".dockerconfigjson": '{"auths": {}}'}})
    core.create_namespaced_secret(NAMESPACE, e2e.app_secret())  # eks-load-secrets
    e2e.backing_services()
    # create-db-configmaps.sh (kubectl create configmap --dry-run | kubectl apply)
    migrations = {p.name: p.read_text() for p in sorted((APP / "init-db" / "migrations").glob("*.sql"))}
    apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db-migrations", "namespace": NAMESPACE},
           "data": migrations})
    apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db-seed", "namespace": NAMESPACE},
           "data": {"seed_sample_data.sql": (APP / "init-db" / "seed_sample_data.sql").read_text()}})
    documents = manifests()
    for name, document in documents:
        if document["kind"] == "ConfigMap" and document["metadata"]["name"] == "ideaforge-ai-config":
            document["data"]["POSTGRES_DB"] = e2e.database_name
            e2e.set_app_config(**document["data"])  # the stack holds the values the namespace has
        if document["kind"] != "Job":
            apply(fit_to_node(document))
    # The database was there before, as the old flow's first deploy left it: the app's Postgres,
    # whose password is the Secret's.
    secret = core.read_namespaced_secret("ideaforge-ai-secrets", NAMESPACE)
    e2e.query("ALTER ROLE agentic_pm PASSWORD %s", (base64.b64decode(secret.data["POSTGRES_PASSWORD"]).decode(),))
    old_flow_database(e2e)
    # The next eks-deploy's migration step: `kubectl apply -f db-migrations-job.yaml`, then it waits.
    for name, document in documents:
        if document["kind"] == "Job":
            apply(document)
    deadline = time.monotonic() + 600  # `kubectl wait --for=condition=complete job/db-migrations --timeout=600s`
    seen: dict[str, str] = {}  # its pods' logs, read while they exist (a failed Job's pod is deleted)
    while True:
        job = e2e.job("db-migrations")
        seen.update(old_job_logs(e2e))
        if job.status.succeeded or any(c.type == "Failed" and c.status == "True" for c in job.status.conditions or []):
            break
        assert time.monotonic() < deadline, "the old db-migrations Job did not finish"
        time.sleep(2)
    assert job.status.succeeded, "the old db-migrations Job failed:\n" + "\n".join(
        f"--- {where}:\n{log}" for where, log in seen.items())


def old_job_logs(e2e) -> dict[str, str]:
    """pod/container -> its log (what `kubectl logs` shows), for each pod of the old Job."""
    logs = {}
    for pod in e2e.pods_of_job("db-migrations"):
        for container in [c.name for c in pod.spec.init_containers or []] + [c.name for c in pod.spec.containers]:
            try:
                log = e2e.core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE, container=container)
            except client.exceptions.ApiException:
                continue  # not started yet
            if log:
                logs[f"{pod.metadata.name}/{container}"] = log
        for status in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or []):
            for state in (status.state, status.last_state):
                if state and state.terminated and state.terminated.exit_code:
                    logs[f"{pod.metadata.name}/{status.name} (restarts {status.restart_count})"] = (
                        f"exit {state.terminated.exit_code} ({state.terminated.reason}): {state.terminated.message}")
    return logs


def settled(e2e, app: str) -> None:
    """Wait until the Deployment's rollout is over: no pod of an older ReplicaSet left."""
    deadline = time.monotonic() + 300
    while True:
        deployment = e2e.apps.read_namespaced_deployment(app, NAMESPACE)
        live = e2e.pods(f"app={app}")
        if (deployment.status.updated_replicas == deployment.spec.replicas == len(live)
                == (deployment.status.ready_replicas or 0)
                and deployment.status.observed_generation == deployment.metadata.generation):
            return
        assert time.monotonic() < deadline, f"the {app} rollout did not finish"
        time.sleep(1)


def autoscaled(e2e, app: str) -> int:
    """The replica count the Deployment's autoscaler keeps, once the Deployment has it."""
    low = client.AutoscalingV2Api(e2e.kube).read_namespaced_horizontal_pod_autoscaler(
        f"{app}-hpa", NAMESPACE).spec.min_replicas
    deadline = time.monotonic() + 120
    while e2e.apps.read_namespaced_deployment(app, NAMESPACE).spec.replicas != low:
        assert time.monotonic() < deadline, f"{app} did not reach its autoscaler's minimum {low}"
        time.sleep(1)
    return low


def watch_replicas(e2e):
    """Every replica count the Deployments show while the take-over runs (sampled)."""
    stop, seen = threading.Event(), {"backend": [], "frontend": []}

    def sample():
        while not stop.wait(0.2):
            for name, counts in seen.items():
                count = e2e.apps.read_namespaced_deployment(name, NAMESPACE).spec.replicas
                if not counts or counts[-1] != count:
                    counts.append(count)

    threading.Thread(target=sample, daemon=True).start()
    return stop, seen


def pod_uids(e2e, app: str) -> set[str]:
    return {p.metadata.uid for p in e2e.pods(f"app={app}")}


@pytest.fixture
def old_flow_password(e2e):
    """The app's Postgres role is shared by every stack of the run: give it back its password."""
    yield
    e2e.query("ALTER ROLE agentic_pm PASSWORD %s", (PASSWORD,))


def test_8_take_over_of_a_namespace_filled_by_make_eks_deploy(e2e, old_flow_password):
    e2e.images.node.import_images([image_builds.backend(TAG)])  # the app's own migration folders
    e2e.use_stack("takeover", NAMESPACE, "takeover_db")
    e2e.init_stack()
    e2e.config("backendImageTag", TAG)
    started = time.monotonic()
    fill_like_make_eks_deploy(e2e)
    old_job = e2e.job("db-migrations")
    recorded = e2e.applied()
    assert recorded, f"the old migrate.py recorded nothing: {old_job_logs(e2e)}"
    for app in ("backend", "frontend"):
        settled(e2e, app)
    record_timing(f"old flow (make eks-deploy's applies, its migration Job, waits until the pods are Ready; "
                  f"without its fixed `sleep 10`): {time.monotonic() - started:.1f} s")
    schema_before = e2e.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                              "ORDER BY 1")

    refused = e2e.deploy("up")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "python deploy.py take-over --stack takeover" in refused.stderr

    # What the autoscalers keep (eks-deploy applies the -stg autoscalers after the dev ones, under
    # the same names: theirs win), never dropped to the default of 1 along the way.
    kept = {app: autoscaled(e2e, app) for app in ("backend", "frontend")}
    watching, scaled_to = watch_replicas(e2e)
    started = time.monotonic()
    taken = e2e.deploy("take-over")
    record_timing(f"deploy.py take-over of that namespace: {time.monotonic() - started:.1f} s")
    watching.set()

    text = taken.stdout + taken.stderr
    assert taken.returncode == 0, text[-8000:]
    assert "AlreadyExists" not in text and "conflict" not in text.lower()
    assert e2e.job("db-migrations").metadata.uid != old_job.metadata.uid
    assert "the migration Job ran and applied 0: nothing was pending" in taken.stdout
    assert e2e.query("SELECT count(*) FROM schema_migrations WHERE checksum IS NULL") == [(0,)]
    assert e2e.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                     "ORDER BY 1") == schema_before
    backend = e2e.apps.read_namespaced_deployment("backend", NAMESPACE)
    assert backend.metadata.labels["app.kubernetes.io/managed-by"] == "pulumi"
    config_map = e2e.core.read_namespaced_config_map("ideaforge-ai-config", NAMESPACE)
    assert config_map.metadata.labels["app.kubernetes.io/managed-by"] == "pulumi"
    assert config_map.data == e2e.app_config()
    networking = client.NetworkingV1Api(e2e.kube)
    assert networking.read_namespaced_ingress("ideaforge-ai-ingress-nginx", NAMESPACE).metadata.labels[
        "app.kubernetes.io/managed-by"] == "pulumi"
    assert "app.kubernetes.io/managed-by" not in (networking.read_namespaced_ingress(
        "ideaforge-ai-ingress", NAMESPACE).metadata.labels or {})  # the dead ALB one is left alone
    assert scaled_to == {app: [count] for app, count in kept.items()}
    assert "takeOver" not in (e2e.project / "Pulumi.takeover.yaml").read_text()

    for app in ("backend", "frontend"):
        settled(e2e, app)  # the take-over's rolling update is over: every new pod Ready
    running = {app: pod_uids(e2e, app) for app in ("backend", "frontend")}
    started = time.monotonic()
    again = e2e.deploy("up")
    record_timing(f"unchanged deploy.py up after the take-over: {time.monotonic() - started:.1f} s")

    assert again.returncode == 0, again.stdout + again.stderr  # no field conflict with the autoscaler
    time.sleep(3)  # what a template change would have started by now
    assert {app: pod_uids(e2e, app) for app in ("backend", "frontend")} == running
    assert "deployed: no changes" in again.stdout
    assert e2e.apps.read_namespaced_deployment("backend", NAMESPACE).spec.replicas == kept["backend"]
