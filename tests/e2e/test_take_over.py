"""Scenario 8: taking over a namespace that `make eks-deploy` filled.

The namespace first holds what the old flow leaves there, made as `kubectl apply` makes
objects (its field manager and last-applied annotation), from the facts of the app's
k8s/eks manifests: backend and frontend with their Services and autoscalers, the Ingress,
the finished db-migrations Job, the db-migrations ConfigMap; and a database the old
migration script maintained. Then the documented path, deploy.py take-over.
"""

from __future__ import annotations

import json
import threading
import time

from kubernetes import client

from tests import backend_image

NAMESPACE = "ideaforge-takeover"
FIELD_MANAGER = "kubectl-client-side-apply"
OLD_TABLE = ("CREATE TABLE schema_migrations (id SERIAL PRIMARY KEY, migration_name VARCHAR(255) UNIQUE NOT NULL, "
             "applied_at TIMESTAMP WITH TIME ZONE DEFAULT NOW())")


def kubectl_apply(create, namespace: str, manifest: dict):
    """Create as `kubectl apply` does: its field manager, and the manifest in last-applied."""
    manifest["metadata"].setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = \
        json.dumps(manifest)
    return create(namespace, manifest, field_manager=FIELD_MANAGER)


def deployment(name: str, component: str, image: str, port: int, replicas: int, resources: dict) -> dict:
    probe = {"httpGet": {"path": "/health" if name == "backend" else "/", "port": port}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name, "component": component}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name, "component": component}}, "spec": {
                         "imagePullSecrets": [{"name": "ghcr-secret"}],
                         "containers": [{"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                                         "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
                                         "env": [{"name": "POSTGRES_HOST", "valueFrom": {"configMapKeyRef": {
                                             "name": "ideaforge-ai-config", "key": "POSTGRES_HOST"}}}],
                                         "resources": resources, "readinessProbe": probe, "livenessProbe": probe}]}}}}


def service(name: str, component: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name, "component": component}},
            "spec": {"type": "ClusterIP", "selector": {"app": name},
                     "ports": [{"port": port, "targetPort": port, "protocol": "TCP", "name": "http"}]}}


def hpa(name: str, low: int, high: int, cpu: int, memory: int) -> dict:
    metric = lambda resource, target: {"type": "Resource", "resource": {  # noqa: E731
        "name": resource, "target": {"type": "Utilization", "averageUtilization": target}}}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": f"{name}-hpa"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": low, "maxReplicas": high, "metrics": [metric("cpu", cpu), metric("memory", memory)]}}


