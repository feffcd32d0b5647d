"""deploy.py: arguments, config writing, streaming, the failure report and each refusal.

Nothing here talks to a Pulumi backend or a cluster: the stack is a stand-in with the
Automation API's surface, and the Kubernetes objects are the official client's models.
"""

import io
import socket
import textwrap
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pulumi.automation import CommandError, ConcurrentUpdateError, ConfigValue
from pulumi.automation._cmd import CommandResult

from deploytool import cli, cluster, job_report, stack as pulumi_stack
from deploytool.errors import EXIT_FAILED, EXIT_OK, EXIT_TRANSIENT, EXIT_USAGE
from deploytool.pod_logs import PodLogs


class FakeStack:
    def __init__(self, name="dev", fail_with=None, outputs=None, previous=None, managed=True):
        self.name = name
        self.managed = managed
        self.config = {"namespace": ConfigValue(value="ns-dev")}
        self.calls = []
        self.fail_with = fail_with
        self._outputs = outputs or {}
        self._previous = previous or {}

    def set_config(self, key, value):
        self.calls.append(("set_config", key, value.value))
        self.config[key] = value

    def get_config(self, key):
        return self.config[key]

    def remove_config(self, key):
        self.calls.append(("remove_config", key))
        self.config.pop(key, None)

    def export_stack(self):
        resources = [{"type": "pulumi:pulumi:Stack"}] + ([{"type": "kubernetes:apps/v1:Deployment"}] if self.managed else [])
        return SimpleNamespace(deployment={"resources": resources})

    def outputs(self):
        return {k: SimpleNamespace(value=v) for k, v in self._previous.items()}

    def refresh(self, on_output, color):
        self.calls.append(("refresh",))
        on_output("Refreshing (dev):\n")

    def preview(self, on_output, color, diff):
        self.calls.append(("preview",))
        on_output("Previewing update (dev):\n")
        return SimpleNamespace(change_summary={"same": 9, "replace": 1})

    def up(self, on_output, color, show_secrets):
        self.calls.append(("up", show_secrets))
        on_output("Updating (dev):\n")
        on_output("  kubernetes:batch/v1:Job db-migrations replacing\n")
        if self.fail_with:
            raise self.fail_with
        return SimpleNamespace(summary=SimpleNamespace(resource_changes={"same": 8, "replace": 1, "update": 1}),
                               outputs={k: SimpleNamespace(value=v) for k, v in self._outputs.items()})


def tools(stack=None, **overrides):
    fake = stack or FakeStack()
    defaults = dict(require_cli=lambda: None, open_stack=lambda name: fake, require_reachable=lambda context: None,
                    kube_clients=lambda context: (FakeBatch({}), FakeCore([])),
                    unmanaged_objects=lambda namespace, context: [],
                    delete_old_migration_job=lambda namespace, context: False,
                    hand_over_replicas=lambda namespace, context: [],
                    apps_client=lambda context: FakeApps({}))
    defaults.update(overrides)
    return cli.Tools(**defaults), fake


def run(argv, **kw):
    out, err = io.StringIO(), io.StringIO()
    t, fake = tools(**kw)
    code = cli.main(argv, tools=t, out=out, err=err)
    return code, out.getvalue(), err.getvalue(), fake


def command_error(cls, stderr):
    return cls(CommandResult(stdout="", stderr=stderr, code=255))


def test_action_and_stack_are_required():
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["up"])
    assert exc.value.code == EXIT_USAGE


def test_malformed_tag_is_refused_before_anything_runs():
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["up", "--stack", "dev", "--backend-tag", "bad tag"])
    assert exc.value.code == EXIT_USAGE


def test_tags_are_written_to_the_stack_config():
    code, out, _, fake = run(["up", "--stack", "dev", "--backend-tag", "672425b", "--frontend-tag", "abc1234"])
    assert code == EXIT_OK
    assert fake.calls[:2] == [("set_config", "backendImageTag", "672425b"), ("set_config", "frontendImageTag", "abc1234")]
    assert "config: backendImageTag = 672425b" in out


def test_tags_not_given_leave_the_config_alone():
    _, _, _, fake = run(["preview", "--stack", "dev"])
    assert [c for c in fake.calls if c[0] == "set_config"] == []
    assert fake.calls == [("preview",)]


