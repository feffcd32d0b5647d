"""Day-2 operations, for real: a take-over that stops halfway and is run again, pods rolling once
during a take-over, handing the namespace back to the old flow, `pulumi destroy` keeping the
live app, `deploy.py migrate` and `deploy.py status`, and the pull-request preview's credential.

Each scenario builds the state it needs in a namespace, database and stack of its own, so any of
them runs alone (`-k`), and its namespace goes with it (the node fits one stack at dev's
requests). The old flow's namespace is filled by scenario 8's helper (tests/e2e/test_take_over.py:
the app's own k8s/eks manifests, applied as `make eks-deploy` applies them, and its old
migrate.py Job), pointed at the scenario's namespace.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import sys
import time

import pytest
import yaml
from kubernetes import client

from tests.e2e import images as image_builds
from tests.e2e import test_take_over as old_flow
from tests.e2e.conftest import FIXTURE_FOLDERS, PASSWORD, ROOT

NEW = "20251202000000_add_sso_fields.sql"
# Each scenario builds its own state: side-by-side workers share them out one by one (conftest).
STANDS_ALONE = True


@pytest.fixture(autouse=True)
def own_namespace_removed(e2e):
    yield
    e2e.remove_namespaces()
    e2e.query("ALTER ROLE agentic_pm PASSWORD %s", (PASSWORD,))  # the old flow set the Secret's


def output_of(result) -> str:
    return result.stdout + result.stderr


@contextlib.contextmanager
def old_flow_in(namespace: str):
    """Scenario 8's helpers, for another namespace."""
    saved = old_flow.NAMESPACE
    old_flow.NAMESPACE = namespace
    try:
        yield
    finally:
        old_flow.NAMESPACE = saved


def fresh_stack(e2e, name: str, *settings: tuple[str, str]) -> str:
    """A stack deployed once on an empty database (conftest's fresh_stack); its namespace."""
    e2e.fresh_stack(name, *settings)
    return e2e.namespace


def filled_by_make_eks_deploy(e2e, name: str) -> str:
    """A namespace and database as the old flow leaves them, and a stack (not deployed) for it."""
    namespace = f"ideaforge-{name}"
    e2e.images.node.import_images([image_builds.backend(old_flow.TAG)])  # the app's own migration folders
    e2e.use_stack(name, namespace, f"{name.replace('-', '_')}_db")
    e2e.init_stack()
    e2e.config("backendImageTag", old_flow.TAG)
    with old_flow_in(namespace):
        old_flow.fill_like_make_eks_deploy(e2e)
        for app in ("backend", "frontend"):
            old_flow.settled(e2e, app)
    return namespace


def revisions(e2e, namespace: str, app: str) -> list[str]:
    """The Deployment's ReplicaSets by revision: one per rollout."""
    sets = e2e.apps.list_namespaced_replica_set(namespace, label_selector=f"app={app}").items
    return sorted(rs.metadata.annotations["deployment.kubernetes.io/revision"] for rs in sets)


def pod_uids(e2e, namespace: str, app: str) -> set[str]:
    return {p.metadata.uid for p in e2e.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
            if not p.metadata.deletion_timestamp}


def settled(e2e, namespace: str) -> None:
    with old_flow_in(namespace):
        for app in ("backend", "frontend"):
            old_flow.settled(e2e, app)


def state_resources(e2e) -> list[dict]:
    exported = json.loads(e2e.pulumi("stack", "export").stdout)
    return [r for r in exported["deployment"].get("resources") or [] if r["type"] != "pulumi:pulumi:Stack"]


def refuse_ingress_writes(e2e, namespace: str) -> str:
    """An admission policy of the cluster that refuses any Ingress of the namespace carrying
    Pulumi's take-over annotation (dry runs pass): the take-over's preview and hand-over pass,
    and its update stops at the Ingress, the last object it updates."""
    name = f"no-ingress-take-over-{namespace}"
    admission = client.AdmissionregistrationV1Api(e2e.kube)
    admission.create_validating_admission_policy({
        "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["*"],
                                                         "operations": ["CREATE", "UPDATE"],
                                                         "resources": ["ingresses"]}]},
                 "matchConditions": [{"name": "this-namespace", "expression": f"request.namespace == '{namespace}'"}],
                 "validations": [{
                     "expression": "request.dryRun == true || !has(object.metadata.annotations) || "
                                   "!('pulumi.com/patchForce' in object.metadata.annotations)",
                     "message": "Ingress changes are frozen in this namespace"}]}})
    admission.create_validating_admission_policy_binding({
        "metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"]}})
    deadline = time.monotonic() + 30  # the policy takes effect once the API server has loaded it
    networking = client.NetworkingV1Api(e2e.kube)
    probe = {"metadata": {"name": "freeze-probe", "annotations": {"pulumi.com/patchForce": "true"}},
             "spec": {"defaultBackend": {"service": {"name": "frontend", "port": {"number": 3000}}}}}
    while True:
        try:
            networking.create_namespaced_ingress(namespace, probe)
        except client.exceptions.ApiException as exc:
            if "frozen" in str(exc.body):
                return name
            raise
        networking.delete_namespaced_ingress("freeze-probe", namespace)
        assert time.monotonic() < deadline, "the admission policy did not take effect"
        time.sleep(0.5)


