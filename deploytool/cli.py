"""Argument handling and the flows: refuse early, settle the stack file, run, report.

Every action runs against the cluster the stack names (`kubernetes:context`), and what a
deploy runs is what the stack file says: `up` and `take-over` write the tags (and a first
`--context`) into Pulumi.<stack>.yaml, where a commit records them; `preview` and `migrate`
run on a copy and leave the file as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, TextIO

from kubernetes.client.exceptions import ApiException

from deploytool import cluster as kube, job_report, preflight, rollout_report, runner_job, stack as pulumi_stack, stack_file
from deploytool.cluster import Cluster, Ref
from deploytool.errors import EXIT_OK, DeployError, TransientError, UsageError
from deploytool.pod_logs import PodLogs

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
ACTIONS = ("up", "preview", "take-over", "migrate", "status", "hand-back", "pin")
# What `migrate` updates: the readiness checks and the migration Job, with what they read.
MIGRATE_TARGETS = ("ideaforge:readiness:ReadinessCheck", "ideaforge:migrations:MigrationJob",
                   "ideaforge:credentials:DatabaseCredentials", "ideaforge:prerequisites:Prerequisites")
# Kinds of the objects that serve the app: kept in the cluster when the stack lets go of them.
LIVE_APP_TYPES = {"kubernetes:apps/v1:Deployment": "Deployment", "kubernetes:core/v1:Service": "Service",
                  "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": "HorizontalPodAutoscaler",
                  "kubernetes:networking.k8s.io/v1:Ingress": "Ingress", "kubernetes:core/v1:ConfigMap": "ConfigMap"}


@dataclass
class Tools:
    """What the script talks to; tests replace them."""

    project_dir: Path = pulumi_stack.PROJECT_DIR
    require_cli: Callable[[], None] = pulumi_stack.require_cli
    open_stack: Callable[[str], object] = pulumi_stack.open_stack
    require_reachable: Callable[[Optional[str]], None] = kube.require_reachable
    connect: Callable[[Optional[str]], Cluster] = kube.connect
    current_context: Callable[[], Optional[str]] = kube.current_context
    run_runner: Callable[..., runner_job.RunnerRun] = runner_job.run
    checks: list = field(default_factory=lambda: list(preflight.CHECKS))
    up_checks: list = field(default_factory=lambda: list(preflight.UP_CHECKS))


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python deploy.py",
        description="Preview or deploy a stack: readiness -> migrations -> backend -> frontend.",
        epilog="up: deploy (tags written to the stack file). preview: what up would do; changes nothing. "
        "take-over: the first deploy into a namespace that `make eks-deploy` filled; safe to run again. "
        "migrate: the readiness checks and the migration Job for --backend-tag only; the backend is untouched. "
        "status: the live database's migrations against the image's, read-only. hand-back: the stack lets go "
        "of the namespace, the app keeps running (back to `make eks-deploy`). pin: write the tags to the stack "
        "file, nothing else. Exit codes: 0 ok, 1 the deploy failed (see the report), 2 usage or a refusal, "
        "75 try again later.")
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or local")
    parser.add_argument("--backend-tag", help="backend image tag (backendImageTag in the stack file)")
    parser.add_argument("--frontend-tag", help="frontend image tag (frontendImageTag)")
    parser.add_argument("--refresh", action="store_true", help="refresh the stack's state from the cluster first")
    parser.add_argument("--migrations", metavar="DIR[:DIR...]",
                        help="take-over: the app's migration folders at the tag being deployed (a checkout), for the "
                        "pre-flight's check of the objects each recorded migration creates")
    parser.add_argument("--context", help="kubeconfig context: must be the stack's kubernetes:context when it names "
                        "one; a stack that names none is bound to it by up and take-over")
    args = parser.parse_args(argv)
    for flag, tag in (("--backend-tag", args.backend_tag), ("--frontend-tag", args.frontend_tag)):
        if tag is not None and not _TAG.match(tag):
            parser.error(f"{flag} {tag!r} is not a valid image tag (letters, digits, '_', '.', '-')")
    if args.action == "migrate" and not args.backend_tag:
        parser.error("migrate needs --backend-tag: the image whose migrations run")
    if args.action in ("status", "hand-back") and (args.backend_tag or args.frontend_tag):
        parser.error(f"{args.action} takes no tags")
    if args.migrations and args.action != "take-over":
        parser.error("--migrations is for take-over (its pre-flight)")
    return args


class Run:
    """One invocation: the arguments, the stack file, and where output goes."""

    def __init__(self, args: argparse.Namespace, tools: Tools, out: TextIO, err: TextIO):
        self.args, self.tools, self.out, self.err = args, tools, out, err
        self.path = stack_file.path_of(tools.project_dir, args.stack)
        self.stack = None
        self.state: Optional[pulumi_stack.State] = None  # as read when the stack opened
        self.cluster: Optional[Cluster] = None
        self.context: Optional[str] = None
        self.new_context: dict = {}
        self.watching: Optional[PodLogs] = None

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def stream(self, line: str) -> None:
        print(line, end="" if line.endswith("\n") else "\n", file=self.out, flush=True)

    @property
    def namespace(self) -> str:
        return str(stack_file.project_values(self.path).get("namespace") or "")

    def tags(self) -> dict:
        given = (("backendImageTag", self.args.backend_tag), ("frontendImageTag", self.args.frontend_tag))
        return {f"{stack_file.PROJECT}:{key}": value for key, value in given if value}

    def settings(self):
        return load_settings(self.path)

    def watch_job_pods(self):
        """The chain's Job pods' logs, kept while an update runs (pod_logs.py says why)."""
        if self.cluster is None:
            return contextlib.nullcontext()
        self.watching = PodLogs(self.cluster.core, self.namespace)
        return self.watching


def main(argv: Optional[Sequence[str]] = None, tools: Optional[Tools] = None, out: TextIO = sys.stdout,
         err: TextIO = sys.stderr) -> int:
    args = parse_args(argv)
    run = Run(args, tools or Tools(), out, err)
    try:
        if not run.path.exists():
            raise UsageError(f"{run.path.name} does not exist: every stack has its file in this directory "
                             f"(`pulumi stack init {args.stack}`, then set its namespace and tags)")
        if args.action == "pin":
            return _pin(run)
        _open(run)
        return FLOWS[args.action](run)
    except DeployError as exc:
        print(f"ERROR: {exc}", file=err)
        if run.stack is not None and args.action in ("up", "take-over", "migrate") and not isinstance(exc, UsageError):
            print(_failure_report(run), file=err)
        return exc.exit_code
    except ApiException as exc:  # one of deploy.py's own reads or writes, refused by the cluster
        error = _api_error(exc, run.context)
        print(f"ERROR: {error}", file=err)
        return error.exit_code


def _api_error(exc: ApiException, context: Optional[str]) -> DeployError:
    what = f"the cluster{f' (context {context})' if context else ''} refused a request of deploy.py: " \
           f"{exc.status} {exc.reason}: {_api_message(exc)}"
    if exc.status in (401, 403):
        return UsageError(what + "; the credential in use lacks that permission (README, \"Pull requests and CI\", "
                          "says what each credential may do)")
    if exc.status is None or exc.status >= 500 or exc.status == 429:
        return TransientError(what + "; try again")
    return DeployError(what)


def _api_message(exc: ApiException) -> str:
    import json

    try:
        return json.loads(exc.body).get("message") or ""
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or "").strip()[:300]


def _open(run: Run) -> None:
    """The stack and its state; then the cluster the stack names, reachable. An unreachable
    cluster is refused before anything changes (exit 75), a missing stack before that (exit 2)."""
    named = stack_file.context(run.path)
    given = run.args.context
    if given and named and given != named:
        raise UsageError(f"stack {run.args.stack} deploys to context {named!r} ({stack_file.CONTEXT_KEY} in "
                         f"{run.path.name}), not {given!r}. Checks and Pulumi look at one cluster; to move the stack "
                         f"on purpose: `pulumi config set {stack_file.CONTEXT_KEY} {given}` (its objects stay where "
                         "they are)")
    run.context = given or named
    if given and not named:
        run.new_context = {stack_file.CONTEXT_KEY: given}
    run.tools.require_cli()
    # The stack opens and its state is read with CLI calls (`pulumi version`, `stack select`,
    # `stack export`): the Kubernetes client imports meanwhile, a second of an unchanged `up`
    # otherwise. The Automation API is imported first, here: two threads importing modules
    # they share can deadlock.
    importlib.import_module("pulumi.automation")
    importing = threading.Thread(target=kube.import_client, daemon=True)
    importing.start()
    try:
        stack = run.tools.open_stack(run.args.stack)
        # A preview reads no state: the export decrypts every secret in it.
        state = pulumi_stack.state(stack) if run.args.action != "preview" else None
    finally:
        importing.join()
    run.tools.require_reachable(run.context)
    if run.context:
        run.say(f"cluster: context {run.context}" + ("" if named else " (given with --context)"))
    else:
        current = run.tools.current_context()
        run.say(f"cluster: the kubeconfig's current context{f' {current}' if current else ''}; the stack names none "
                f"(pin it: `pulumi config set {stack_file.CONTEXT_KEY} <context>`)")
    run.cluster = run.tools.connect(run.context)
    run.stack, run.state = stack, state  # from here on, a failed update gets the cluster's report


# -- the flows ------------------------------------------------------------------------------


def _pin(run: Run) -> int:
    changes = run.tags()
    if not changes:
        raise UsageError("pin needs --backend-tag and/or --frontend-tag")
    stack_file.set_values(run.path, changes)
    for key, value in changes.items():
        run.say(f"{run.path.name}: {key.split(':', 1)[1]} = {value}")
    return EXIT_OK


def _preview(run: Run) -> int:
    with stack_file.changed_copy(run.path, {**run.tags(), **run.new_context}) as copy:
        outcome = pulumi_stack.run(run.stack, "preview", run.args.refresh, run.stream, config_file=copy)
    run.say(summary("preview", outcome))
    if copy is not None:
        tried = ", ".join(f"{key.split(':', 1)[1]}={value}" for key, value in {**run.tags(), **run.new_context}.items())
        run.say(f"(previewed with {tried}; {run.path.name} is unchanged)")
    return EXIT_OK


def _up(run: Run) -> int:
    _refuse_old_flow_objects(run, run.state)
    _check_before_update(run)
    _write(run, {**run.tags(), **run.new_context})
    job_before = _job_uid(run)
    with run.watch_job_pods():
        outcome = pulumi_stack.run(run.stack, "up", run.args.refresh, run.stream, before=run.state)
    run.say(summary("up", outcome, _migrations_ran(run, job_before)))
    return EXIT_OK


def _take_over(run: Run) -> int:
    namespace, settings = run.namespace, run.settings()
    before = run.state
    outside = _outside_state(run, settings, before)
    if before.resources:
        if not outside:
            run.say(f"nothing left to take over: every object of the old flow in {namespace} is managed by stack "
                    f"{run.args.stack}; use `deploy.py up`")
            return EXIT_OK
        run.say(f"stack {run.args.stack} already manages part of {namespace}: continuing the take-over "
                f"({', '.join(map(str, outside))} still outside it)")
    changes = {**run.tags(), **run.new_context}

    # 1. What the take-over will do, and the migration Job it will run: a preview, nothing written.
    events: list = []
    with stack_file.changed_copy(run.path, {**changes, f"{stack_file.PROJECT}:takeOver": "true"}) as copy:
        pulumi_stack.run(run.stack, "preview", False, run.stream, config_file=copy, on_event=events.append)
    # An unchanged Job (a take-over run again) may have no event of its own: then the state's.
    template = pulumi_stack.job_template_from_events(events) or \
        runner_job.template_from_state(before.resources)

    # 2. The pre-flight: nothing has changed yet, and nothing will if it fails.
    findings = _preflight(run, settings, template)
    run.say("pre-flight:\n" + "\n".join(map(str, findings)))
    if preflight.failed(findings):
        raise UsageError("the pre-flight found problems (FAIL above); nothing was changed. Fix them and run "
                         f"`deploy.py take-over --stack {run.args.stack}` again")

    # 3. Hand over what `kubectl apply` owned, so the update below is the only one that rolls pods.
    if kube.delete_old_migration_job(run.cluster, namespace):
        run.say(f"deleted the old flow's finished Job {namespace}/db-migrations (the new one replaces it)")
    autoscaled = [w.name for w in (settings.backend, settings.frontend) if w.autoscaling.enabled]
    for name in kube.hand_replicas_to_their_own_manager(run.cluster, namespace, autoscaled):
        run.say(f"Deployment {name}: its replica count stays with its autoscaler (field manager "
                f"{kube.REPLICAS_MANAGER})")
    handed = kube.hand_fields_to_pulumi(run.cluster, take_over_refs(settings, with_config_map=True), namespace)
    if handed:
        run.say(f"handed the fields `kubectl apply` set to Pulumi ({kube.TAKE_OVER_MANAGER}): "
                + ", ".join(map(str, handed)))

    # 4. The update, forcing ownership; then one without the take-over's annotations.
    _write(run, {**changes, f"{stack_file.PROJECT}:takeOver": "true"})
    job_before = _job_uid(run)
    try:
        with run.watch_job_pods():
            # The state read again: the preview and the pre-flight take minutes.
            outcome = pulumi_stack.run(run.stack, "up", run.args.refresh, run.stream)
    finally:
        stack_file.set_values(run.path, {f"{stack_file.PROJECT}:takeOver": None})
    ran = _migrations_ran(run, job_before)
    run.say("completing the take-over: the update without takeOver (metadata only; no pod rolls)")
    pulumi_stack.run(run.stack, "up", False, run.stream, before=before)  # its summary is not shown
    run.say(summary("up", outcome, ran))
    run.say(f"taken over: {namespace} is now managed by stack {run.args.stack}; use `deploy.py up` from now on, and "
            "retire the old flow's eks-* make targets (README, \"Taking over from make eks-deploy\")")
    return EXIT_OK


def _migrate(run: Run) -> int:
    before = run.state
    if not before.resources:
        raise UsageError(f"stack {run.args.stack} has not deployed yet: migrate runs the migration Job of a deployed "
                         "stack (`deploy.py up`, or `deploy.py take-over` in a namespace make eks-deploy filled)")
    jobs = [r["urn"] for r in before.resources if r.get("type") == "kubernetes:batch/v1:Job" and
            any(f"{component}$" in r["urn"] for component in MIGRATE_TARGETS[:2])]
    targets = [f"**{component}**" for component in MIGRATE_TARGETS]
    _check_before_update(run)
    job_before = _job_uid(run)
    with stack_file.changed_copy(run.path, {**run.tags(), **run.new_context}) as copy:
        with run.watch_job_pods():
            outcome = pulumi_stack.run(run.stack, "up", False, run.stream, config_file=copy, targets=targets,
                                       replace=jobs, before=before)
    run.say(summary("migrate", outcome, _migrations_ran(run, job_before)))
    run.say(f"the backend was not touched; `deploy.py up --stack {run.args.stack} --backend-tag "
            f"{run.args.backend_tag}` rolls it out ({run.path.name} is unchanged)")
    return EXIT_OK


def _status(run: Run) -> int:
    template = runner_job.template_from_state(run.state.resources)
    if template is None:
        raise UsageError(f"stack {run.args.stack} has no migration Job in its state yet; deploy it first (the "
                         "take-over's pre-flight shows the status before the first deploy)")
    result = run.tools.run_runner(run.cluster, run.namespace, template, ["status"], purpose="status")
    run.say(f"migration status of {run.namespace}'s database, from Job {result.job} (the migration Job's image and "
            "credentials, a read-only session):")
    run.say(result.log.rstrip())
    if result.exit_code != 0:
        problem = f": {result.problem}" if result.problem else ""
        raise DeployError(f"`runner status` failed in the cluster (exit {result.exit_code}){problem}")
    return EXIT_OK


def _hand_back(run: Run) -> int:
    state = run.state.resources
    if not state:
        raise UsageError(f"stack {run.args.stack} manages nothing; there is nothing to hand back")
    # Objects the stack only reads (`external`: the app ConfigMap and Secrets it checks) are never deleted.
    live = [r for r in state if r.get("type") in LIVE_APP_TYPES and not r.get("external") and _is_app_object(r, run)]
    unsafe = [r for r in live if not r.get("retainOnDelete")]
    if unsafe:
        raise UsageError("these would be deleted, not kept: " + ", ".join(_describe(r) for r in unsafe) +
                         f". Run `deploy.py up --stack {run.args.stack}` once with this version (it records "
                         "retainOnDelete on them), then hand back")
    pulumi_stack.destroy(run.stack, run.stream)
    run.say(f"handed back: {', '.join(_describe(r) for r in live)} stay in {run.namespace}, untouched; stack "
            f"{run.args.stack} manages nothing now. Disable the deploy workflow, then deploy with `make eks-deploy-full` "
            "(README, \"Going back to make eks-deploy\")")
    return EXIT_OK


FLOWS = {"up": _up, "preview": _preview, "take-over": _take_over, "migrate": _migrate, "status": _status,
         "hand-back": _hand_back}


# -- helpers ------------------------------------------------------------------------------------


def load_settings(path: Path):
    """The stack's validated settings, read from its file (the program's own reader)."""
    import json

    from components import settings as program_settings

    values = stack_file.project_values(path)

    class FileSource:
        def get(self, key: str) -> Optional[str]:
            value = values.get(key)
            if value is None:
                return None
            return json.dumps(value) if isinstance(value, (dict, list)) else str(value).lower() \
                if isinstance(value, bool) else str(value)

        def get_secret(self, key: str):
            return "(secret)" if key in values else None

    try:
        return program_settings.load(FileSource())
    except program_settings.SettingsError as exc:
        raise UsageError(str(exc)) from None


def take_over_refs(settings, with_config_map: bool = False) -> list[Ref]:
    """The old flow's objects the stack takes over, by the names the stack gives them."""
    refs = []
    for workload in (settings.backend, settings.frontend):
        refs += [Ref("Deployment", workload.name), Ref("Service", workload.name)]
        if workload.autoscaling.enabled:
            refs.append(Ref("HorizontalPodAutoscaler", f"{workload.name}-hpa"))
    if settings.ingress.enabled:
        refs.append(Ref("Ingress", settings.ingress.name))
    if with_config_map and settings.app.config_map:
        refs.append(Ref("ConfigMap", settings.app.config_map))
    return refs


