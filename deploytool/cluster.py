"""Kubernetes access for the deploy script: which cluster, and what it reads and changes there
outside Pulumi (the take-over's preparation, the reports, the one-off status Job).

The cluster is the one the stack names (`kubernetes:context` in Pulumi.<stack>.yaml), so the
checks and reports here look at the cluster Pulumi deploys to.
"""

from __future__ import annotations

import copy
import importlib
import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from components.security import TAKE_OVER_MANAGER
from deploytool.errors import TransientError, UsageError

MIGRATION_JOB = "db-migrations"
REPLICAS_MANAGER = "ideaforge-replicas"
# Managers whose fields the take-over hands to Pulumi: `kubectl apply` (client-side, or
# server-side), objects made before the first apply, and Pulumi's own earlier managers.
_HANDED_OVER = ("kubectl", "before-first-apply", "pulumi-kubernetes")


@dataclass
class Cluster:
    """The API groups the script uses, of one cluster (tests pass stand-ins)."""

    core: Any
    apps: Any
    batch: Any
    autoscaling: Any
    networking: Any
    context: Optional[str] = None


@dataclass(frozen=True)
class Ref:
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


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
    if context:
        raise UsageError(f"the kubeconfig ({files}) has no usable context {context!r}: {kubeconfig_problem}; "
                         "`kubectl config get-contexts` lists them") from None
    try:
        config.load_incluster_config()
    except config.ConfigException:
        raise UsageError(
            "no kubeconfig found (KUBECONFIG, ~/.kube/config) and not running in a cluster; point KUBECONFIG "
            f"at the cluster's kubeconfig ({kubeconfig_problem})"
        ) from None


# The API groups connect() uses: their modules take about a second to import.
CLIENT_MODULES = tuple(f"kubernetes.client.api.{group}_api" for group in ("core_v1", "apps_v1", "batch_v1",
                                                                          "autoscaling_v2", "networking_v1"))


def import_client() -> None:
    try:
        for module in CLIENT_MODULES:
            importlib.import_module(module)
    except ImportError:
        pass  # connect() imports them again and reports it


def connect(context: Optional[str] = None) -> Cluster:
    from kubernetes import client

    load_config(context)
    return Cluster(client.CoreV1Api(), client.AppsV1Api(), client.BatchV1Api(), client.AutoscalingV2Api(),
                   client.NetworkingV1Api(), context)


def current_context() -> Optional[str]:
    """The kubeconfig's current context (what Pulumi uses when the stack names none)."""
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(os.environ.get("KUBECONFIG") or None)
    except Exception:  # in-cluster, or no kubeconfig: the reachability check says so
        return None
    return (active or {}).get("name")


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


# -- what the old flow left in the namespace ---------------------------------------------------


def read(cluster: Cluster, ref: Ref, namespace: str):
    """The object, or None when it does not exist."""
    from kubernetes.client.exceptions import ApiException

    readers = {
        "Deployment": cluster.apps.read_namespaced_deployment,
        "Service": cluster.core.read_namespaced_service,
        "HorizontalPodAutoscaler": cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler,
        "Ingress": cluster.networking.read_namespaced_ingress,
        "ConfigMap": cluster.core.read_namespaced_config_map,
        "Secret": cluster.core.read_namespaced_secret,
        "Job": cluster.batch.read_namespaced_job,
    }
    try:
        return readers[ref.kind](ref.name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def present(cluster: Cluster, refs: Iterable[Ref], namespace: str) -> list[Ref]:
    return [ref for ref in refs if read(cluster, ref, namespace) is not None]


def hand_replicas_to_their_own_manager(cluster: Cluster, namespace: str, autoscaled: Iterable[str]) -> list[str]:
    """Give the replica count of each autoscaled Deployment of the old flow a field manager of
    its own, and return their names.

    `kubectl apply` owns spec.replicas, and the take-over hands kubectl's fields to Pulumi;
    the program leaves replicas to the autoscaler, so Pulumi's apply would drop the count to
    the default of 1 until the autoscaler scales back. A second owner keeps it where it is.
    """
    handed = []
    for name in autoscaled:
        deployment = read(cluster, Ref("Deployment", name), namespace)
        if deployment is None or read(cluster, Ref("HorizontalPodAutoscaler", f"{name}-hpa"), namespace) is None:
            continue
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"replicas": deployment.spec.replicas}}
        cluster.apps.patch_namespaced_deployment(name, namespace, body, field_manager=REPLICAS_MANAGER, force=True,
                                                 _content_type="application/apply-patch+yaml")
        handed.append(name)
    return handed