def allow_ingress_writes(e2e, name: str) -> None:
    admission = client.AdmissionregistrationV1Api(e2e.kube)
    admission.delete_validating_admission_policy_binding(name)
    admission.delete_validating_admission_policy(name)
    time.sleep(3)  # the API server drops it from its cache


# -- the take-over ---------------------------------------------------------------------------


def test_a_take_over_that_stops_at_the_ingress_converges_when_run_again(e2e):
    namespace = filled_by_make_eks_deploy(e2e, "halfway")
    with old_flow_in(namespace):
        kept = {app: old_flow.autoscaled(e2e, app) for app in ("backend", "frontend")}
    policy = refuse_ingress_writes(e2e, namespace)

    stopped = e2e.deploy("take-over")

    assert stopped.returncode == 1, output_of(stopped)[-6000:]
    assert "Ingress changes are frozen" in output_of(stopped)
    assert "takeOver" not in (e2e.project / "Pulumi.halfway.yaml").read_text()
    refused = e2e.deploy("up")
    assert refused.returncode == 2, output_of(refused)
    assert "Ingress ideaforge-ai-ingress-nginx" in refused.stderr and "the take-over stopped before them" in refused.stderr
    assert "Deployment backend" not in refused.stderr  # already the stack's

    allow_ingress_writes(e2e, policy)
    again = e2e.deploy("take-over")

    assert again.returncode == 0, output_of(again)[-6000:]
    assert "continuing the take-over (Ingress ideaforge-ai-ingress-nginx still outside it)" in again.stdout
    settled(e2e, namespace)
    unchanged = e2e.deploy("up")
    assert unchanged.returncode == 0, output_of(unchanged)
    assert "deployed: no changes" in unchanged.stdout
    for app, replicas in kept.items():
        assert e2e.apps.read_namespaced_deployment(app, namespace).spec.replicas == replicas
        assert revisions(e2e, namespace, app) == ["1", "2"]  # one rollout over both runs


def test_pods_roll_once_during_a_take_over(e2e):
    namespace = filled_by_make_eks_deploy(e2e, "roll-once")

    taken = e2e.deploy("take-over")

    assert taken.returncode == 0, output_of(taken)[-6000:]
    assert "handed the fields `kubectl apply` set to Pulumi" in taken.stdout
    settled(e2e, namespace)
    for app in ("backend", "frontend"):
        assert revisions(e2e, namespace, app) == ["1", "2"], app
    again = e2e.deploy("up")  # and nothing of the old manifests is left for a later update to drop
    assert again.returncode == 0 and "deployed: no changes" in again.stdout, output_of(again)
    for app in ("backend", "frontend"):
        assert revisions(e2e, namespace, app) == ["1", "2"], app


def test_the_take_over_pre_flight_stops_on_a_database_it_cannot_read_and_changes_nothing(e2e):
    namespace = filled_by_make_eks_deploy(e2e, "preflight")
    config = {"data": {"POSTGRES_DB": "no_such_database"}}  # the app ConfigMap names a database that is not there
    e2e.core.patch_namespaced_config_map("ideaforge-ai-config", namespace, config)
    before = e2e.query("SELECT migration_name FROM schema_migrations ORDER BY 1")

    stopped = e2e.deploy("take-over")

    assert stopped.returncode == 2, output_of(stopped)[-6000:]
    assert "[FAIL] database: `runner status` in the cluster failed" in stopped.stdout
    assert "no_such_database" in stopped.stdout
    assert "[ok] Secret ideaforge-ai-secrets" in stopped.stdout
    assert "nothing was changed" in stopped.stderr
    assert state_resources(e2e) == []
    assert e2e.query("SELECT migration_name FROM schema_migrations ORDER BY 1") == before
    assert [j.metadata.name for j in e2e.batch.list_namespaced_job(namespace).items] == ["db-migrations"]  # the old one
    assert "pulumi" not in json.dumps(e2e.apps.read_namespaced_deployment("backend", namespace).metadata.labels)

    e2e.core.patch_namespaced_config_map("ideaforge-ai-config", namespace, {"data": {"POSTGRES_DB": e2e.database_name}})
    taken = e2e.deploy("take-over")
    assert taken.returncode == 0, output_of(taken)[-6000:]
    assert re.search(r"\[ok\] database: \d+ migrations recorded as applied", taken.stdout), taken.stdout