def _outside_state(run: Run, settings, state: pulumi_stack.State) -> list[Ref]:
    """Objects of the old flow in the namespace that the stack's state does not hold."""
    held = {(LIVE_APP_TYPES.get(r.get("type")), r.get("id")) for r in state.resources}
    namespace = settings.namespace
    return [ref for ref in kube.present(run.cluster, take_over_refs(settings), namespace)
            if (ref.kind, f"{namespace}/{ref.name}") not in held]


def _refuse_old_flow_objects(run: Run, state: pulumi_stack.State) -> None:
    """An `up` over objects that `kubectl apply` made would stop on field conflicts: say so
    before anything runs, whether the take-over never ran or stopped halfway."""
    values = stack_file.project_values(run.path)
    if str(values.get("createNamespace", "")).lower() == "true":
        return  # a namespace the stack creates holds nothing of the old flow
    settings = run.settings()
    outside = _outside_state(run, settings, state)
    if not outside:
        return
    started = bool(state.resources)
    raise UsageError(
        f"namespace {settings.namespace} holds {', '.join(map(str, outside))}, made outside this stack (by `make "
        f"eks-deploy`){'; the take-over stopped before them' if started else ''}. Take them over with "
        f"`python deploy.py take-over --stack {run.args.stack}` (README, \"Taking over from make eks-deploy\")")


