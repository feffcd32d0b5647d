"""Why a Deployment's rollout did not finish, as `kubectl describe pod` would show it: each
pod that is not Ready, the state of its init containers and containers (waiting reasons such
as CreateContainerConfigError, last terminations such as OOMKilled), the kubelet's warnings
(failed probes), and the tail of its log."""

from __future__ import annotations

from typing import Iterable

DEPLOYMENTS = ("backend", "frontend")
LOG_LINES = 30
EVENTS = 5


def rollout_report(apps, core, namespace: str, deployments: Iterable[str] = DEPLOYMENTS) -> str:
    sections = [_one(apps, core, namespace, name) for name in deployments]
    return "\n".join(s for s in sections if s)


def _one(apps, core, namespace: str, name: str) -> str:
    from kubernetes.client.exceptions import ApiException

    try:
        deployment = apps.read_namespaced_deployment(name, namespace)
    except ApiException as exc:
        return "" if exc.status == 404 else f"=== Deployment {namespace}/{name}: cannot be read ({exc.status}) ==="
    status = deployment.status
    waiting = [p for p in core.list_namespaced_pod(namespace, label_selector=f"app={name}").items
               if not p.metadata.deletion_timestamp and not _ready(p)]
    if not waiting:
        return ""
    lines = [f"=== Deployment {namespace}/{name}: rollout not complete ===",
             f"replicas: desired {deployment.spec.replicas}, updated {status.updated_replicas or 0}, "
             f"ready {status.ready_replicas or 0}, available {status.available_replicas or 0}"]
    for condition in status.conditions or []:
        if condition.status != "True" or condition.type != "Available":
            lines.append(f"condition {condition.type}={condition.status} reason={condition.reason}: "
                         f"{condition.message}")
    for pod in waiting:
        lines.extend(_pod(core, namespace, pod))
    return "\n".join(lines)


def _ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _pod(core, namespace: str, pod) -> list[str]:
    name = pod.metadata.name
    lines = [f"--- pod {name} ({pod.spec.containers[0].image}), phase {pod.status.phase}, not ready ---"]
    for kind, statuses in (("init container", pod.status.init_container_statuses),
                           ("container", pod.status.container_statuses)):
        for status in statuses or []:
            lines.append(f"{kind} {status.name}: {_state(status)}")
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    warnings = [e for e in events if e.type == "Warning"]
    warnings.sort(key=lambda e: (e.last_timestamp or e.event_time or e.metadata.creation_timestamp))
    for event in warnings[-EVENTS:]:
        lines.append(f"event {event.reason} (x{event.count or 1}): {event.message}")
    running = [s.name for s in (pod.status.init_container_statuses or []) if s.state and s.state.running]
    container = running[0] if running else pod.spec.containers[0].name
    try:
        log = core.read_namespaced_pod_log(name, namespace, container=container, tail_lines=LOG_LINES)
    except Exception as exc:  # a container that never started has no log
        log = f"(no log: {getattr(exc, 'reason', exc)})"
    lines.append(f"log of {container} (last {LOG_LINES} lines):")
    lines.extend(f"  {line}" for line in (log or "").rstrip().splitlines())
    return lines


def _state(status) -> str:
    state = status.state
    text = "unknown"
    if state.waiting:
        text = f"waiting, {state.waiting.reason}" + (f": {state.waiting.message}" if state.waiting.message else "")
    elif state.running:
        text = "running" + ("" if status.ready else ", not ready")
    elif state.terminated:
        text = f"terminated, exit code {state.terminated.exit_code} ({state.terminated.reason})"
    last = status.last_state.terminated if status.last_state else None
    if last is not None:
        text += f"; last ended with exit code {last.exit_code} ({last.reason})"
    if status.restart_count:
        text += f"; restarted {status.restart_count} times"
    return text