# -- letting go ----------------------------------------------------------------------------


def test_hand_back_leaves_the_app_running_for_the_old_flow_which_can_deploy_again(e2e):
    namespace = filled_by_make_eks_deploy(e2e, "hand-back")
    assert e2e.deploy("take-over").returncode == 0
    settled(e2e, namespace)
    running = {app: pod_uids(e2e, namespace, app) for app in ("backend", "frontend")}

    handed = e2e.deploy("hand-back")

    assert handed.returncode == 0, output_of(handed)[-6000:]
    assert state_resources(e2e) == []
    assert {app: pod_uids(e2e, namespace, app) for app in ("backend", "frontend")} == running
    for read, name in ((e2e.core.read_namespaced_service, "backend"),
                       (client.AutoscalingV2Api(e2e.kube).read_namespaced_horizontal_pod_autoscaler, "backend-hpa"),
                       (client.NetworkingV1Api(e2e.kube).read_namespaced_ingress, "ideaforge-ai-ingress-nginx")):
        assert read(name, namespace).metadata.name == name
    assert e2e.job("db-migrations") is None  # the stack's own Job went; the old flow makes its own

    # The old flow deploys again: `kubectl apply` of the app's backend.yaml (a patch as kubectl's) ...
    with old_flow_in(namespace):
        apply = old_flow.KubectlApply(e2e.kube)
        for name, document in old_flow.manifests():
            if name == "backend.yaml" and document["kind"] == "Deployment":
                apply(old_flow.fit_to_node(document))
    # ... and the old migrate.py records a file in the table the runner extended.
    e2e.query("INSERT INTO schema_migrations (migration_name) VALUES ('20251230000000_old_flow.sql')", as_app=True)

    refused = e2e.deploy("up")
    assert refused.returncode == 2 and "take-over" in refused.stderr
    again = e2e.deploy("take-over")
    assert again.returncode == 0, output_of(again)[-6000:]


def test_pulumi_destroy_removes_the_stacks_jobs_and_keeps_the_live_app(e2e):
    namespace = fresh_stack(e2e, "destroy")
    running = pod_uids(e2e, namespace, "backend")

    e2e.pulumi("destroy", "--yes")

    assert e2e.apps.read_namespaced_deployment("backend", namespace).metadata.name == "backend"
    assert e2e.core.read_namespaced_service("frontend", namespace).metadata.name == "frontend"
    assert pod_uids(e2e, namespace, "backend") == running
    assert e2e.job("db-migrations") is None
    assert [c.metadata.name for c in e2e.core.list_namespaced_config_map(namespace).items
            if c.metadata.name.startswith("db-migrations")] == []


# -- migrate and status ----------------------------------------------------------------------


def backend_image_with(e2e, tag: str, files: dict[str, str]) -> None:
    """A backend image `tag` with the app-like folders and `files` more in /app/migrations."""
    e2e.images.node.import_images([image_builds.backend(tag, files, FIXTURE_FOLDERS)])


def test_migrate_runs_the_migrations_of_a_tag_and_leaves_the_backend_then_up_finds_nothing_pending(e2e):
    namespace = fresh_stack(e2e, "migrate")
    backend_image_with(e2e, "migrate-2", {NEW: "ALTER TABLE tenants ADD COLUMN sso_domain text;\n"})
    stack_file = (e2e.project / "Pulumi.migrate.yaml").read_text()
    running = pod_uids(e2e, namespace, "backend")

    migrated = e2e.deploy("migrate", "--backend-tag", "migrate-2")

    assert migrated.returncode == 0, output_of(migrated)[-6000:]
    assert f"the migration Job ran and applied 1: {NEW}" in migrated.stdout
    assert NEW in e2e.applied()
    backend = e2e.apps.read_namespaced_deployment("backend", namespace)
    assert backend.spec.template.spec.containers[0].image.endswith(":migrate-1")
    assert pod_uids(e2e, namespace, "backend") == running
    assert (e2e.project / "Pulumi.migrate.yaml").read_text() == stack_file

    up = e2e.deploy("up", "--backend-tag", "migrate-2")
    assert up.returncode == 0, output_of(up)
    assert "applied 1" not in up.stdout  # nothing was pending: the Job did not run, or applied 0
    assert e2e.apps.read_namespaced_deployment("backend", namespace).spec.template.spec.containers[0].image.endswith(
        ":migrate-2")


