"""deploy.py: arguments, the stack file (what runs is what it says), the cluster it names,
streaming, the failure report and each refusal.

Nothing here talks to a Pulumi backend or a cluster: see tests/deploy_fakes.py for the
stand-ins. The take-over, migrate, status and hand-back flows: tests/test_deploy_take_over.py.
"""

import socket
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import yaml
from kubernetes import client
from pulumi.automation import CommandError, ConcurrentUpdateError
from pulumi.automation._cmd import CommandResult

from deploytool import cli, cluster, job_report, stack as pulumi_stack
from deploytool.errors import EXIT_FAILED, EXIT_OK, EXIT_TRANSIENT, EXIT_USAGE
from deploytool.pod_logs import PodLogs
from tests.deploy_fakes import STACK_FILE, FakeCluster, FakeStack, Harness, kubeconfig, state_of


@pytest.fixture
def project(tmp_path):
    return Harness(tmp_path)


def command_error(cls, stderr):
    return cls(CommandResult(stdout="", stderr=stderr, code=255))


def config_of(call) -> dict:
    return call[1]


def test_action_and_stack_are_required():
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["up"])
    assert exc.value.code == EXIT_USAGE


def test_malformed_tag_is_refused_before_anything_runs():
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["up", "--stack", "dev", "--backend-tag", "bad tag"])
    assert exc.value.code == EXIT_USAGE


# -- what runs is what the stack file says --------------------------------------------------


def test_up_writes_the_tags_to_the_stack_file_and_runs_what_it_says(project):
    result = project.run(["up", "--stack", "dev", "--backend-tag", "25a0b1c", "--frontend-tag", "abc1234"])
    assert result.code == EXIT_OK, result.err
    written = yaml.safe_load(project.stack_text())["config"]
    assert (written["ideaforge-ai:backendImageTag"], written["ideaforge-ai:frontendImageTag"]) == ("25a0b1c", "abc1234")
    up = next(c for c in result.stack.calls if c[0] == "up")
    assert config_of(up)["ideaforge-ai:backendImageTag"] == "25a0b1c" and up[2] is None  # the file itself
    assert "config: backendImageTag = 25a0b1c (written to Pulumi.dev.yaml: commit it" in result.out
    assert project.stack_text().startswith("# the dev stack (test copy)\n")  # comments kept


def test_a_preview_with_a_tag_previews_it_and_changes_nothing(project):
    result = project.run(["preview", "--stack", "dev", "--backend-tag", "25a0b1c"])
    assert result.code == EXIT_OK, result.err
    assert project.stack_text() == STACK_FILE
    preview = result.stack.calls[0]
    assert preview[0] == "preview" and config_of(preview)["ideaforge-ai:backendImageTag"] == "25a0b1c"
    assert "previewed with backendImageTag=25a0b1c; Pulumi.dev.yaml is unchanged" in result.out


def test_a_refreshing_preview_does_not_write_the_refreshed_state(project):
    result = project.run(["preview", "--stack", "dev", "--refresh"])
    assert [(c[0], c[-1]) for c in result.stack.calls] == [("preview", True)]  # no `refresh` of its own


def test_a_preview_without_tags_runs_on_the_stack_file(project):
    result = project.run(["preview", "--stack", "dev"])
    assert [c[0] for c in result.stack.calls] == ["preview"] and result.stack.calls[0][2] is None
    assert project.stack_text() == STACK_FILE


def test_pin_writes_the_tags_and_touches_nothing_else(project):
    result = project.run(["pin", "--stack", "dev", "--backend-tag", "25a0b1c"],
                         require_cli=lambda: pytest.fail("pin needs no Pulumi"),
                         connect=lambda context: pytest.fail("pin needs no cluster"))
    assert result.code == EXIT_OK
    assert project.stack_text() == STACK_FILE.replace("backendImageTag: 24f45fd", "backendImageTag: 25a0b1c")
    assert result.stack.calls == []


def test_a_stack_without_its_file_is_refused(tmp_path):
    result = Harness(tmp_path).run(["up", "--stack", "prod"])
    assert result.code == EXIT_USAGE and "Pulumi.prod.yaml does not exist" in result.err