def _check_before_update(run: Run) -> None:
    """The cluster reads every update needs first (the Secrets); a FAIL changes nothing."""
    if not run.tools.up_checks:
        return
    values = stack_file.project_values(run.path)
    if str(values.get("createNamespace", "")).lower() == "true":
        return  # nothing can be in a namespace the stack creates

    def no_runner(*args, **kw):
        raise UsageError("these checks do not run the runner")

    findings = preflight.run_checks(preflight.Context(run.cluster, run.settings(), no_runner), run.tools.up_checks)
    failed = [f for f in findings if f.level == preflight.FAIL]
    if failed:
        raise UsageError("before the update: " + "; ".join(f"{f.check}: {f.message}" for f in failed)
                         + ". Nothing was changed")


def _preflight(run: Run, settings, template: Optional[dict]) -> list[preflight.Finding]:
    from components import runner_bundle

    def run_runner(*runner_args: str, env: Optional[dict] = None, files: Optional[dict] = None) -> runner_job.RunnerRun:
        if template is None:
            raise UsageError("the preview computed no migration Job, so the database cannot be checked")
        ships_runner = any(v.get("name") == runner_job.RUNNER_VOLUME for v in
                           template["spec"]["template"]["spec"].get("volumes") or [])
        return run.tools.run_runner(run.cluster, settings.namespace, template, list(runner_args), env=env,
                                    runner_zipapp=runner_bundle.build().data if ships_runner else None,
                                    files=files, purpose="preflight")

    context = preflight.Context(run.cluster, settings, run_runner, _expected_objects(run, settings))
    return preflight.run_checks(context, run.tools.checks)