def test_status_reports_the_live_history_against_the_images_files_and_changes_nothing(e2e):
    namespace = fresh_stack(e2e, "status")
    # A file the image holds that the database has not recorded: pending.
    e2e.query("DELETE FROM schema_migrations WHERE migration_name = '20251126000001_product_scores.sql'")
    before = e2e.query("SELECT * FROM schema_migrations ORDER BY 1")

    status = e2e.deploy("status")

    assert status.returncode == 0, output_of(status)
    assert "20251121000001_create_tenants.sql" in status.stdout
    pending = [line for line in status.stdout.splitlines() if "20251126000001_product_scores.sql" in line]
    assert pending and "pending" in pending[0].lower()
    assert e2e.query("SELECT * FROM schema_migrations ORDER BY 1") == before
    assert [j.metadata.name for j in e2e.batch.list_namespaced_job(namespace).items
            if j.metadata.name.startswith("db-migrations-status")] == []


# -- the pull-request preview's credential ---------------------------------------------------


def preview_kubeconfig(e2e, namespace: str) -> str:
    """Apply .github/access/preview.yaml to the namespace and write a kubeconfig of its account."""
    for document in yaml.safe_load_all((ROOT / ".github" / "access" / "preview.yaml").read_text()):
        text = json.dumps(document).replace("20890-ideaforge-ai-dev-58a50", namespace)
        document = json.loads(text)
        kind = document["kind"]
        if kind == "ServiceAccount":
            e2e.core.create_namespaced_service_account(namespace, document)
        elif kind == "Role":
            client.RbacAuthorizationV1Api(e2e.kube).create_namespaced_role(namespace, document)
        elif kind == "RoleBinding":
            client.RbacAuthorizationV1Api(e2e.kube).create_namespaced_role_binding(namespace, document)
        else:
            admission = client.AdmissionregistrationV1Api(e2e.kube)
            create = admission.create_validating_admission_policy if kind == "ValidatingAdmissionPolicy" else \
                admission.create_validating_admission_policy_binding
            with contextlib.suppress(client.exceptions.ApiException):  # cluster-wide: once per run
                create(document)
    token = e2e.core.create_namespaced_service_account_token(
        "ideaforge-preview", namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    config = yaml.safe_load(e2e.plane.kubeconfig.read_text())
    config["users"] = [{"name": "preview", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "preview"
    path = e2e.project.parent / f"preview-{namespace}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def deploy_as(e2e, kubeconfig: str, *args: str):
    return subprocess.run([sys.executable, "deploy.py", *args, "--stack", e2e.stack], cwd=e2e.project,
                          env=dict(e2e.env, KUBECONFIG=kubeconfig), capture_output=True, text=True, timeout=900)


def test_the_preview_credential_previews_but_cannot_change_anything_nor_read_secrets(e2e):
    namespace = fresh_stack(e2e, "preview-access", ("readSecrets", "false"))
    kubeconfig = preview_kubeconfig(e2e, namespace)
    e2e.config("backendImageTag", "e2e-1c")  # a pull request's change

    preview = deploy_as(e2e, kubeconfig, "preview")
    assert preview.returncode == 0, output_of(preview)[-6000:]
    assert "backend:e2e-1c" in preview.stdout

    up = deploy_as(e2e, kubeconfig, "up")
    assert up.returncode == 2, output_of(up)[-6000:]
    assert "forbidden" in up.stderr.lower()
    backend = e2e.apps.read_namespaced_deployment("backend", namespace)
    assert backend.spec.template.spec.containers[0].image.endswith(":preview-access-1")

    as_preview = _api_client(kubeconfig)
    apps = client.AppsV1Api(as_preview)
    change = {"metadata": {"labels": {"changed-by": "a-pull-request"}}}
    apps.patch_namespaced_deployment("backend", namespace, change, dry_run="All")  # what a preview sends
    try:
        apps.patch_namespaced_deployment("backend", namespace, change)
        raise AssertionError("the preview credential changed the Deployment")
    except client.exceptions.ApiException as exc:
        assert "may only send dry runs" in str(exc.body), exc.body
    try:
        client.CoreV1Api(as_preview).read_namespaced_secret("ideaforge-ai-secrets", namespace)
        raise AssertionError("the preview credential read a Secret")
    except client.exceptions.ApiException as exc:
        assert exc.status == 403
    exported = e2e.pulumi("stack", "export").stdout  # what a preview's Pulumi token can read
    assert base64.b64encode(PASSWORD.encode()).decode() not in exported
    assert [r for r in state_resources(e2e) if r["type"] == "kubernetes:core/v1:Secret"] == []


def _api_client(kubeconfig: str):
    from kubernetes import config

    return config.new_client_from_config(kubeconfig)
