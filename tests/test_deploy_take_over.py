"""deploy.py's flows beyond `up`: the take-over (pre-flight, hand-over, re-entrant), migrate,
status and hand-back, and the pieces they are made of (stand-ins: tests/deploy_fakes.py; the
same flows on a real control plane: tests/e2e)."""

import json
from types import SimpleNamespace

import pytest
import yaml
from pulumi.automation import CommandError
from pulumi.automation._cmd import CommandResult

from components.security import TAKE_OVER_MANAGER
from deploytool import cli, cluster, preflight, runner_job
from deploytool.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from deploytool.runner_job import RunnerRun
from tests.deploy_fakes import (STACK_FILE, app_secret, FakeCluster, FakeStack, Harness, deployment, hpa, ingress, job_state,
                                old_flow, secret, state_of)

EVERYTHING = (("Deployment", "backend"), ("Deployment", "frontend"), ("Service", "backend"), ("Service", "frontend"),
              ("HorizontalPodAutoscaler", "backend-hpa"), ("HorizontalPodAutoscaler", "frontend-hpa"),
              ("Ingress", "ideaforge-ai-ingress-nginx"))


@pytest.fixture
def project(tmp_path):
    return Harness(tmp_path)


def failing_up(project, on_up=1):
    return FakeStack(project.project, fail_on_up=on_up,
                     fail_with=CommandError(CommandResult(stdout="", stderr="Ingress failed", code=255)))


def ups(stack):
    return [c for c in stack.calls if c[0] == "up"]


APP_HOST = ("  ideaforge-ai:ingress:\n    rules:\n      - host: app.example.com\n        paths:\n"
            "          - {path: /, pathType: Prefix, service: frontend}\n")


# -- the take-over ------------------------------------------------------------------------------


def test_an_up_into_the_old_flows_namespace_is_refused_with_the_take_over_command(project):
    result = project.run(["up", "--stack", "dev", "--backend-tag", "25a0b1c"], cluster=FakeCluster(old_flow()))
    assert result.code == EXIT_USAGE
    assert "namespace ns-dev holds Deployment backend, Service backend, HorizontalPodAutoscaler backend-hpa" in result.err
    assert "python deploy.py take-over --stack dev" in result.err
    assert ups(result.stack) == [] and project.stack_text() == STACK_FILE


def test_an_up_after_a_take_over_that_stopped_halfway_is_refused_too(project):
    halfway = FakeStack(project.project, state=state_of(*EVERYTHING[:4]))
    result = project.run(["up", "--stack", "dev"], stack=halfway, cluster=FakeCluster(old_flow()))
    assert result.code == EXIT_USAGE
    assert "HorizontalPodAutoscaler backend-hpa" in result.err and "Deployment backend" not in result.err
    assert "the take-over stopped before them" in result.err


def test_take_over_previews_checks_hands_over_then_updates_twice(project):
    calls = []
    result = project.run(["take-over", "--stack", "dev", "--backend-tag", "25a0b1c"], cluster=FakeCluster(old_flow()),
                         checks=[lambda ctx: calls.append("pre-flight") or [preflight.Finding("x", "ok", "fine")]])
    assert result.code == EXIT_OK, result.err
    stack = result.stack
    assert [c[0] for c in stack.calls] == ["preview", "up", "up"]
    preview, first, second = stack.calls
    assert config_of(preview)["ideaforge-ai:takeOver"] == "true" and preview[2] is not None  # a copy
    assert config_of(first)["ideaforge-ai:takeOver"] == "true"
    assert config_of(first)["ideaforge-ai:backendImageTag"] == "25a0b1c"
    assert "ideaforge-ai:takeOver" not in config_of(second)
    assert calls == ["pre-flight"]
    patched = [(c[1], c[2]) for c in result.cluster.calls if c[0] == "patch"]
    assert ("Deployment", "backend") in patched  # replicas handed over, then kubectl's fields
    assert "ideaforge-ai:takeOver" not in project.stack_text()
    assert "taken over: ns-dev is now managed by stack dev" in result.out and "eks-* make targets" in result.out