def test_refresh_runs_before_the_update_and_output_is_streamed_in_order():
    code, out, _, fake = run(["up", "--stack", "dev", "--refresh"])
    assert code == EXIT_OK
    assert [c[0] for c in fake.calls] == ["refresh", "up"]
    assert out.index("Refreshing (dev):") < out.index("Updating (dev):") < out.index("Job db-migrations replacing")


def test_update_never_shows_secrets():
    _, _, _, fake = run(["up", "--stack", "dev"])
    assert ("up", False) in fake.calls


def test_success_summary_names_changes_and_the_migrations_this_deploy_ships():
    previous = {"migrations": [{"name": "001_a.sql", "sha256": "x"}]}
    outputs = {"migrations": [{"name": "001_a.sql", "sha256": "x"}, {"name": "002_b.sql", "sha256": "y"}],
               "backendImage": "ghcr.io/x/backend:2"}
    code, out, _, _ = run(["up", "--stack", "dev"], stack=FakeStack(outputs=outputs, previous=previous))
    assert code == EXIT_OK
    assert "deployed: replace 1, update 1" in out
    assert "migrations shipped in this deploy (1): 002_b.sql" in out
    assert "backendImage: ghcr.io/x/backend:2" in out


def test_preview_summary_counts_changes():
    code, out, _, _ = run(["preview", "--stack", "dev"])
    assert code == EXIT_OK
    assert "preview: replace 1" in out