# -- the cluster the stack names ------------------------------------------------------------


def test_the_checks_and_pulumi_use_the_context_the_stack_names(tmp_path):
    project = Harness(tmp_path, STACK_FILE + "  kubernetes:context: eks-dev\n")
    result = project.run(["up", "--stack", "dev"])
    assert result.code == EXIT_OK, result.err
    assert result.seen == {"reachable": "eks-dev", "cluster": "eks-dev"}
    assert config_of(next(c for c in result.stack.calls if c[0] == "up"))["kubernetes:context"] == "eks-dev"
    assert "cluster: context eks-dev" in result.out


def test_a_context_other_than_the_stacks_is_refused_before_anything_runs(tmp_path):
    project = Harness(tmp_path, STACK_FILE + "  kubernetes:context: eks-dev\n")
    result = project.run(["up", "--stack", "dev", "--context", "eks-prod", "--backend-tag", "25a0b1c"])
    assert result.code == EXIT_USAGE
    assert "stack dev deploys to context 'eks-dev' (kubernetes:context in Pulumi.dev.yaml), not 'eks-prod'" in result.err
    assert result.stack.calls == [] and "25a0b1c" not in project.stack_text()


def test_a_context_given_for_a_stack_that_names_none_steers_pulumi_and_binds_the_stack(project):
    result = project.run(["up", "--stack", "dev", "--context", "kind-ideaforge"])
    assert result.code == EXIT_OK, result.err
    assert result.seen == {"reachable": "kind-ideaforge", "cluster": "kind-ideaforge"}
    assert config_of(next(c for c in result.stack.calls if c[0] == "up"))["kubernetes:context"] == "kind-ideaforge"
    assert yaml.safe_load(project.stack_text())["config"]["kubernetes:context"] == "kind-ideaforge"


def test_a_previews_context_steers_pulumi_without_binding_the_stack(project):
    result = project.run(["preview", "--stack", "dev", "--context", "kind-ideaforge"])
    assert config_of(result.stack.calls[0])["kubernetes:context"] == "kind-ideaforge"
    assert project.stack_text() == STACK_FILE


def test_a_stack_that_names_no_cluster_says_which_one_it_uses(project):
    result = project.run(["preview", "--stack", "dev"])
    assert "cluster: the kubeconfig's current context laptop; the stack names none" in result.out


# -- running and reporting --------------------------------------------------------------------


def test_refresh_runs_before_the_update_and_output_is_streamed_in_order(project):
    result = project.run(["up", "--stack", "dev", "--refresh"])
    assert result.code == EXIT_OK
    assert [c[0] for c in result.stack.calls] == ["refresh", "up"]
    assert result.out.index("Refreshing (dev):") < result.out.index("Updating (dev):") < \
        result.out.index("Job db-migrations replacing")


def test_update_never_shows_secrets(project):
    result = project.run(["up", "--stack", "dev"])
    assert next(c for c in result.stack.calls if c[0] == "up")[-1] is False


def test_success_summary_names_changes_and_the_migrations_this_deploy_ships(project):
    previous = {"migrations": [{"name": "001_a.sql", "sha256": "x"}]}
    outputs = {"migrations": [{"name": "001_a.sql", "sha256": "x"}, {"name": "002_b.sql", "sha256": "y"}],
               "backendImage": "ghcr.io/x/backend:2"}
    result = project.run(["up", "--stack", "dev"], stack=FakeStack(project.project, outputs=outputs, previous=previous))
    assert result.code == EXIT_OK
    assert "deployed: replace 1, update 1" in result.out
    assert "migrations shipped in this deploy (1): 002_b.sql" in result.out
    assert "backendImage: ghcr.io/x/backend:2" in result.out


def test_an_up_reads_the_stacks_state_once(project):
    # The last outputs come from the same export as the resources: one CLI call, not two.
    result = project.run(["up", "--stack", "dev"])
    assert result.code == EXIT_OK
    assert result.stack.exports == 1