def test_a_failed_pre_flight_changes_nothing(project):
    objects = old_flow()
    result = project.run(["take-over", "--stack", "dev", "--backend-tag", "25a0b1c"], cluster=FakeCluster(objects),
                         checks=[lambda ctx: [preflight.Finding("database", preflight.FAIL, "2 changed")]])
    assert result.code == EXIT_USAGE
    assert "[FAIL] database: 2 changed" in result.out and "nothing was changed" in result.err
    assert [c[0] for c in result.stack.calls] == ["preview"]
    assert result.cluster.calls == [] and project.stack_text() == STACK_FILE


def test_a_take_over_that_stopped_halfway_continues_when_run_again(project):
    cluster_ = FakeCluster(old_flow())
    first = project.run(["take-over", "--stack", "dev"], stack=failing_up(project), cluster=cluster_)
    assert first.code == EXIT_FAILED
    assert "ideaforge-ai:takeOver" not in project.stack_text()  # the file says what it said before
    halfway = FakeStack(project.project, state=state_of(*EVERYTHING[:6]))
    again = project.run(["take-over", "--stack", "dev"], stack=halfway, cluster=cluster_)
    assert again.code == EXIT_OK, again.err
    assert "continuing the take-over (Ingress ideaforge-ai-ingress-nginx still outside it)" in again.out
    assert [c[0] for c in halfway.calls] == ["preview", "up", "up"]


def test_a_finished_take_over_run_again_changes_nothing(project):
    done = FakeStack(project.project, state=state_of(*EVERYTHING))
    result = project.run(["take-over", "--stack", "dev"], stack=done, cluster=FakeCluster(old_flow()))
    assert result.code == EXIT_OK
    assert "nothing left to take over" in result.out and done.calls == []


def test_the_old_flows_running_job_stops_the_take_over_before_any_update(project):
    running = SimpleNamespace(metadata=SimpleNamespace(labels={"app": "db-migration"}),
                              status=SimpleNamespace(active=1))
    result = project.run(["take-over", "--stack", "dev"], cluster=FakeCluster(old_flow({("Job", "db-migrations"): running})))
    assert result.code == 75 and "still running" in result.err
    assert ups(result.stack) == []


def config_of(call):
    return call[1]


# -- handing kubectl's fields over -------------------------------------------------------------


def test_kubectls_fields_go_to_the_take_over_manager_and_others_stay():
    entries = [
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1", "time": "t1",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:env": {}}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "subresource": "status",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
        {"manager": "pulumi-kubernetes-3f1a", "operation": "Apply", "apiVersion": "apps/v1", "time": "t2",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}},
    ]
    merged = cluster.merged_managers(entries)
    assert [e["manager"] for e in merged] == ["kube-controller-manager", TAKE_OVER_MANAGER]
    ours = merged[-1]
    assert ours["operation"] == "Apply"
    assert ours["fieldsV1"] == {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:env": {}}}},
                                "f:metadata": {"f:labels": {}}}


def test_nothing_is_patched_when_kubectl_owns_nothing():
    assert cluster.merged_managers([{"manager": TAKE_OVER_MANAGER, "operation": "Apply", "fieldsV1": {}}]) is None


def test_the_hand_over_patches_only_the_version_it_read():
    fake = FakeCluster({("Deployment", "backend"): deployment(
        "backend", 5, [("kubectl-client-side-apply", "Update", {"f:spec": {}})])})
    assert cluster.hand_fields_to_pulumi(fake, [cluster.Ref("Deployment", "backend"), cluster.Ref("Service", "x")],
                                         "ns") == [cluster.Ref("Deployment", "backend")]
    (_, kind, name, patch, options), = fake.calls
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert patch[1]["path"] == "/metadata/managedFields" and options["_content_type"] == "application/json-patch+json"


# -- the pre-flight checks ---------------------------------------------------------------------


def settings_of(text=STACK_FILE, tmp_path=None):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    return cli.load_settings(path)


def context(tmp_path, objects, log="", exit_code=0, text=STACK_FILE):
    runs = []

    def run_runner(*args, env=None, files=None):
        runs.append((args, env))
        return RunnerRun("db-migrations-preflight-1", exit_code, log)

    return preflight.Context(FakeCluster(objects), settings_of(text, tmp_path), run_runner), runs


def state_events(**states):
    return "\n".join(json.dumps({"event": "migration_state", "migration": name, "state": state})
                     for state, names in states.items() for name in names)