def fill_like_make_eks_deploy(e2e) -> None:
    apps, core = e2e.apps, e2e.core
    autoscaling, networking = client.AutoscalingV2Api(e2e.kube), client.NetworkingV1Api(e2e.kube)
    registry = "ghcr.io/soumantrivedi/ideaforge-ai"
    kubectl_apply(apps.create_namespaced_deployment, NAMESPACE, deployment(
        "backend", "api", f"{registry}/backend:e2e-1", 8000, 5,
        {"requests": {"memory": "2Gi", "cpu": "2000m"}, "limits": {"memory": "4Gi", "cpu": "4000m"}}))
    kubectl_apply(apps.create_namespaced_deployment, NAMESPACE, deployment(
        "frontend", "web", f"{registry}/frontend:e2e-1", 3000, 3,
        {"requests": {"memory": "256Mi", "cpu": "100m"}, "limits": {"memory": "512Mi", "cpu": "500m"}}))
    kubectl_apply(core.create_namespaced_service, NAMESPACE, service("backend", "api", 8000))
    kubectl_apply(core.create_namespaced_service, NAMESPACE, service("frontend", "web", 3000))
    kubectl_apply(autoscaling.create_namespaced_horizontal_pod_autoscaler, NAMESPACE, hpa("backend", 5, 20, 60, 75))
    kubectl_apply(autoscaling.create_namespaced_horizontal_pod_autoscaler, NAMESPACE, hpa("frontend", 3, 10, 70, 80))
    kubectl_apply(networking.create_namespaced_ingress, NAMESPACE, {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "ideaforge-ai-ingress", "annotations": {"kubernetes.io/ingress.class": "alb"}},
        "spec": {"rules": [
            {"host": "ideaforge.e2e.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "frontend", "port": {"number": 3000}}}}]}},
            {"host": "api.ideaforge.e2e.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "backend", "port": {"number": 8000}}}}]}}]}})
    # The Ingress traffic goes through (k8s/eks/ingress-nginx.yaml), and the app ConfigMap
    # (k8s/eks/configmap.yaml), with the values the stack holds.
    kubectl_apply(networking.create_namespaced_ingress, NAMESPACE, {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "ideaforge-ai-ingress-nginx", "annotations": {
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "600"}},
        "spec": {"ingressClassName": "nginx", "rules": [
            {"host": "ideaforge.e2e.test", "http": {"paths": [
                {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "backend", "port": {"number": 8000}}}},
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend", "port": {"number": 3000}}}}]}},
            {"host": "api.ideaforge.e2e.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "backend", "port": {"number": 8000}}}}]}}]}})
    kubectl_apply(core.create_namespaced_config_map, NAMESPACE, {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ideaforge-ai-config"}, "data": e2e.app_config()})
    union = {p.name: p.read_text() for p in backend_image.IMAGE_DIRS["/app/migrations-local"].glob("*.sql")}
    union.update({p.name: p.read_text() for p in backend_image.IMAGE_DIRS["/app/migrations"].glob("*.sql")})
    kubectl_apply(core.create_namespaced_config_map, NAMESPACE, {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db-migrations"}, "data": union})
    kubectl_apply(e2e.batch.create_namespaced_job, NAMESPACE, {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "db-migrations", "labels": {"app": "db-migration", "component": "database"}},
        "spec": {"ttlSecondsAfterFinished": 3600, "backoffLimit": 3, "activeDeadlineSeconds": 600, "template": {
            "metadata": {"labels": {"app": "db-migration", "component": "database"}},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "run-migrations", "image": f"{registry}/backend:e2e-1",
                "command": ["python", "-c", "print('the old migrate.py ran')"]}]}}}})
    # The old script's database: every file of its ConfigMap applied, its table and rows.
    for name in sorted(union):
        e2e.query(union[name], as_app=True)
    e2e.query(OLD_TABLE, as_app=True)
    for name in sorted(union):
        e2e.query("INSERT INTO schema_migrations (migration_name) VALUES (%s)", (name if "tenants" not in name
                                                                                else name[:-len(".sql")],), as_app=True)
    deadline = time.monotonic() + 60
    while not (e2e.job("db-migrations").status.succeeded
               and all((d.status.ready_replicas or 0) == d.spec.replicas
                       for d in apps.list_namespaced_deployment(NAMESPACE).items)):
        assert time.monotonic() < deadline, "the old flow's objects did not come up"
        time.sleep(0.5)


def settled(e2e, app: str) -> None:
    """Wait until the Deployment's rollout is over: no pod of an older ReplicaSet left."""
    deadline = time.monotonic() + 120
    while True:
        deployment = e2e.apps.read_namespaced_deployment(app, NAMESPACE)
        live = e2e.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={app}").items
        if (deployment.status.updated_replicas == deployment.spec.replicas == len(live)
                and deployment.status.observed_generation == deployment.metadata.generation):
            return
        assert time.monotonic() < deadline, f"the {app} rollout did not finish"
        time.sleep(0.5)


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


def pods(e2e, app: str) -> set[str]:
    return {p.metadata.uid for p in e2e.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={app}").items
            if not p.metadata.deletion_timestamp}


def test_8_take_over_of_a_namespace_filled_by_make_eks_deploy(e2e):
    e2e.use_stack("takeover", NAMESPACE, "takeover_db")
    e2e.prepare_namespace()
    fill_like_make_eks_deploy(e2e)
    e2e.init_stack()
    schema_before = e2e.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                              "ORDER BY 1")

    refused = e2e.deploy("up")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "python deploy.py take-over --stack takeover" in refused.stderr

    watching, scaled_to = watch_replicas(e2e)
    taken = e2e.deploy("take-over")
    watching.set()

    text = taken.stdout + taken.stderr
    assert taken.returncode == 0, text[-6000:]
    assert "AlreadyExists" not in text and "conflict" not in text.lower()
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
    # The autoscaler's counts, never dropped to the default of 1 along the way.
    assert scaled_to == {"backend": [5], "frontend": [3]}
    assert "takeOver" not in (e2e.project / "Pulumi.takeover.yaml").read_text()

    for app in ("backend", "frontend"):
        settled(e2e, app)  # the take-over's rolling update, if the template changed, is over
    running = {app: pods(e2e, app) for app in ("backend", "frontend")}
    again = e2e.deploy("up")

    assert again.returncode == 0, again.stdout + again.stderr  # no field conflict with the autoscaler
    time.sleep(3)  # what a template change would have started by now
    assert {app: pods(e2e, app) for app in ("backend", "frontend")} == running
    assert "deployed: no changes" in again.stdout
    assert e2e.apps.read_namespaced_deployment("backend", NAMESPACE).spec.replicas == 5