# -- the failure report ----------------------------------------------------------------

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def failed_job():
    return client.V1Job(
        metadata=client.V1ObjectMeta(name="db-migrations", namespace="ns-dev"),
        status=client.V1JobStatus(failed=2, conditions=[client.V1JobCondition(
            type="Failed", status="True", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")]),
    )


def failed_pod(name, minutes, message, job="db-migrations", container="migrate"):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, creation_timestamp=NOW + timedelta(minutes=minutes),
                                     labels={"job-name": job}),
        spec=client.V1PodSpec(containers=[client.V1Container(name=container)]),
        status=client.V1PodStatus(phase="Failed", container_statuses=[client.V1ContainerStatus(
            name=container, image="i", image_id="", ready=False, restart_count=0,
            state=client.V1ContainerState(terminated=client.V1ContainerStateTerminated(exit_code=1, reason="Error", message=message)))]),
    )


class FakeBatch:
    """Jobs by name; a list is what successive reads see (before the deploy, after it)."""

    def __init__(self, jobs):
        self.jobs = {name: list(job) if isinstance(job, list) else [job] for name, job in jobs.items()}

    def read_namespaced_job(self, name, namespace):
        seen = self.jobs.get(name)
        if not seen or seen[0] is None:
            if seen:
                seen.pop(0)
            raise ApiException(status=404, reason="Not Found")
        return seen.pop(0) if len(seen) > 1 else seen[0]


class FakeCore:
    def __init__(self, pods, logs=None, events=()):
        self.pods, self.logs, self.events = pods, logs or {}, list(events)

    def list_namespaced_pod(self, namespace, label_selector):
        key, value = label_selector.split("=")
        assert key in ("job-name", "app")
        return client.V1PodList(items=[p for p in self.pods if (p.metadata.labels or {}).get(key) == value])

    def read_namespaced_pod_log(self, name, namespace, container, tail_lines=None):
        return self.logs[name]

    def list_namespaced_event(self, namespace, field_selector):
        name = field_selector.split("=")[1]
        return client.CoreV1EventList(items=[e for e in self.events if e.involved_object.name == name])


class FakeApps:
    def __init__(self, deployments):
        self.deployments = deployments

    def read_namespaced_deployment(self, name, namespace):
        if name not in self.deployments:
            raise ApiException(status=404, reason="Not Found")
        return self.deployments[name]


class UnreadableBatch:
    def read_namespaced_job(self, name, namespace):
        raise ApiException(status=500, reason="Internal Server Error")


def test_failed_up_prints_job_status_conditions_and_every_attempts_logs():
    pods = [failed_pod("db-migrations-second", 2, "exit 1: migration 002_b.sql failed at statement 2 of 3 (002_b.sql:7)"),
            failed_pod("db-migrations-first", 1, "exit 1: migration 002_b.sql failed at statement 2 of 3 (002_b.sql:7)")]
    logs = {"db-migrations-first": "applied 001_a.sql (1 statements, 3 ms)\nERROR: first attempt\n",
            "db-migrations-second": "ERROR: second attempt\n"}
    failing = FakeStack(fail_with=command_error(CommandError, "error: 1 error occurred: Job db-migrations failed [BackoffLimitExceeded]"))
    code, _, err, _ = run(["up", "--stack", "dev"], stack=failing,
                          kube_clients=lambda context: (FakeBatch({"db-migrations": failed_job()}), FakeCore(pods, logs)))
    assert code == EXIT_FAILED
    assert "pulumi up failed:" in err and "[BackoffLimitExceeded]" in err
    assert "=== Job ns-dev/db-migrations ===" in err
    assert "status: active=0 succeeded=0 failed=2" in err
    assert "condition Failed=True reason=BackoffLimitExceeded: Job has reached the specified backoff limit" in err
    assert err.index("attempt 1: pod db-migrations-first") < err.index("attempt 2: pod db-migrations-second")
    assert "exit code 1 (Error)" in err
    assert "  exit 1: migration 002_b.sql failed at statement 2 of 3 (002_b.sql:7)" in err
    assert "  ERROR: first attempt" in err and "  ERROR: second attempt" in err


def test_a_job_pod_deleted_before_the_report_is_reported_with_the_log_read_while_it_ran():
    # A Job past its activeDeadlineSeconds: its pod is deleted before the Job is marked Failed.
    job = client.V1Job(metadata=client.V1ObjectMeta(name="db-migrations", uid="new"), status=client.V1JobStatus(
        failed=1, conditions=[client.V1JobCondition(type="Failed", status="True", reason="DeadlineExceeded",
                                                    message="Job was active longer than specified deadline")]))
    earlier, running = failed_pod("db-migrations-earlier", 0, ""), failed_pod("db-migrations-slow", 1, "")
    running.status.phase = "Running"
    for pod, uid in ((earlier, "replaced"), (running, "new")):
        pod.metadata.owner_references = [client.V1OwnerReference(api_version="batch/v1", kind="Job",
                                                                 name="db-migrations", uid=uid)]
    watching = PodLogs(FakeCore([earlier, running], {"db-migrations-earlier": "applied 4 migrations\n",
                                                     "db-migrations-slow": "migration lock acquired\napplying 002_slow.sql\n"}),
                       "ns-dev")
    watching.read("db-migrations")

    report = job_report.job_report(FakeBatch({"db-migrations": job}), FakeCore([]), "ns-dev", kept=watching.kept)

    assert "condition Failed=True reason=DeadlineExceeded" in report
    assert "--- attempt 1: pod db-migrations-slow, deleted before this report (by the Job controller) ---" in report
    assert "  migration lock acquired\n  applying 002_slow.sql" in report
    assert "no pods" not in report
    assert "db-migrations-earlier" not in report  # the replaced Job's pod is no attempt of this one


def test_a_failed_readiness_check_is_reported_with_its_own_pod_and_message():
    job = client.V1Job(metadata=client.V1ObjectMeta(name="wait-for-postgres"), status=client.V1JobStatus(
        failed=1, conditions=[client.V1JobCondition(type="Failed", status="True", reason="BackoffLimitExceeded",
                                                    message="Job has reached the specified backoff limit")]))
    message = "postgres at postgres-ha-primary:5432 did not become ready within 300s (waited 300s)"
    pods = [failed_pod("wait-for-postgres-x", 1, message, job="wait-for-postgres", container="check")]
    failing = FakeStack(fail_with=command_error(CommandError, "Job wait-for-postgres failed"))
    code, _, err, _ = run(["up", "--stack", "dev"], stack=failing, kube_clients=lambda context: (
        FakeBatch({"wait-for-postgres": job}), FakeCore(pods, {"wait-for-postgres-x": "waiting for postgres\n"})))
    assert code == EXIT_FAILED
    assert "=== Job ns-dev/wait-for-postgres ===" in err
    assert f"  {message}" in err and "  waiting for postgres" in err


def test_a_first_up_into_a_namespace_the_old_flow_filled_is_refused_with_the_take_over_command():
    code, _, err, fake = run(["up", "--stack", "dev"], stack=FakeStack(managed=False),
                             unmanaged_objects=lambda namespace, context: ["Deployment backend", "Job db-migrations"])
    assert code == EXIT_USAGE
    assert "namespace ns-dev already holds Deployment backend, Job db-migrations, created outside Pulumi" in err
    assert "python deploy.py take-over --stack dev" in err
    assert not [c for c in fake.calls if c[0] == "up"]


def test_take_over_deletes_the_old_job_runs_up_with_take_over_and_then_clears_it():
    deleted, handed = [], []
    code, out, _, fake = run(["take-over", "--stack", "dev"], stack=FakeStack(managed=False),
                             delete_old_migration_job=lambda namespace, context: deleted.append(namespace) or True,
                             hand_over_replicas=lambda namespace, context: handed.append(namespace) or ["backend"])
    assert code == EXIT_OK
    assert deleted == handed == ["ns-dev"]
    assert "Deployment backend: its replica count stays with its autoscaler" in out
    assert [c[0] for c in fake.calls] == ["set_config", "up", "remove_config", "up"]
    assert fake.calls[0] == ("set_config", "takeOver", "true")
    assert "taken over: ns-dev is now managed by stack dev" in out


def test_take_over_clears_its_setting_even_when_the_up_fails():
    failing = FakeStack(managed=False, fail_with=command_error(CommandError, "boom"))
    code, _, _, fake = run(["take-over", "--stack", "dev"], stack=failing)
    assert code == EXIT_FAILED
    assert fake.calls[-1] == ("remove_config", "takeOver")  # and no second up after a failed first


def test_take_over_of_a_stack_that_already_manages_the_namespace_is_refused():
    code, _, err, fake = run(["take-over", "--stack", "dev"], stack=FakeStack(managed=True))
    assert code == EXIT_USAGE and "there is nothing to take over" in err
    assert fake.calls == []


def test_no_kubeconfig_is_reported_as_such(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, _, err, _ = run(["up", "--stack", "dev"], require_reachable=cluster.require_reachable)
    assert code == EXIT_USAGE
    assert "no kubeconfig found (KUBECONFIG, ~/.kube/config)" in err
    assert "Service host/port is not set" not in err


def test_failure_before_the_job_exists_says_so():
    failing = FakeStack(fail_with=command_error(CommandError, "wait-for-postgres failed"))
    code, _, err, _ = run(["up", "--stack", "dev"], stack=failing)
    assert code == EXIT_FAILED
    assert "=== Job ns-dev/db-migrations: not found (it was not created because an earlier step failed" in err


# -- refusals ----------------------------------------------------------------------------

def test_missing_pulumi_cli_is_refused_with_how_to_install_it():
    code, _, err, fake = run(["up", "--stack", "dev"],
                             require_cli=lambda: pulumi_stack.require_cli(which=lambda name: None))
    assert code == EXIT_USAGE
    assert "the Pulumi CLI is not installed or not on PATH; install it with" in err
    assert fake.calls == []


def test_stack_locked_by_another_update_is_refused_as_transient():
    locked = FakeStack(fail_with=command_error(ConcurrentUpdateError, "the stack is currently locked by 1 lock(s)"))
    code, _, err, _ = run(["up", "--stack", "dev"], stack=locked)
    assert code == EXIT_TRANSIENT
    assert "stack dev is locked by another update" in err and "pulumi cancel" in err


def test_unreachable_cluster_is_refused_before_the_stack_is_touched(tmp_path, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}}}]
        users: [{{name: u, user: {{token: t}}}}]
        contexts: [{{name: local, context: {{cluster: c, user: u}}}}]
        current-context: local
        """))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    code, _, err, fake = run(["up", "--stack", "dev"], require_reachable=cluster.require_reachable)
    assert code == EXIT_TRANSIENT
    assert "the Kubernetes cluster is not reachable" in err and "kubectl cluster-info" in err
    assert fake.calls == []


def succeeded_job(uid):
    return client.V1Job(metadata=client.V1ObjectMeta(name="db-migrations", uid=uid),
                        status=client.V1JobStatus(succeeded=1))


def succeeded_pod(name):
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, creation_timestamp=datetime.now(timezone.utc),
                                                     labels={"job-name": "db-migrations"}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="migrate")]),
                        status=client.V1PodStatus(phase="Succeeded"))


def test_success_summary_lists_the_migrations_the_job_ran():
    log = ("migrations: /migrations (3 files)\nmigration lock acquired\n"
           "applied 002_b.sql (2 statements, 14 ms)\napplied 003_c.sql (1 statements, 3 ms)\n"
           "applied 2 migrations in 17 ms; 1 were already applied\n")
    batch = FakeBatch({"db-migrations": [succeeded_job("before"), succeeded_job("replaced")]})
    clients = lambda context: (batch,
                               FakeCore([succeeded_pod("db-migrations-x")], {"db-migrations-x": log}))
    code, out, _, _ = run(["up", "--stack", "dev"], kube_clients=clients)
    assert code == EXIT_OK
    assert "the migration Job ran and applied 2: 002_b.sql, 003_c.sql" in out


def test_success_summary_says_when_the_job_did_not_run():
    batch = FakeBatch({"db-migrations": succeeded_job("unchanged")})
    clients = lambda context: (batch,
                               FakeCore([succeeded_pod("db-migrations-old")], {"db-migrations-old": "applied 001_a.sql (1 statements, 1 ms)\n"}))
    code, out, _, _ = run(["up", "--stack", "dev"], kube_clients=clients)
    assert code == EXIT_OK
    assert "the migration Job did not run" in out
    assert "001_a.sql" not in out


def test_objects_the_stack_only_reads_are_not_counted_as_changes():
    outcome = pulumi_stack.Outcome(changes={"same": 20, "read": 3}, outputs={"migrationsSource": "image"})
    text = cli.summary("up", outcome, None)
    assert text.startswith("deployed: no changes")
    assert "the migrations are the ones in the backend image" in text


def test_a_job_the_cluster_cannot_read_is_not_reported_as_not_run():
    code, out, _, _ = run(["up", "--stack", "dev"], kube_clients=lambda context: (UnreadableBatch(), FakeCore([])))
    assert code == EXIT_OK
    assert "could not tell whether the migration Job ran: (500)" in out
    assert "did not run" not in out


def test_a_bug_reading_the_job_is_not_taken_for_a_job_that_did_not_run():
    def broken(context):
        raise TypeError("a bug")
    with pytest.raises(TypeError):
        run(["up", "--stack", "dev"], kube_clients=broken)


def waiting_pod(name, reason, message):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "frontend"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="frontend", image="reg/frontend:1")]),
        status=client.V1PodStatus(phase="Pending", conditions=[client.V1PodCondition(type="Ready", status="False")],
                                  container_statuses=[client.V1ContainerStatus(
                                      name="frontend", image="reg/frontend:1", image_id="", ready=False,
                                      restart_count=0, state=client.V1ContainerState(
                                          waiting=client.V1ContainerStateWaiting(reason=reason, message=message)))]))


def test_a_failed_rollout_report_names_each_unready_pods_reason_and_the_kubelets_warnings():
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="frontend"), spec=client.V1DeploymentSpec(
            replicas=3, selector=client.V1LabelSelector(), template=client.V1PodTemplateSpec()),
        status=client.V1DeploymentStatus(updated_replicas=1, ready_replicas=0, conditions=[client.V1DeploymentCondition(
            type="Progressing", status="False", reason="ProgressDeadlineExceeded",
            message='ReplicaSet "frontend-1" has timed out progressing.')]))
    pod = waiting_pod("frontend-1-a", "CreateContainerConfigError",
                      "container has runAsNonRoot and image will run as root")
    event = client.CoreV1Event(metadata=client.V1ObjectMeta(name="e"), type="Warning", reason="Failed", count=4,
                               message="Error: container has runAsNonRoot and image will run as root",
                               involved_object=client.V1ObjectReference(name="frontend-1-a"))
    failing = FakeStack(fail_with=command_error(CommandError, "error: Deployment frontend failed"))
    code, _, err, _ = run(["up", "--stack", "dev"], stack=failing,
                          kube_clients=lambda context: (FakeBatch({}), FakeCore([pod], {"frontend-1-a": ""}, [event])),
                          apps_client=lambda context: FakeApps({"frontend": deployment}))
    assert code == EXIT_FAILED
    assert "=== Deployment ns-dev/frontend: rollout not complete ===" in err
    assert "condition Progressing=False reason=ProgressDeadlineExceeded" in err
    assert ("container frontend: waiting, CreateContainerConfigError: container has runAsNonRoot and image will "
            "run as root") in err
    assert "event Failed (x4): Error: container has runAsNonRoot and image will run as root" in err