def test_the_database_check_reads_the_live_history_with_runner_status(tmp_path):
    ctx, runs = context(tmp_path, {}, state_events(applied=["001_a.sql", "002_b.sql"], pending=["003_c.sql"]))
    findings = preflight.database_history(ctx)
    assert runs == [(("status",), {"MIGRATION_LOG_FORMAT": "json"})]
    assert [str(f) for f in findings] == [
        "  [ok] database: 2 migrations recorded as applied",
        "  [ok] database: the take-over's migration Job will apply 1: 003_c.sql"]


def test_changed_migrations_fail_the_pre_flight(tmp_path):
    ctx, _ = context(tmp_path, {}, state_events(applied=["001_a.sql"], changed=["002_b.sql"]))
    assert [f.level for f in preflight.database_history(ctx)] == ["ok", "FAIL"]


def test_a_database_the_runner_cannot_read_fails_the_pre_flight_with_its_reason(tmp_path):
    failed = json.dumps({"event": "failed", "message": "refused the connection: password authentication failed",
                         "hint": "check the app Secret"})
    ctx, _ = context(tmp_path, {}, failed, exit_code=2)
    (finding,) = preflight.database_history(ctx)
    assert finding.level == "FAIL"
    assert "password authentication failed (check the app Secret)" in finding.message


def test_a_live_autoscaler_whose_range_the_stack_changes_is_a_warning(tmp_path):
    objects = {("Deployment", "backend"): deployment("backend", 7), ("HorizontalPodAutoscaler", "backend-hpa"):
               hpa("backend", 3, 30)}
    ctx, _ = context(tmp_path, objects)
    findings = {f.check: f for f in preflight.autoscalers(ctx)}
    assert findings["backend-hpa"].level == "warn"
    assert "changes 3..30 to 5..20 replicas; the Deployment runs 7 now" in findings["backend-hpa"].message
    assert findings["frontend-hpa"].message.startswith("not in the namespace; the stack creates it")


def test_a_live_autoscaler_with_autoscaling_off_in_the_stack_fails(tmp_path):
    text = STACK_FILE + "  ideaforge-ai:backend:\n    autoscaling:\n      enabled: false\n"
    ctx, _ = context(tmp_path, {("HorizontalPodAutoscaler", "backend-hpa"): hpa("backend", 5, 20)}, text=text)
    assert [f.level for f in preflight.autoscalers(ctx) if f.check == "backend-hpa"] == ["FAIL"]


def test_an_app_secret_without_the_password_key_fails(tmp_path):
    ctx, _ = context(tmp_path, {("Secret", "ideaforge-ai-secrets"): app_secret(without=("POSTGRES_PASSWORD",))})
    (finding,) = preflight.app_secret(ctx)
    assert finding.level == "FAIL" and "has no key POSTGRES_PASSWORD (backend and the Jobs)" in finding.message


def test_an_app_secret_without_a_key_the_backend_cannot_start_without_fails_naming_only_the_key(tmp_path):
    # dev reads no Secret at preview (readSecrets false): this check before each update is what
    # stops a deploy whose pods would fall back to a public default session secret.
    ctx, _ = context(tmp_path, {("Secret", "ideaforge-ai-secrets"): app_secret(without=("SESSION_SECRET",))})
    (finding,) = preflight.app_secret(ctx)
    assert finding.level == "FAIL" and "has no key SESSION_SECRET (backend)" in finding.message
    assert "eA==" not in finding.message


def test_an_app_secret_without_an_optional_key_passes(tmp_path):
    ctx, _ = context(tmp_path, {("Secret", "ideaforge-ai-secrets"): app_secret(without=("GITHUB_TOKEN",))})
    assert [f.level for f in preflight.app_secret(ctx)] == ["ok"]


def test_a_missing_app_secret_fails(tmp_path):
    ctx, _ = context(tmp_path, {})
    assert [f.level for f in preflight.app_secret(ctx)] == ["FAIL"]


def test_another_ingress_serving_the_stacks_hosts_through_a_load_balancer_fails(tmp_path):
    text = STACK_FILE + APP_HOST
    live = ingress("ideaforge-ai-ingress", ["app.example.com"], "alb", address="lb.example.net")
    ctx, _ = context(tmp_path, {("Ingress", "ideaforge-ai-ingress"): live}, text=text)
    (finding,) = preflight.ingresses(ctx)
    assert finding.level == "FAIL" and "serves app.example.com at lb.example.net" in finding.message


