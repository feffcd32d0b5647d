"""Kubernetes access for the deploy script: reachability and the clients for the report."""

from __future__ import annotations

import os
from typing import Optional

from deploytool.errors import TransientError, UsageError


# What `make eks-deploy` leaves in a namespace that this program manages under the same names
# (its ALB Ingresses, ideaforge-ai-ingress and ideaforge-ai-ingress-alb, are not among them).
OLD_FLOW_OBJECTS = (
    ("Deployment", "backend"), ("Deployment", "frontend"), ("Service", "backend"), ("Service", "frontend"),
    ("HorizontalPodAutoscaler", "backend-hpa"), ("HorizontalPodAutoscaler", "frontend-hpa"),
    ("Ingress", "ideaforge-ai-ingress-nginx"), ("ConfigMap", "ideaforge-ai-config"), ("Job", "db-migrations"),
)
MIGRATION_JOB = "db-migrations"


def load_config(context: Optional[str] = None) -> None:
    """The kubeconfig (KUBECONFIG, else ~/.kube/config), else the in-cluster service account."""
    from kubernetes import config

    # Read KUBECONFIG now: the client reads it once, when it is imported.
    files = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        config.load_kube_config(config_file=files, context=context)
        return
    except config.ConfigException as exc:
        kubeconfig_problem = str(exc)
    except FileNotFoundError as exc:
        kubeconfig_problem = str(exc)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        raise UsageError(
            "no kubeconfig found (KUBECONFIG, ~/.kube/config) and not running in a cluster; point KUBECONFIG "
            f"at the cluster's kubeconfig ({kubeconfig_problem})"
        ) from None


def clients(context: Optional[str] = None):
    """BatchV1Api and CoreV1Api from the kubeconfig (or the in-cluster service account)."""
    from kubernetes import client

    load_config(context)
    return client.BatchV1Api(), client.CoreV1Api()


def require_reachable(context: Optional[str] = None) -> None:
    from kubernetes import client

    load_config(context)
    try:
        client.VersionApi().get_code(_request_timeout=10)
    except Exception as exc:
        raise TransientError(
            f"the Kubernetes cluster is not reachable{f' (context {context})' if context else ''}: "
            f"{_reason(exc)}; check `kubectl cluster-info` and your KUBECONFIG"
        ) from None


def unmanaged_objects(namespace: str, context: Optional[str] = None) -> list[str]:
    """The objects of the old flow present in the namespace and not created by Pulumi."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    load_config(context)
    readers = {
        "Deployment": client.AppsV1Api().read_namespaced_deployment,
        "Service": client.CoreV1Api().read_namespaced_service,
        "ConfigMap": client.CoreV1Api().read_namespaced_config_map,
        "HorizontalPodAutoscaler": client.AutoscalingV2Api().read_namespaced_horizontal_pod_autoscaler,
        "Ingress": client.NetworkingV1Api().read_namespaced_ingress,
        "Job": client.BatchV1Api().read_namespaced_job,
    }
    found = []
    for kind, name in OLD_FLOW_OBJECTS:
        try:
            obj = readers[kind](name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        if (obj.metadata.labels or {}).get("app.kubernetes.io/managed-by") != "pulumi":
            found.append(f"{kind} {name}")
    return found


REPLICAS_MANAGER = "ideaforge-replicas"


def hand_replicas_to_their_own_manager(namespace: str, context: Optional[str] = None) -> list[str]:
    """Give the replica count of each autoscaled Deployment of the old flow a field manager of
    its own, and return their names.

    `kubectl apply` owns spec.replicas. On its first update of such an object,
    pulumi-kubernetes takes over every field kubectl owns and drops those the program does not
    set; the program leaves replicas to the autoscaler, so the count would fall to the
    default of 1 until the autoscaler scales back. A second owner keeps the count where it is.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    load_config(context)
    apps, autoscaling = client.AppsV1Api(), client.AutoscalingV2Api()
    handed = []
    for name in ("backend", "frontend"):
        try:
            deployment = apps.read_namespaced_deployment(name, namespace)
            autoscaling.read_namespaced_horizontal_pod_autoscaler(f"{name}-hpa", namespace)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"replicas": deployment.spec.replicas}}
        apps.patch_namespaced_deployment(name, namespace, body, field_manager=REPLICAS_MANAGER, force=True,
                                         _content_type="application/apply-patch+yaml")
        handed.append(name)
    return handed


def delete_old_migration_job(namespace: str, context: Optional[str] = None) -> bool:
    """Delete the old flow's finished db-migrations Job (as its Makefile did before every run):
    a Job's pod template cannot be changed, so the new Job cannot take it over."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    load_config(context)
    batch = client.BatchV1Api()
    try:
        job = batch.read_namespaced_job(MIGRATION_JOB, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    if (job.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "pulumi":
        return False
    if job.status.active:
        raise TransientError(f"Job {namespace}/{MIGRATION_JOB} of the old flow is still running; wait for it to "
                             "finish (kubectl wait --for=condition=complete job/db-migrations), then run again")
    batch.delete_namespaced_job(MIGRATION_JOB, namespace, propagation_policy="Background")
    return True


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "reason", "") or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