def test_a_preview_does_not_read_the_stacks_state(project):
    # An export decrypts every secret of the state; a preview needs none of it.
    result = project.run(["preview", "--stack", "dev"])
    assert result.code == EXIT_OK
    assert result.stack.exports == 0


def test_a_state_that_cannot_be_read_is_reported_with_pulumis_message(project):
    stack = FakeStack(project.project)

    def refused():
        raise CommandError(CommandResult(stdout="", stderr="error: incorrect passphrase", code=255))

    stack.export_stack = refused
    result = project.run(["up", "--stack", "dev"], stack=stack)
    assert result.code == EXIT_FAILED
    assert "pulumi stack export (reading the stack's state) failed" in result.err
    assert "incorrect passphrase" in result.err and "Traceback" not in result.err
    assert stack.calls == []


def test_a_secret_output_in_the_exported_state_is_read_as_its_value():
    secret = {pulumi_stack.SECRET_SIGNATURE: pulumi_stack.SECRET_KIND, "plaintext": '[{"name": "001_a.sql"}]'}
    exported = SimpleNamespace(deployment={"resources": [{"type": "pulumi:pulumi:Stack",
                                                           "outputs": {"migrations": secret, "plain": 1}}]})
    state = pulumi_stack.state(SimpleNamespace(export_stack=lambda: exported))
    assert state.outputs == {"migrations": [{"name": "001_a.sql"}], "plain": 1}


def test_preview_summary_counts_changes(project):
    result = project.run(["preview", "--stack", "dev"])
    assert result.code == EXIT_OK
    assert "preview: replace 1" in result.out


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


class UnreadableCluster(FakeCluster):
    """A cluster whose Job reads fail as the API server fails them."""

    def read_namespaced_job(self, name, namespace):
        raise client.exceptions.ApiException(status=500, reason="Internal Server Error")


class BrokenCluster(FakeCluster):
    """Stands for a bug in deploy.py's own reading code."""

    def read_namespaced_job(self, name, namespace):
        raise TypeError("a bug")


def test_failed_up_prints_job_status_conditions_and_every_attempts_logs(project):
    pods = [failed_pod("db-migrations-second", 2, "exit 1: migration 002_b.sql failed at statement 2 of 3 (002_b.sql:7)"),
            failed_pod("db-migrations-first", 1, "exit 1: migration 002_b.sql failed at statement 2 of 3 (002_b.sql:7)")]
    logs = {"db-migrations-first": "applied 001_a.sql (1 statements, 3 ms)\nERROR: first attempt\n",
            "db-migrations-second": "ERROR: second attempt\n"}
    failing = FakeStack(project.project, fail_with=command_error(
        CommandError, "error: 1 error occurred: Job db-migrations failed [BackoffLimitExceeded]"))
    result = project.run(["up", "--stack", "dev"], stack=failing,
                         cluster=FakeCluster({("Job", "db-migrations"): failed_job()}, pods, logs))
    err = result.err
    assert result.code == EXIT_FAILED
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
    watching = PodLogs(FakeCluster(pods=[earlier, running], logs={
        "db-migrations-earlier": "applied 4 migrations\n",
        "db-migrations-slow": "migration lock acquired\napplying 002_slow.sql\n"}), "ns-dev")
    watching.read("db-migrations")

    report = job_report.job_report(FakeCluster({("Job", "db-migrations"): job}), FakeCluster(), "ns-dev",
                                   kept=watching.kept)

    assert "condition Failed=True reason=DeadlineExceeded" in report
    assert "--- attempt 1: pod db-migrations-slow, deleted before this report (by the Job controller) ---" in report
    assert "  migration lock acquired\n  applying 002_slow.sql" in report
    assert "no pods" not in report
    assert "db-migrations-earlier" not in report  # the replaced Job's pod is no attempt of this one