def test_another_ingress_without_an_address_is_a_warning(tmp_path):
    text = STACK_FILE + APP_HOST
    live = ingress("old-alb", ["app.example.com"], "alb")
    ctx, _ = context(tmp_path, {("Ingress", "old-alb"): live}, text=text)
    assert [f.level for f in preflight.ingresses(ctx)] == ["warn"]


# -- the one-off runner Job ------------------------------------------------------------------


def test_the_status_job_is_the_migration_jobs_pod_with_a_read_only_session():
    manifest = runner_job.job_manifest(job_state()["inputs"], "db-migrations-status-1", ["status"], {},
                                       runner_config_map="db-migrations-status-1-runner")
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "-c", "launch", "/r.pyz", "abc", "status"]
    assert container["image"] == "ghcr.io/soumantrivedi/ideaforge-ai/backend:24f45fd"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PGOPTIONS"] == "-c default_transaction_read_only=on" and env["MIGRATIONS_DIR"] == "/app/migrations"
    assert pod["volumes"] == [{"name": "runner", "configMap": {"name": "db-migrations-status-1-runner"}}]
    assert manifest["metadata"]["labels"]["app"] != "db-migration" and manifest["spec"]["backoffLimit"] == 0


def test_status_runs_in_the_cluster_from_the_deployed_job_and_prints_the_runners_report(project):
    seen = []

    def run_runner(kube, namespace, template, args, **kw):
        seen.append((namespace, template["spec"]["template"]["spec"]["containers"][0]["image"], args))
        return RunnerRun("db-migrations-status-1", 0, "applied 001_a.sql\npending 002_b.sql\n")

    result = project.run(["status", "--stack", "dev"], stack=FakeStack(project.project, state=[job_state()]),
                         run_runner=run_runner)
    assert result.code == EXIT_OK, result.err
    assert seen == [("ns-dev", "ghcr.io/soumantrivedi/ideaforge-ai/backend:24f45fd", ["status"])]
    assert "pending 002_b.sql" in result.out and "read-only session" in result.out
    assert result.stack.calls == []


def test_status_of_a_stack_that_never_deployed_is_refused(project):
    result = project.run(["status", "--stack", "dev"])
    assert result.code == EXIT_USAGE and "no migration Job in its state yet" in result.err


def test_a_failed_status_run_exits_1_with_its_log(project):
    result = project.run(["status", "--stack", "dev"], stack=FakeStack(project.project, state=[job_state()]),
                         run_runner=lambda *a, **k: RunnerRun("j", 2, "ERROR: refused the connection\n"))
    assert result.code == EXIT_FAILED and "ERROR: refused the connection" in result.out


# -- migrate ---------------------------------------------------------------------------------


def test_migrate_updates_only_the_readiness_checks_and_the_migration_job_for_that_tag(project):
    state = [job_state(), *state_of(("Deployment", "backend"))]
    result = project.run(["migrate", "--stack", "dev", "--backend-tag", "25a0b1c"],
                         stack=FakeStack(project.project, state=state))
    assert result.code == EXIT_OK, result.err
    (up,) = ups(result.stack)
    _, config, config_file, targets, replace, _ = up
    assert config["ideaforge-ai:backendImageTag"] == "25a0b1c" and config_file is not None
    assert targets == ["**ideaforge:readiness:ReadinessCheck**", "**ideaforge:migrations:MigrationJob**",
                       "**ideaforge:credentials:DatabaseCredentials**", "**ideaforge:prerequisites:Prerequisites**"]
    assert replace == [job_state()["urn"]]
    assert project.stack_text() == STACK_FILE
    assert "migrated: replace 1, update 1" in result.out and "the backend was not touched" in result.out


def test_migrate_needs_a_tag_and_a_deployed_stack(project):
    with pytest.raises(SystemExit):
        cli.parse_args(["migrate", "--stack", "dev"])
    result = project.run(["migrate", "--stack", "dev", "--backend-tag", "25a0b1c"])
    assert result.code == EXIT_USAGE and "has not deployed yet" in result.err