def _expected_objects(run: Run, settings) -> Optional[str]:
    """The objects each migration creates, from --migrations, or from the checkout folders the
    stack ships (migrations.source configmap); None without either."""
    import json

    from deploytool import expected_objects

    if run.args.migrations:
        folders = [Path(d) for d in run.args.migrations.split(":") if d]
    elif settings.migrations.source == "configmap":
        folders = [run.tools.project_dir / d for d in settings.migrations.dirs]
    else:
        return None
    absent = [str(d) for d in folders if not d.is_dir()]
    if absent:
        raise UsageError(f"--migrations: not a directory: {', '.join(absent)}")
    return json.dumps(expected_objects.expected(expected_objects.read_directories(folders)), sort_keys=True)


def _write(run: Run, changes: dict) -> None:
    if not changes:
        return
    stack_file.set_values(run.path, changes)
    for key, value in changes.items():
        run.say(f"config: {key.split(':', 1)[1] if key.startswith(stack_file.PROJECT) else key} = {value} "
                f"(written to {run.path.name}: commit it, so the repository says what runs)")


def _is_app_object(resource: dict, run: Run) -> bool:
    if LIVE_APP_TYPES[resource["type"]] != "ConfigMap":
        return True
    config_map = (stack_file.project_values(run.path).get("app") or {}).get("configMap", "ideaforge-ai-config")
    return resource.get("id", "").endswith(f"/{config_map}")


