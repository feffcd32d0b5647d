"""What the old Makefile printed when a migration failed: Job status, conditions, and the
logs of every attempt's pod. Read with the official Kubernetes client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

# What reading the cluster can raise (an API error, a connection that failed); a bug in this
# code is none of them and is not taken for "the Job did not run".
READ_ERRORS = (ApiException, HTTPError, OSError)


@dataclass(frozen=True)
class Unknown:
    """The cluster could not say (reason): whether the Job ran is not known."""

    reason: str

# The chain's Jobs, in order; the first is the one that most often explains a failure.
JOBS = ("db-migrations", "wait-for-postgres", "wait-for-redis")
LOG_LINES = 200
# The runner's text output: "applied <file> (<n> statements, <ms> ms)".
_APPLIED = re.compile(r"^applied (\S+\.sql) \(", re.MULTILINE)


def job_report(batch, core, namespace: str, jobs: Iterable[str] = JOBS,
               kept: Optional[dict[str, dict[str, tuple[Optional[str], str]]]] = None) -> str:
    """kept: {job: {pod: (its Job's uid, log)}} read while the deploy ran (pod_logs.py), shown for
    the pods of this Job that are gone by now (a Job past its deadline has its pod deleted)."""
    sections = [_one_job(batch, core, namespace, name, (kept or {}).get(name, {})) for name in jobs]
    return "\n".join(s for s in sections if s)


def _one_job(batch, core, namespace: str, name: str, kept: Optional[dict] = None) -> str:
    from kubernetes.client.exceptions import ApiException

    try:
        job = batch.read_namespaced_job(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            if name == JOBS[0]:
                return (f"=== Job {namespace}/{name}: not found (it was not created because an earlier step "
                        "failed, or ttlSecondsAfterFinished already removed it) ===")
            return ""
        return f"=== Job {namespace}/{name}: cannot be read ({exc.status} {exc.reason}) ==="
    status = job.status
    lines = [
        f"=== Job {namespace}/{name} ===",
        f"status: active={status.active or 0} succeeded={status.succeeded or 0} failed={status.failed or 0}",
    ]
    for condition in status.conditions or []:
        lines.append(f"condition {condition.type}={condition.status} reason={condition.reason}: {condition.message}")
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    pods.sort(key=lambda p: p.metadata.creation_timestamp or "")
    listed = {p.metadata.name for p in pods}
    gone = {pod: log for pod, (owner, log) in (kept or {}).items() if owner == job.metadata.uid and pod not in listed}
    if not pods and not gone:
        lines.append("no pods (they are removed with the Job)")
    for attempt, pod in enumerate(pods, start=1):
        lines.extend(_pod_section(core, namespace, pod, attempt))
    for attempt, (pod, log) in enumerate(gone.items(), start=len(pods) + 1):
        lines.append(f"--- attempt {attempt}: pod {pod}, deleted before this report (by the Job controller) ---")
        lines.append(f"log (last {LOG_LINES} lines, read while it ran):")
        lines.extend(f"  {line}" for line in log.rstrip().splitlines())
    return "\n".join(lines)


def _pod_section(core, namespace: str, pod, attempt: int) -> list[str]:
    name = pod.metadata.name
    container = pod.spec.containers[0].name
    state = _terminated(pod)
    summary = f"phase {pod.status.phase}"
    if state is not None:
        summary += f", exit code {state.exit_code} ({state.reason})"
    lines = [f"--- attempt {attempt}: pod {name}, {summary} ---"]
    if state is not None and state.message:
        lines.append("termination message:")
        lines.extend(f"  {line}" for line in state.message.rstrip().splitlines())
    try:
        log = core.read_namespaced_pod_log(name, namespace, container=container, tail_lines=LOG_LINES)
    except Exception as exc:  # a pod still pulling its image has no log yet
        log = f"(no log: {getattr(exc, 'reason', exc)})"
    lines.append(f"log (last {LOG_LINES} lines):")
    lines.extend(f"  {line}" for line in (log or "").rstrip().splitlines())
    return lines


def _terminated(pod):
    for status in pod.status.container_statuses or []:
        if status.state and status.state.terminated:
            return status.state.terminated
    return None


def job_uid(batch, namespace: str, job: str = JOBS[0]) -> Optional[str]:
    """The identity of the Job as it is now (None: there is none); a Job that ran again is a
    new object. Errors other than "not found" are raised."""
    try:
        return batch.read_namespaced_job(job, namespace).metadata.uid
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def migrations_applied(batch, core, namespace: str, before: Optional[str], job: str = JOBS[0]) -> Optional[list[str]]:
    """The migrations the Job's run applied, from its pod's log; None when the Job did not
    run during this deploy (the same Job object as before the deploy, or none)."""
    try:
        found = batch.read_namespaced_job(job, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    if found.metadata.uid == before:
        return None
    pods = [p for p in core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
            if p.status.phase == "Succeeded"]
    if not pods:
        return None
    log = core.read_namespaced_pod_log(pods[-1].metadata.name, namespace, container=pods[-1].spec.containers[0].name)
    return [m.group(1) for m in _APPLIED.finditer(log or "")]