# -- hand-back -----------------------------------------------------------------------------------


def test_hand_back_lets_go_of_the_namespace_keeping_what_serves_the_app(project):
    read = {"type": "kubernetes:core/v1:ConfigMap", "id": "ns-dev/ideaforge-ai-config", "external": True,
            "urn": "urn:pulumi:dev::ideaforge-ai::x$kubernetes:core/v1:ConfigMap::existing-configmap"}
    stack = FakeStack(project.project, state=state_of(*EVERYTHING) + [job_state(), read])
    result = project.run(["hand-back", "--stack", "dev"], stack=stack)
    assert result.code == EXIT_OK, result.err
    assert stack.calls == [("destroy",)]
    assert "handed back: Deployment backend, Deployment frontend" in result.out


def test_hand_back_refuses_a_state_that_would_delete_the_live_app(project):
    stack = FakeStack(project.project, state=state_of(*EVERYTHING[:2]) + state_of(("Service", "backend"), retain=False))
    result = project.run(["hand-back", "--stack", "dev"], stack=stack)
    assert result.code == EXIT_USAGE
    assert "these would be deleted, not kept: Service backend" in result.err and stack.calls == []


def test_an_up_without_the_app_secret_is_refused_before_anything_changes(project):
    result = project.run(["up", "--stack", "dev", "--backend-tag", "25a0b1c"], up_checks=list(preflight.UP_CHECKS),
                         cluster=FakeCluster({("Secret", "ghcr-secret"): secret("ghcr-secret", [".dockerconfigjson"])}))
    assert result.code == EXIT_USAGE
    assert "before the update: Secret ideaforge-ai-secrets: not in ns-dev" in result.err
    assert ups(result.stack) == [] and project.stack_text() == STACK_FILE


def test_an_up_with_its_secrets_in_place_goes_ahead(project):
    objects = {("Secret", "ghcr-secret"): secret("ghcr-secret", [".dockerconfigjson"]),
               ("Secret", "ideaforge-ai-secrets"): app_secret()}
    result = project.run(["up", "--stack", "dev"], up_checks=list(preflight.UP_CHECKS), cluster=FakeCluster(objects))
    assert result.code == EXIT_OK, result.err


def test_an_up_whose_secret_lacks_a_required_key_is_refused_before_anything_changes(project):
    objects = {("Secret", "ghcr-secret"): secret("ghcr-secret", [".dockerconfigjson"]),
               ("Secret", "ideaforge-ai-secrets"): app_secret(without=("API_KEY_ENCRYPTION_KEY",))}
    result = project.run(["up", "--stack", "dev"], up_checks=list(preflight.UP_CHECKS), cluster=FakeCluster(objects))
    assert result.code == EXIT_USAGE
    assert "has no key API_KEY_ENCRYPTION_KEY (backend)" in result.err
    assert ups(result.stack) == []


def test_the_take_over_refs_follow_the_stacks_names(tmp_path):
    text = STACK_FILE + "  ideaforge-ai:ingress:\n    name: ideaforge-ai-ingress-nginx\n"
    refs = cli.take_over_refs(settings_of(text, tmp_path), with_config_map=True)
    assert cluster.Ref("Ingress", "ideaforge-ai-ingress-nginx") in refs
    assert cluster.Ref("ConfigMap", "ideaforge-ai-config") in refs
    assert yaml.safe_load(text)  # the stack file parses


def test_a_read_the_credential_may_not_make_is_a_clear_refusal(project):
    from kubernetes.client.exceptions import ApiException

    class Forbidding(FakeCluster):
        def read_namespaced_secret(self, name, namespace):
            raise ApiException(status=403, reason="Forbidden")

    result = project.run(["up", "--stack", "dev"], up_checks=list(preflight.UP_CHECKS), cluster=Forbidding())
    assert result.code == EXIT_USAGE
    assert "refused a request of deploy.py: 403 Forbidden" in result.err and "lacks that permission" in result.err
    assert ups(result.stack) == []