def test_a_log_the_kubelet_cannot_read_any_more_keeps_the_lines_read_before():
    running = failed_pod("db-migrations-slow", 1, "")
    running.status.phase = "Running"
    cluster = FakeCluster(pods=[running], logs={"db-migrations-slow": "migration lock acquired\napplying 002_slow.sql\n"})
    watching = PodLogs(cluster, "ns-dev")
    watching.read("db-migrations")

    cluster.logs["db-migrations-slow"] = "unable to retrieve container logs for containerd://4989edb3ab37"
    watching.read("db-migrations")

    assert watching.kept["db-migrations"]["db-migrations-slow"][1] == "migration lock acquired\napplying 002_slow.sql\n"


def test_a_failed_readiness_check_is_reported_with_its_own_pod_and_message(project):
    job = client.V1Job(metadata=client.V1ObjectMeta(name="wait-for-postgres"), status=client.V1JobStatus(
        failed=1, conditions=[client.V1JobCondition(type="Failed", status="True", reason="BackoffLimitExceeded",
                                                    message="Job has reached the specified backoff limit")]))
    message = "postgres at postgres-ha-primary:5432 did not become ready within 300s (waited 300s)"
    pods = [failed_pod("wait-for-postgres-x", 1, message, job="wait-for-postgres", container="check")]
    failing = FakeStack(project.project, fail_with=command_error(CommandError, "Job wait-for-postgres failed"))
    result = project.run(["up", "--stack", "dev"], stack=failing, cluster=FakeCluster(
        {("Job", "wait-for-postgres"): job}, pods, {"wait-for-postgres-x": "waiting for postgres\n"}))
    assert result.code == EXIT_FAILED
    assert "=== Job ns-dev/wait-for-postgres ===" in result.err
    assert f"  {message}" in result.err and "  waiting for postgres" in result.err


def test_failure_before_the_job_exists_says_so(project):
    failing = FakeStack(project.project, fail_with=command_error(CommandError, "wait-for-postgres failed"))
    result = project.run(["up", "--stack", "dev"], stack=failing)
    assert result.code == EXIT_FAILED
    assert "=== Job ns-dev/db-migrations: not found (it was not created because an earlier step failed" in result.err


def succeeded_job(uid):
    return client.V1Job(metadata=client.V1ObjectMeta(name="db-migrations", uid=uid),
                        status=client.V1JobStatus(succeeded=1))


def succeeded_pod(name):
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, creation_timestamp=datetime.now(timezone.utc),
                                                     labels={"job-name": "db-migrations"}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="migrate")]),
                        status=client.V1PodStatus(phase="Succeeded"))


def test_success_summary_lists_the_migrations_the_job_ran(project):
    log = ("migrations: /migrations (3 files)\nmigration lock acquired\n"
           "applied 002_b.sql (2 statements, 14 ms)\napplied 003_c.sql (1 statements, 3 ms)\n"
           "applied 2 migrations in 17 ms; 1 were already applied\n")
    cluster_ = FakeCluster(pods=[succeeded_pod("db-migrations-x")], logs={"db-migrations-x": log},
                           jobs_seen={"db-migrations": [succeeded_job("before"), succeeded_job("replaced")]})
    result = project.run(["up", "--stack", "dev"], cluster=cluster_)
    assert result.code == EXIT_OK
    assert "the migration Job ran and applied 2: 002_b.sql, 003_c.sql" in result.out


def test_success_summary_says_when_the_job_did_not_run(project):
    cluster_ = FakeCluster(pods=[succeeded_pod("db-migrations-old")],
                           logs={"db-migrations-old": "applied 001_a.sql (1 statements, 1 ms)\n"},
                           jobs_seen={"db-migrations": [succeeded_job("unchanged")]})
    result = project.run(["up", "--stack", "dev"], cluster=cluster_)
    assert result.code == EXIT_OK
    assert "the migration Job did not run" in result.out
    assert "001_a.sql" not in result.out


def test_objects_the_stack_only_reads_are_not_counted_as_changes():
    outcome = pulumi_stack.Outcome(changes={"same": 20, "read": 3}, outputs={"migrationsSource": "image"})
    text = cli.summary("up", outcome, None)
    assert text.startswith("deployed: no changes")
    assert "the migrations are the ones in the backend image" in text


