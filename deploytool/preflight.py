"""The take-over's pre-flight: what the first deploy into the old flow's namespace will meet,
read before anything changes. Each check reads the cluster (and, through a one-off read-only
runner Job, the live database) and returns findings; one `fail` stops the take-over.

CHECKS is the list the take-over runs, in order; UP_CHECKS, the cluster reads every `up` and
`migrate` runs first (the Secrets, which the program does not read with readSecrets false). A check is a function of a Context; add one
by appending it. Checks that need the live database run the runner in the cluster with
`context.run_runner(...)` (the migration Job's image, credentials and migrations).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Optional

from components.settings import Settings, secret_keys_read
from deploytool import cluster as kube
from deploytool.cluster import Cluster, Ref
from deploytool.runner_job import FILES_MOUNT, RunnerRun

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # OK, WARN or FAIL
    message: str

    def __str__(self) -> str:
        return f"  [{self.level}] {self.check}: {self.message}"


@dataclass
class Context:
    cluster: Cluster
    settings: Settings
    # Runs the runner in the cluster with these arguments (and extra environment, and files it
    # finds at runner_job.FILES_MOUNT), read-only: run_runner(*args, env=..., files=...).
    run_runner: Callable[..., RunnerRun]
    # What each migration creates (deploytool.expected_objects), from the migration folders of
    # the tag being deployed, as JSON; None when deploy.py was not given them.
    expected_objects: Optional[str] = None
    notes: dict = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.settings.namespace


Check = Callable[[Context], list[Finding]]


def database_history(ctx: Context) -> list[Finding]:
    """`runner status` against the live database, with the migrations the new Job will run."""
    run = ctx.run_runner("status", env={"MIGRATION_LOG_FORMAT": "json"})
    events = _events(run.log)
    if run.exit_code != 0:
        failed = next((e for e in events if e.get("event") == "failed"), None)
        reason = (failed or {}).get("message") or run.problem or _tail(run.log)
        hint = f" ({failed['hint']})" if failed and failed.get("hint") else ""
        return [Finding("database", FAIL, f"`runner status` in the cluster failed (Job {run.job}, exit "
                        f"{run.exit_code}): {reason}{hint}")]
    states: dict[str, list[str]] = {}
    for event in events:
        if event.get("event") == "migration_state":
            states.setdefault(event["state"], []).append(event["migration"])
    ctx.notes["migration_states"] = states
    findings = [Finding("database", OK, f"{len(states.get('applied', []))} migrations recorded as applied")]
    if states.get("pending"):
        findings.append(Finding("database", OK, f"the take-over's migration Job will apply {len(states['pending'])}: "
                                + ", ".join(states["pending"])))
    for state, level, what in (("changed", FAIL, "changed since they were applied (the Job would stop on drift; "
                                "restore them, or accept with `runner --accept-changed`)"),
                               ("renamed", FAIL, "renamed (record it with `runner rename OLD NEW`)"),
                               ("incomplete", FAIL, "incomplete no-transaction migrations (`runner resolve`)"),
                               ("missing", WARN, "recorded as applied but not in the image")):
        if states.get(state):
            findings.append(Finding("database", level, f"{len(states[state])} {what}: " + ", ".join(states[state])))
    return findings


def recorded_objects(ctx: Context) -> list[Finding]:
    """The objects each recorded migration creates, looked up in the live database (`runner
    verify`): the old flow recorded files of which nothing ran. Listed file by file; a warning,
    as the take-over changes nothing of it (README, "The take-over check")."""
    if ctx.expected_objects is None:
        return [Finding("recorded objects", WARN, "not checked: give the app's migration folders at the tag being "
                        "deployed, `deploy.py take-over --migrations ../ideaforge-ai/init-db/migrations:"
                        "../ideaforge-ai/supabase/migrations`")]
    run = ctx.run_runner("verify", f"{FILES_MOUNT}/expected.json", env={"MIGRATION_LOG_FORMAT": "json"},
                         files={"expected.json": ctx.expected_objects})
    events = _events(run.log)
    missing = [e for e in events if e.get("event") == "objects_missing"]
    if run.exit_code == 0:
        summary = next((e.get("message") for e in events if e.get("event") == "summary"), "")
        return [Finding("recorded objects", OK, summary or "every recorded migration's objects are in the database")]
    if not missing:
        failed = next((e.get("message") for e in events if e.get("event") == "failed"), None)
        return [Finding("recorded objects", FAIL, f"`runner verify` in the cluster failed (Job {run.job}, exit "
                        f"{run.exit_code}): {failed or run.problem or _tail(run.log)}")]
    findings = [Finding("recorded objects", WARN, f"{e['migration']} is recorded, and {len(e['objects'])} of its "
                        "objects are not in the database: " + ", ".join(map(str, e["objects"]))) for e in missing]
    findings.append(Finding("recorded objects", WARN, "apply such a file again with `python -m runner reapply FILE` "
                            "where the database is reachable (it runs in one transaction with its record), or restore "
                            "the objects by hand (README, \"The take-over check\")"))
    return findings


def autoscalers(ctx: Context) -> list[Finding]:
    """The live HPAs: present, scaling the Deployment, and what the stack changes in them."""
    findings = []
    for workload in (ctx.settings.backend, ctx.settings.frontend):
        name = f"{workload.name}-hpa"
        live = kube.read(ctx.cluster, Ref("HorizontalPodAutoscaler", name), ctx.namespace)
        deployment = kube.read(ctx.cluster, Ref("Deployment", workload.name), ctx.namespace)
        replicas = deployment.spec.replicas if deployment is not None else None
        scaling = workload.autoscaling
        if live is None:
            if scaling.enabled:
                findings.append(Finding(name, OK, f"not in the namespace; the stack creates it ({scaling.min}.."
                                        f"{scaling.max} replicas)"))
            continue
        target = live.spec.scale_target_ref
        if (target.kind, target.name) != ("Deployment", workload.name):
            findings.append(Finding(name, FAIL, f"scales {target.kind} {target.name}, not Deployment "
                                    f"{workload.name}; the stack would take it over for {workload.name}"))
            continue
        if not scaling.enabled:
            findings.append(Finding(name, FAIL, f"the live autoscaler scales {workload.name}, and the stack has "
                                    f"{workload.name}.autoscaling.enabled false: both would set the replica count. "
                                    f"Enable it (`pulumi config set --path {workload.name}.autoscaling.enabled true`) "
                                    f"or delete the autoscaler"))
            continue
        now = f"{live.spec.min_replicas}..{live.spec.max_replicas}"
        wanted = f"{scaling.min}..{scaling.max}"
        level, change = (OK, f"keeps {now}") if now == wanted else (WARN, f"changes {now} to {wanted}")
        findings.append(Finding(name, level, f"{change} replicas; the Deployment runs {replicas} now and keeps that "
                                "count through the take-over"))
    return findings


def app_secret(ctx: Context) -> list[Finding]:
    """The app Secret exists and holds every key a workload or a Job cannot start without
    (settings.secret_keys_read, the list the program checks itself when it reads Secrets). Only
    key names are compared or printed."""
    name = ctx.settings.app.secret
    if not name:
        return []
    live = kube.read(ctx.cluster, Ref("Secret", name), ctx.namespace)
    if live is None:
        return [Finding(f"Secret {name}", FAIL, f"not in {ctx.namespace}; load it first (`make eks-load-secrets`), "
                        "or set app.secret")]
    keys = set(live.data or {})
    missing = {key: readers for key, readers in secret_keys_read(ctx.settings).items() if key not in keys}
    if missing:
        named = ", ".join(f"{key} ({' and '.join(dict.fromkeys(readers))})" for key, readers in missing.items())
        return [Finding(f"Secret {name}", FAIL, f"has no key {named}, which the pods cannot start without; add them "
                        "to the Secret (`make eks-load-secrets` from env.eks), or make the variable optional "
                        f"(`pulumi config set --path backend.env.NAME \"secret optional\"`); it has {len(keys)} "
                        "other keys")]
    return [Finding(f"Secret {name}", OK, f"present, {len(keys)} keys")]


def pull_secret(ctx: Context) -> list[Finding]:
    """The image pull Secret exists (without it no new pod starts)."""
    name = ctx.settings.images.pull_secret
    if not name:
        return []
    if kube.read(ctx.cluster, Ref("Secret", name), ctx.namespace) is None:
        return [Finding(f"Secret {name}", FAIL, f"not in {ctx.namespace}: no new pod could pull its image "
                        "(`make eks-setup-ghcr-secret`), or set imagePullSecret")]
    return [Finding(f"Secret {name}", OK, "present")]


def ingresses(ctx: Context) -> list[Finding]:
    """The stack's Ingress against the live ones: two Ingresses serving the same host through
    two load balancers would both claim its DNS name."""
    wanted = ctx.settings.ingress
    if not wanted.enabled:
        return []
    hosts = set(wanted.hosts)
    findings = []
    for live in ctx.cluster.networking.list_namespaced_ingress(ctx.namespace).items:
        name = live.metadata.name
        live_class = live.spec.ingress_class_name or (live.metadata.annotations or {}).get(
            "kubernetes.io/ingress.class", "")
        addresses = [a.hostname or a.ip for a in ((live.status.load_balancer or None) and
                                                  live.status.load_balancer.ingress) or []]
        live_hosts = {rule.host for rule in live.spec.rules or [] if rule.host}
        if name == wanted.name:
            stack_class = wanted.class_name or wanted.annotations.get("kubernetes.io/ingress.class", "")
            level = OK if stack_class == live_class else WARN
            findings.append(Finding(f"Ingress {name}", level, f"taken over (class {live_class or 'none'}"
                                    + ("" if level == OK else f", becomes {stack_class or 'none'}")
                                    + f"; address {', '.join(addresses) or 'none'})"))
            continue
        shared = sorted(hosts & live_hosts)
        if not shared:
            continue
        if addresses:
            findings.append(Finding(f"Ingress {name}", FAIL, f"serves {', '.join(shared)} at {', '.join(addresses)} "
                                    f"(class {live_class or 'none'}); the stack's Ingress {wanted.name} would claim "
                                    "the same hosts through another load balancer. Set ingress.name (and its class) "
                                    "to the live one's"))
        else:
            findings.append(Finding(f"Ingress {name}", WARN, f"also routes {', '.join(shared)} (class "
                                    f"{live_class or 'none'}, no address); it is not the stack's: delete it when you "
                                    "retire the old flow"))
    return findings


CHECKS: list[Check] = [database_history, recorded_objects, autoscalers, app_secret, pull_secret, ingresses]
# Before every update that deploy.py runs: what the program may not read itself (readSecrets false).
UP_CHECKS: list[Check] = [app_secret, pull_secret]


def run_checks(ctx: Context, checks: Optional[list[Check]] = None) -> list[Finding]:
    findings = []
    for check in checks if checks is not None else CHECKS:
        findings.extend(check(ctx))
    return findings


def failed(findings: list[Finding]) -> bool:
    return any(f.level == FAIL for f in findings)


def _events(log: str) -> list[dict]:
    events = []
    for line in log.splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def _tail(log: str, lines: int = 5) -> str:
    return " | ".join(log.strip().splitlines()[-lines:]) or "no output"