def test_the_take_over_finds_the_migration_job_among_the_previews_engine_events():
    from pulumi.automation.events import EngineEvent

    def pre(type_, name, op="create"):
        return EngineEvent.from_json({"sequence": 1, "timestamp": 1, "resourcePreEvent": {"metadata": {
            "op": op, "urn": f"urn:pulumi:dev::ideaforge-ai::{type_}::{name}", "type": type_, "provider": "",
            "new": {"type": type_, "urn": f"urn:x::{name}", "custom": True, "id": "", "parent": "", "provider": "",
                    "inputs": {"metadata": {"name": name}, "spec": {"template": {"spec": {"containers": []}}}},
                    "outputs": {}}}}})

    events = [pre("kubernetes:apps/v1:Deployment", "backend"), pre("kubernetes:batch/v1:Job", "wait-for-postgres"),
              pre("kubernetes:batch/v1:Job", "db-migrations", op="replace")]
    from deploytool import stack as pulumi_stack
    assert pulumi_stack.job_template_from_events(events)["metadata"] == {"name": "db-migrations"}
    assert pulumi_stack.job_template_from_events(events[:2]) is None


def test_without_the_apps_folders_the_object_check_says_how_to_run_it(tmp_path):
    ctx, runs = context(tmp_path, {})
    (finding,) = preflight.recorded_objects(ctx)
    assert finding.level == "warn" and "--migrations" in finding.message and runs == []


def test_a_verify_that_cannot_run_fails_the_pre_flight(tmp_path):
    ctx, _ = context(tmp_path, {}, json.dumps({"event": "failed", "message": "database unreachable"}), exit_code=75)
    ctx.expected_objects = "{}"
    (finding,) = preflight.recorded_objects(ctx)
    assert finding.level == "FAIL" and "database unreachable" in finding.message


def test_take_over_hands_the_objects_of_the_given_folders_to_the_pre_flight(project):
    from tests import backend_image

    seen = []
    folders = f"{backend_image.IMAGE_DIRS['/app/migrations-local']}:{backend_image.IMAGE_DIRS['/app/migrations']}"
    result = project.run(["take-over", "--stack", "dev", "--migrations", folders], cluster=FakeCluster(old_flow()),
                         checks=[lambda ctx: seen.append(json.loads(ctx.expected_objects)) or []])
    assert result.code == EXIT_OK, result.err
    assert "20251121000002_create_products.sql" in seen[0]["files"]


def test_the_files_a_check_hands_the_runner_are_mounted_for_it():
    manifest = runner_job.job_manifest(job_state()["inputs"], "j", ["verify", "/opt/db-migrations-check/x.json"], {},
                                       files_config_map="j-files")
    pod = manifest["spec"]["template"]["spec"]
    assert {"name": "check-files", "configMap": {"name": "j-files"}} in pod["volumes"]
    assert {"name": "check-files", "mountPath": "/opt/db-migrations-check", "readOnly": True} in \
        pod["containers"][0]["volumeMounts"]


def test_the_take_over_pre_flight_lists_recorded_files_whose_objects_are_missing(project):
    """The take-over's own pre-flight (not a test's list): the history, then the object check."""
    from tests import backend_image

    runs = []

    def run_runner(cluster, namespace, template, args, env=None, runner_zipapp=None, files=None, purpose=""):
        runs.append(args[0])
        if args[0] == "status":
            return RunnerRun("db-migrations-preflight-1", 0, state_events(applied=["20251121000002_create_products.sql"]))
        missing = {"event": "objects_missing", "migration": "20251121000002_create_products.sql",
                   "objects": ["table public.products"]}
        assert "20251121000002_create_products.sql" in json.loads(files["expected.json"])["files"]
        return RunnerRun("db-migrations-preflight-2", 1, json.dumps(missing))

    folders = f"{backend_image.IMAGE_DIRS['/app/migrations-local']}:{backend_image.IMAGE_DIRS['/app/migrations']}"
    objects = old_flow({("Secret", "ghcr-secret"): secret("ghcr-secret", [".dockerconfigjson"])})
    result = project.run(["take-over", "--stack", "dev", "--migrations", folders], cluster=FakeCluster(objects),
                         stack=FakeStack(project.project, state=[job_state()]), checks=list(preflight.CHECKS),
                         run_runner=run_runner)
    assert result.code == EXIT_OK, result.err
    assert runs == ["status", "verify"]
    assert "[warn] recorded objects: 20251121000002_create_products.sql is recorded, and 1 of its objects are not " \
           "in the database: table public.products" in result.out