def test_a_job_the_cluster_cannot_read_is_not_reported_as_not_run(project):
    result = project.run(["up", "--stack", "dev"], cluster=UnreadableCluster())
    assert result.code == EXIT_OK
    assert "could not tell whether the migration Job ran: (500)" in result.out
    assert "did not run" not in result.out


def test_a_bug_reading_the_job_is_not_taken_for_a_job_that_did_not_run(project):
    with pytest.raises(TypeError):
        project.run(["up", "--stack", "dev"], cluster=BrokenCluster())


def waiting_pod(name, reason, message):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "frontend"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="frontend", image="reg/frontend:1")]),
        status=client.V1PodStatus(phase="Pending", conditions=[client.V1PodCondition(type="Ready", status="False")],
                                  container_statuses=[client.V1ContainerStatus(
                                      name="frontend", image="reg/frontend:1", image_id="", ready=False,
                                      restart_count=0, state=client.V1ContainerState(
                                          waiting=client.V1ContainerStateWaiting(reason=reason, message=message)))]))


def test_a_failed_rollout_report_names_each_unready_pods_reason_and_the_kubelets_warnings(project):
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
    failing = FakeStack(project.project, fail_with=command_error(CommandError, "error: Deployment frontend failed"),
                        state=state_of(("Deployment", "frontend")))
    result = project.run(["up", "--stack", "dev"], stack=failing, cluster=FakeCluster(
        {("Deployment", "frontend"): deployment}, [pod], {"frontend-1-a": ""}, events=[event]))
    err = result.err
    assert result.code == EXIT_FAILED
    assert "=== Deployment ns-dev/frontend: rollout not complete ===" in err
    assert "condition Progressing=False reason=ProgressDeadlineExceeded" in err
    assert ("container frontend: waiting, CreateContainerConfigError: container has runAsNonRoot and image will "
            "run as root") in err
    assert "event Failed (x4): Error: container has runAsNonRoot and image will run as root" in err


# -- refusals ----------------------------------------------------------------------------


def test_missing_pulumi_cli_is_refused_with_how_to_install_it(project):
    result = project.run(["up", "--stack", "dev"], require_cli=lambda: pulumi_stack.require_cli(which=lambda name: None))
    assert result.code == EXIT_USAGE
    assert "the Pulumi CLI is not installed or not on PATH; install it with" in result.err
    assert result.stack.calls == []


def test_stack_locked_by_another_update_is_refused_as_transient(project):
    locked = FakeStack(project.project, fail_with=command_error(ConcurrentUpdateError,
                                                                "the stack is currently locked by 1 lock(s)"))
    result = project.run(["up", "--stack", "dev"], stack=locked)
    assert result.code == EXIT_TRANSIENT
    assert "stack dev is locked by another update" in result.err and "pulumi cancel" in result.err


def test_no_kubeconfig_is_reported_as_such(project, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = project.run(["up", "--stack", "dev"], require_reachable=cluster.require_reachable)
    assert result.code == EXIT_USAGE
    assert "no kubeconfig found (KUBECONFIG, ~/.kube/config)" in result.err
    assert "Service host/port is not set" not in result.err


def test_a_context_the_kubeconfig_lacks_is_named(project, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "config", 1)))
    result = project.run(["preview", "--stack", "dev", "--context", "eks-dev"],
                         require_reachable=cluster.require_reachable)
    assert result.code == EXIT_USAGE
    assert "has no usable context 'eks-dev'" in result.err


def test_an_unreachable_cluster_is_refused_before_anything_changes(project, tmp_path, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "config", port)))
    result = project.run(["up", "--stack", "dev", "--backend-tag", "25a0b1c"],
                         require_reachable=cluster.require_reachable)
    assert result.code == EXIT_TRANSIENT
    assert "the Kubernetes cluster is not reachable" in result.err and "kubectl cluster-info" in result.err
    assert result.stack.calls == [] and project.stack_text() == STACK_FILE
    assert "could not collect" not in result.err  # no report of a cluster never reached
