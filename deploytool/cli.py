"""Argument handling and the flow: refuse early, write config, run, report."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from dataclasses import dataclass

from typing import Callable, Optional, Sequence, TextIO

from deploytool import cluster, job_report, rollout_report, stack as pulumi_stack
from deploytool.errors import EXIT_OK, DeployError, UsageError
from deploytool.pod_logs import PodLogs

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass
class Tools:
    """What the script talks to; tests replace them."""

    require_cli: Callable[[], None] = pulumi_stack.require_cli
    open_stack: Callable[[str], object] = pulumi_stack.open_stack
    require_reachable: Callable[[Optional[str]], None] = cluster.require_reachable
    kube_clients: Callable[[Optional[str]], tuple] = cluster.clients
    unmanaged_objects: Callable[[str, Optional[str]], list] = cluster.unmanaged_objects
    delete_old_migration_job: Callable[[str, Optional[str]], bool] = cluster.delete_old_migration_job
    hand_over_replicas: Callable[[str, Optional[str]], list] = cluster.hand_replicas_to_their_own_manager
    apps_client: Callable[[Optional[str]], object] = cluster.apps_client


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python deploy.py", description="Preview or deploy a stack: readiness -> migrations -> backend -> frontend.",
        epilog="take-over: the first deploy into a namespace that `make eks-deploy` filled (README, \"Taking over "
        "from make eks-deploy\"). Exit codes: 0 ok, 1 the deploy failed (see the report), 2 usage or a refusal, "
        "75 try again later.")
    parser.add_argument("action", choices=("up", "preview", "take-over"))
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or local")
    parser.add_argument("--backend-tag", help="backend image tag (written to the stack config as backendImageTag)")
    parser.add_argument("--frontend-tag", help="frontend image tag (written as frontendImageTag)")
    parser.add_argument("--refresh", action="store_true", help="refresh the stack's state from the cluster first")
    parser.add_argument("--context", help="kubeconfig context for the cluster checks and the failure report")
    args = parser.parse_args(argv)
    for flag, tag in (("--backend-tag", args.backend_tag), ("--frontend-tag", args.frontend_tag)):
        if tag is not None and not _TAG.match(tag):
            parser.error(f"{flag} {tag!r} is not a valid image tag (letters, digits, '_', '.', '-')")
    return args


def main(argv: Optional[Sequence[str]] = None, tools: Optional[Tools] = None, out: TextIO = sys.stdout,
         err: TextIO = sys.stderr) -> int:
    args = parse_args(argv)
    tools = tools or Tools()
    stack = None
    watching = None
    action = "up" if args.action == "take-over" else args.action
    try:
        tools.require_cli()
        tools.require_reachable(args.context)
        stack = tools.open_stack(args.stack)
        namespace = stack.get_config("namespace").value
        if args.action == "take-over":
            _prepare_take_over(stack, tools, args.context, namespace, out)
        elif action == "up" and not pulumi_stack.manages_resources(stack):
            _refuse_unmanaged(tools, args, namespace)
        written = pulumi_stack.write_tags(stack, args.backend_tag, args.frontend_tag)
        for key, value in written.items():
            print(f"config: {key} = {value}", file=out)
        job_before = _job_uid(tools, args.context, namespace) if action == "up" else None
        stream = lambda line: print(line, end="" if line.endswith("\n") else "\n", file=out, flush=True)  # noqa: E731
        watching = _pod_logs(tools, args.context, namespace) if action == "up" else None
        try:
            with watching or contextlib.nullcontext():
                outcome = pulumi_stack.run(stack, action, args.refresh, on_output=stream)
        finally:
            if args.action == "take-over":
                pulumi_stack.set_take_over(stack, False)
        if args.action == "take-over":
            # The first update of an object that `kubectl apply` made moves kubectl's fields to
            # Pulumi and drops those the program does not set (the old per-key env list): done
            # here, so the namespace is settled when the take-over ends.
            print("completing the take-over: Pulumi takes over the fields kubectl set", file=out)
            pulumi_stack.run(stack, action, False, on_output=stream)
    except DeployError as exc:
        print(f"ERROR: {exc}", file=err)
        if stack is not None and action == "up" and not isinstance(exc, UsageError):
            print(_failure_report(stack, tools, args.context, watching.kept if watching else None), file=err)
        return exc.exit_code
    ran = _migrations_ran(stack, tools, args.context, job_before) if action == "up" else None
    print(summary(action, outcome, ran), file=out)
    if args.action == "take-over":
        print(f"taken over: {namespace} is now managed by stack {args.stack}; use `deploy.py up` from now on", file=out)
    return EXIT_OK


def _refuse_unmanaged(tools: Tools, args, namespace: str) -> None:
    """A first `up` into a namespace the old flow filled would stop on objects that exist:
    say so before anything runs."""
    found = tools.unmanaged_objects(namespace, args.context)
    if found:
        raise UsageError(
            f"namespace {namespace} already holds {', '.join(found)}, created outside Pulumi (by `make eks-deploy`); "
            f"this stack manages nothing yet. Take them over with `python deploy.py take-over --stack {args.stack}` "
            "(README, \"Taking over from make eks-deploy\")"
        )


def _prepare_take_over(stack, tools: Tools, context: Optional[str], namespace: str, out: TextIO) -> None:
    if pulumi_stack.manages_resources(stack):
        raise UsageError(f"stack {stack.name} already manages {namespace}; there is nothing to take over, use `up`")
    if tools.delete_old_migration_job(namespace, context):
        print(f"deleted the old flow's finished Job {namespace}/db-migrations (the new one replaces it)", file=out)
    for name in tools.hand_over_replicas(namespace, context):
        print(f"Deployment {name}: its replica count stays with its autoscaler (field manager "
              f"{cluster.REPLICAS_MANAGER})", file=out)
    pulumi_stack.set_take_over(stack, True)


def _job_uid(tools: Tools, context: Optional[str], namespace: str):
    """The migration Job's identity before the deploy: its uid, None when there is none, or
    the reason it could not be read (then the summary cannot say whether the Job ran)."""
    try:
        batch, _ = tools.kube_clients(context)
        return job_report.job_uid(batch, namespace)
    except job_report.READ_ERRORS as exc:
        return job_report.Unknown(str(exc))


def _migrations_ran(stack, tools: Tools, context: Optional[str], before):
    """What the Job applied in this deploy, None when it did not run, or Unknown (with why)
    when the cluster could not tell: never a guess that it did not run."""
    if isinstance(before, job_report.Unknown):
        return before
    try:
        batch, core = tools.kube_clients(context)
        return job_report.migrations_applied(batch, core, stack.get_config("namespace").value, before)
    except job_report.READ_ERRORS as exc:  # the deploy itself succeeded; say what is not known
        return job_report.Unknown(str(exc))


def _pod_logs(tools: Tools, context: Optional[str], namespace: str) -> Optional[PodLogs]:
    """The Job pods' logs kept while the deploy runs (None: the cluster could not be read, and
    the report will show what is left at the end)."""
    try:
        _, core = tools.kube_clients(context)
    except job_report.READ_ERRORS:
        return None
    return PodLogs(core, namespace)


def _failure_report(stack, tools: Tools, context: Optional[str], kept=None) -> str:
    namespace = stack.get_config("namespace").value
    try:
        batch, core = tools.kube_clients(context)
        jobs = job_report.job_report(batch, core, namespace, kept=kept)
    except Exception as exc:  # the report must not hide the original failure
        return f"(could not collect the Job report: {exc})"
    try:
        rollouts = rollout_report.rollout_report(tools.apps_client(context), core, namespace)
    except Exception as exc:
        rollouts = f"(could not collect the rollout report: {exc})"
    return "\n".join(part for part in (jobs, rollouts) if part)


def summary(action: str, outcome: pulumi_stack.Outcome, ran=None) -> str:
    # `same` and `read` (the objects the stack only reads) change nothing.
    changes = ", ".join(f"{op} {count}" for op, count in sorted(outcome.changes.items())
                        if op not in ("same", "read")) or "no changes"
    if action == "preview":
        return f"preview: {changes}"
    before = {m["name"] for m in outcome.previous_outputs.get("migrations") or []}
    shipped = [m["name"] for m in outcome.outputs.get("migrations") or [] if m["name"] not in before]
    lines = [f"deployed: {changes}"]
    if outcome.outputs.get("migrationsSource") == "image":
        lines.append("the migrations are the ones in the backend image")
    elif shipped:
        lines.append(f"migrations shipped in this deploy ({len(shipped)}): " + ", ".join(shipped))
    else:
        lines.append("no new migrations in this deploy")
    if isinstance(ran, job_report.Unknown):
        lines.append(f"could not tell whether the migration Job ran: {ran.reason}")
    elif ran is not None:
        lines.append(f"the migration Job ran and applied {len(ran)}: " + (", ".join(ran) or "nothing was pending"))
    else:
        lines.append("the migration Job did not run (nothing it depends on changed)")
    for key in ("backendImage", "frontendImage"):
        if key in outcome.outputs:
            lines.append(f"{key}: {outcome.outputs[key]}")
    return "\n".join(lines)