def _describe(resource: dict) -> str:
    return f"{LIVE_APP_TYPES.get(resource.get('type'), resource.get('type'))} {resource.get('id', '').split('/')[-1]}"


def _job_uid(run: Run):
    """The migration Job's identity before the update: its uid, None when there is none, or
    Unknown (with why) when the cluster could not be read."""
    try:
        return job_report.job_uid(run.cluster.batch, run.namespace)
    except job_report.READ_ERRORS as exc:
        return job_report.Unknown(str(exc))


def _migrations_ran(run: Run, before):
    """What the Job applied in this update, None when it did not run, or Unknown (with why)
    when the cluster could not tell: never a guess that it did not run."""
    if isinstance(before, job_report.Unknown):
        return before
    try:
        return job_report.migrations_applied(run.cluster.batch, run.cluster.core, run.namespace, before)
    except job_report.READ_ERRORS as exc:  # the update itself succeeded; say what is not known
        return job_report.Unknown(str(exc))


def _failure_report(run: Run) -> str:
    kept = run.watching.kept if run.watching else None
    try:
        jobs = job_report.job_report(run.cluster.batch, run.cluster.core, run.namespace, kept=kept)
    except Exception as exc:  # the report must not hide the original failure
        jobs = f"(could not collect the Job report: {exc})"
    try:
        rollouts = rollout_report.rollout_report(run.cluster.apps, run.cluster.core, run.namespace)
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
    lines = [f"{'migrated' if action == 'migrate' else 'deployed'}: {changes}"]
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
    if action != "migrate":
        for key in ("backendImage", "frontendImage"):
            if key in outcome.outputs:
                lines.append(f"{key}: {outcome.outputs[key]}")
    return "\n".join(lines)

