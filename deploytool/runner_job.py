"""A one-off run of the migration runner in the cluster, as the migration Job runs it: its image,
its database settings and password (the same ConfigMap and Secret references), its migrations
and runner, but another runner command (`status`) and a read-only database session.

The pod template is the migration Job's own, as Pulumi applied it (the stack's state) or will
apply it (a preview's inputs), so what this run sees is what the Job sees. The session is made
read-only by libpq (`PGOPTIONS=-c default_transaction_read_only=on`): PostgreSQL refuses any
write, whatever the runner's command. The Job and anything made for it are deleted afterwards.
"""

from __future__ import annotations

import base64
import copy
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Optional

from deploytool.cluster import Cluster
from deploytool.errors import DeployError

READ_ONLY = "-c default_transaction_read_only=on"
DEADLINE_SECONDS = 300
RUNNER_VOLUME = "runner"
FILES_VOLUME = "check-files"
FILES_MOUNT = "/opt/db-migrations-check"  # files a check hands to the runner (`verify`'s list)


@dataclass(frozen=True)
class RunnerRun:
    job: str
    exit_code: Optional[int]  # None: the pod never ran to an end (see `problem`)
    log: str
    problem: str = ""


def job_manifest(template: dict, name: str, runner_args: list[str], env: dict[str, str],
                 runner_config_map: Optional[str] = None, files_config_map: Optional[str] = None) -> dict:
    """The one-off Job: the migration Job's pod template with the runner's arguments appended,
    extra environment, a read-only session, and labels of its own (not `app=db-migration`)."""
    pod = copy.deepcopy(template["spec"]["template"]["spec"])
    container = pod["containers"][0]
    container["command"] = [*container["command"], *runner_args]
    wanted = {**env, "PGOPTIONS": READ_ONLY}
    container["env"] = [e for e in container.get("env") or [] if e["name"] not in wanted] + \
        [{"name": key, "value": value} for key, value in wanted.items()]
    if runner_config_map:
        for volume in pod.get("volumes") or []:
            if volume["name"] == RUNNER_VOLUME:
                volume["configMap"]["name"] = runner_config_map
    if files_config_map:
        pod["volumes"] = [*(pod.get("volumes") or []), {"name": FILES_VOLUME, "configMap": {"name": files_config_map}}]
        container["volumeMounts"] = [*(container.get("volumeMounts") or []),
                                     {"name": FILES_VOLUME, "mountPath": FILES_MOUNT, "readOnly": True}]
    pod["restartPolicy"] = "Never"
    labels = {"app": "db-migration-check", "component": "database", "app.kubernetes.io/part-of": "ideaforge-ai"}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": DEADLINE_SECONDS, "ttlSecondsAfterFinished": 600,
                 "template": {"metadata": {"labels": labels}, "spec": pod}},
    }


def run(cluster: Cluster, namespace: str, template: dict, runner_args: list[str], env: Optional[dict] = None,
        runner_zipapp: Optional[bytes] = None, files: Optional[dict[str, str]] = None, purpose: str = "check",
        sleep: Callable[[float], None] = time.sleep) -> RunnerRun:
    """Run it and wait. `runner_zipapp`: ship this runner in a ConfigMap of its own (before the
    first deploy, when the stack's runner ConfigMap does not exist yet); `files`: text files for
    the runner, at FILES_MOUNT."""
    name = f"db-migrations-{purpose}-{secrets.token_hex(3)}"
    runner_config_map = f"{name}-runner" if runner_zipapp is not None else None
    files_config_map = f"{name}-files" if files else None
    manifest = job_manifest(template, name, runner_args, env or {}, runner_config_map, files_config_map)
    labels = manifest["metadata"]["labels"]
    made = []
    try:
        if runner_config_map:
            cluster.core.create_namespaced_config_map(namespace, {
                "metadata": {"name": runner_config_map, "labels": labels},
                "binaryData": {"runner.pyz": base64.b64encode(runner_zipapp).decode()}})
            made.append(runner_config_map)
        if files_config_map:
            cluster.core.create_namespaced_config_map(namespace, {
                "metadata": {"name": files_config_map, "labels": labels}, "data": dict(files)})
            made.append(files_config_map)
        cluster.batch.create_namespaced_job(namespace, manifest)
        try:
            return _wait(cluster, namespace, name, sleep)
        finally:
            cluster.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
    finally:
        for config_map in made:
            cluster.core.delete_namespaced_config_map(config_map, namespace)


def _wait(cluster: Cluster, namespace: str, name: str, sleep: Callable[[float], None]) -> RunnerRun:
    deadline = time.monotonic() + DEADLINE_SECONDS + 60
    while True:
        status = cluster.batch.read_namespaced_job(name, namespace).status
        if status.succeeded or status.failed:
            break
        if time.monotonic() > deadline:
            return RunnerRun(name, None, "", f"Job {namespace}/{name} did not finish within {DEADLINE_SECONDS + 60}s")
        sleep(1)
    pods = cluster.core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    if not pods:
        reasons = "; ".join(f"{c.reason}: {c.message}" for c in status.conditions or [])
        return RunnerRun(name, None, "", f"Job {namespace}/{name} ran no pod ({reasons or 'no reason given'})")
    pod = pods[-1]
    log = cluster.core.read_namespaced_pod_log(pod.metadata.name, namespace, container=pod.spec.containers[0].name)
    terminated = next((s.state.terminated for s in pod.status.container_statuses or []
                       if s.state and s.state.terminated), None)
    if terminated is None:
        reasons = "; ".join(f"{c.reason}: {c.message}" for c in status.conditions or [])
        return RunnerRun(name, None, log or "", f"the pod {pod.metadata.name} did not run to an end ({reasons})")
    return RunnerRun(name, terminated.exit_code, log or "")


def template_from_state(resources: list[dict]) -> Optional[dict]:
    """The migration Job's inputs as Pulumi last applied them."""
    for resource in resources:
        inputs = resource.get("inputs") or {}
        if resource.get("type") == "kubernetes:batch/v1:Job" and \
                (inputs.get("metadata") or {}).get("name") == "db-migrations":
            return inputs
    return None


class NoMigrationJob(DeployError):
    pass