def hand_fields_to_pulumi(cluster: Cluster, refs: Iterable[Ref], namespace: str) -> list[Ref]:
    """Move the fields `kubectl apply` owns on these objects to Pulumi's take-over manager, as
    pulumi-kubernetes does on its first update of such an object, but before the take-over's
    update: its apply then also drops what the program no longer sets (the old per-key env
    list), so the pods roll once, not once per `up`. Returns the objects changed."""
    changed = []
    patchers = {
        "Deployment": cluster.apps.patch_namespaced_deployment,
        "Service": cluster.core.patch_namespaced_service,
        "HorizontalPodAutoscaler": cluster.autoscaling.patch_namespaced_horizontal_pod_autoscaler,
        "Ingress": cluster.networking.patch_namespaced_ingress,
        "ConfigMap": cluster.core.patch_namespaced_config_map,
    }
    from kubernetes.client.exceptions import ApiException

    for ref in refs:
        for attempt in range(5):
            found = read(cluster, ref, namespace)
            merged = merged_managers([_plain(e) for e in (found.metadata.managed_fields or [])]) if found else None
            if merged is None:
                break
            # Only onto the version read: a controller writing meanwhile makes the test fail, and we read again.
            patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": found.metadata.resource_version},
                     {"op": "replace", "path": "/metadata/managedFields", "value": merged}]
            try:
                patchers[ref.kind](ref.name, namespace, patch, _content_type="application/json-patch+json")
            except ApiException as exc:
                if exc.status in (409, 422) and attempt < 4:
                    continue
                raise
            changed.append(ref)
            break
    return changed


def merged_managers(entries: list[dict]) -> Optional[list[dict]]:
    """managedFields with the entries of the handed-over managers merged into one Apply entry of
    TAKE_OVER_MANAGER; None when there is nothing to hand over."""
    handed = [e for e in entries if e.get("manager", "").startswith(_HANDED_OVER) and
              not (e.get("manager") == TAKE_OVER_MANAGER and e.get("operation") == "Apply")]
    if not handed:
        return None
    ours = [e for e in entries if e.get("manager") == TAKE_OVER_MANAGER and e.get("operation") == "Apply"]
    fields: dict = {}
    for entry in ours + handed:
        _union(fields, entry.get("fieldsV1") or {})
    kept = [e for e in entries if e not in handed and e not in ours]
    base = (ours or handed)[0]
    return kept + [{"manager": TAKE_OVER_MANAGER, "operation": "Apply", "apiVersion": base.get("apiVersion"),
                    "time": base.get("time"), "fieldsType": "FieldsV1", "fieldsV1": fields}]


def _union(into: dict, more: dict) -> None:
    for key, value in more.items():
        if isinstance(value, dict):
            _union(into.setdefault(key, {}), value)
        else:
            into.setdefault(key, value)


def _plain(entry) -> dict:
    """A managedFields entry as the API sends it (camelCase), from the client's model."""
    from kubernetes import client

    data = client.ApiClient().sanitize_for_serialization(entry)
    return copy.deepcopy(data)


def delete_old_migration_job(cluster: Cluster, namespace: str) -> bool:
    """Delete the old flow's finished db-migrations Job (as its Makefile did before every run):
    a Job's pod template cannot be changed, so the new Job cannot take it over."""
    job = read(cluster, Ref("Job", MIGRATION_JOB), namespace)
    if job is None or (job.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "pulumi":
        return False
    if job.status.active:
        raise TransientError(f"Job {namespace}/{MIGRATION_JOB} of the old flow is still running; wait for it to "
                             "finish (kubectl wait --for=condition=complete job/db-migrations), then run again")
    cluster.batch.delete_namespaced_job(MIGRATION_JOB, namespace, propagation_policy="Background")
    return True


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "reason", "") or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
