"""Stand-ins for what deploy.py talks to, for make-test level tests of its flows: a stack with
the Automation API's surface (recording each call and the config file it ran with), and a
cluster holding objects as the official Kubernetes client's models. They decide nothing a real
cluster would decide differently for these tests: which objects exist, what they contain, and
the calls made; field ownership and rollouts are the end-to-end tier's (tests/e2e)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from deploytool import cli

STACK_FILE = """\
# the dev stack (test copy)
config:
  ideaforge-ai:namespace: ns-dev
  ideaforge-ai:backendImageTag: 24f45fd
  ideaforge-ai:frontendImageTag: 24f45fd
""" + textwrap.indent(yaml.safe_dump(  # the app settings the program writes to its ConfigMap, as dev has them
    {"ideaforge-ai:app": yaml.safe_load((Path(__file__).resolve().parent.parent / "Pulumi.dev.yaml").read_text())
     ["config"]["ideaforge-ai:app"]}, sort_keys=False), "  ")


class FakeStack:
    def __init__(self, project: Path, name="dev", fail_with=None, outputs=None, previous=None, state=None,
                 fail_on_up: Optional[int] = None, events=()):
        self.project, self.name = project, name
        self.calls: list[tuple] = []
        self.fail_with, self.fail_on_up = fail_with, fail_on_up
        self._outputs = outputs or {}
        self._previous = previous or {}
        self.state = list(state or [])
        self.events = list(events)
        self.ups = 0
        self.exports = 0

    def _config_seen(self, config_file: Optional[str]) -> dict:
        path = Path(config_file) if config_file else self.project / f"Pulumi.{self.name}.yaml"
        return yaml.safe_load(path.read_text())["config"]

    def export_stack(self):
        # The outputs of the last update are the root resource's, as in `pulumi stack export`.
        self.exports += 1
        root = {"type": "pulumi:pulumi:Stack", "outputs": self._previous}
        return SimpleNamespace(deployment={"resources": [root, *self.state]})

    def refresh(self, on_output, color, **kw):
        self.calls.append(("refresh",))
        on_output("Refreshing (dev):\n")

    def preview(self, on_output, color, diff, on_event=None, config_file=None, refresh=False):
        self.calls.append(("preview", self._config_seen(config_file), config_file, refresh))
        on_output("Previewing update (dev):\n")
        for event in self.events:
            if on_event:
                on_event(event)
        return SimpleNamespace(change_summary={"same": 9, "replace": 1})

    def up(self, on_output, color, show_secrets, config_file=None, target=None, replace=None):
        self.ups += 1
        self.calls.append(("up", self._config_seen(config_file), config_file, target, replace, show_secrets))
        on_output("Updating (dev):\n")
        on_output("  kubernetes:batch/v1:Job db-migrations replacing\n")
        if self.fail_with and (self.fail_on_up is None or self.fail_on_up == self.ups):
            raise self.fail_with
        return SimpleNamespace(summary=SimpleNamespace(resource_changes={"same": 8, "replace": 1, "update": 1}),
                               outputs={k: SimpleNamespace(value=v) for k, v in self._outputs.items()})

    def destroy(self, on_output, color):
        self.calls.append(("destroy",))
        self.state = []


def not_found():
    return ApiException(status=404, reason="Not Found")


class FakeCluster:
    """Objects by (kind, name); each API group's reads, writes and deletes."""

    def __init__(self, objects: Optional[dict] = None, pods=(), logs=None, jobs_seen=None, events=()):
        self.objects = dict(objects or {})
        self.events = list(events)
        self.pods, self.logs = list(pods), dict(logs or {})
        self.jobs_seen = {k: list(v) for k, v in (jobs_seen or {}).items()}  # successive reads of a Job
        self.calls: list[tuple] = []
        self.context = None
        self.core = self.apps = self.batch = self.autoscaling = self.networking = self

    def _read(self, kind, name):
        if kind == "Job" and name in self.jobs_seen:
            seen = self.jobs_seen[name]
            value = seen.pop(0) if len(seen) > 1 else seen[0]
            if value is None:
                raise not_found()
            return value
        if (kind, name) not in self.objects:
            raise not_found()
        return self.objects[(kind, name)]

    def read_namespaced_deployment(self, name, namespace):
        return self._read("Deployment", name)

    def read_namespaced_service(self, name, namespace):
        return self._read("Service", name)

    def read_namespaced_horizontal_pod_autoscaler(self, name, namespace):
        return self._read("HorizontalPodAutoscaler", name)

    def read_namespaced_ingress(self, name, namespace):
        return self._read("Ingress", name)

    def read_namespaced_config_map(self, name, namespace):
        return self._read("ConfigMap", name)

    def read_namespaced_secret(self, name, namespace):
        return self._read("Secret", name)

    def read_namespaced_job(self, name, namespace):
        return self._read("Job", name)

    def list_namespaced_ingress(self, namespace):
        return SimpleNamespace(items=[v for (kind, _), v in self.objects.items() if kind == "Ingress"])

    def delete_namespaced_job(self, name, namespace, propagation_policy=None):
        self.calls.append(("delete", "Job", name))
        self.objects.pop(("Job", name), None)

    def _patch(self, kind, name, body, **kw):
        self.calls.append(("patch", kind, name, body, kw))

    def patch_namespaced_deployment(self, name, namespace, body, **kw):
        self._patch("Deployment", name, body, **kw)

    def patch_namespaced_service(self, name, namespace, body, **kw):
        self._patch("Service", name, body, **kw)

    def patch_namespaced_horizontal_pod_autoscaler(self, name, namespace, body, **kw):
        self._patch("HorizontalPodAutoscaler", name, body, **kw)

    def patch_namespaced_ingress(self, name, namespace, body, **kw):
        self._patch("Ingress", name, body, **kw)

    def patch_namespaced_config_map(self, name, namespace, body, **kw):
        self._patch("ConfigMap", name, body, **kw)

    def list_namespaced_pod(self, namespace, label_selector):
        key, value = label_selector.split("=")
        return client.V1PodList(items=[p for p in self.pods if (p.metadata.labels or {}).get(key) == value])

    def read_namespaced_pod_log(self, name, namespace, container, tail_lines=None):
        return self.logs[name]

    def list_namespaced_event(self, namespace, field_selector):
        name = field_selector.split("=")[1]
        return client.CoreV1EventList(items=[e for e in self.events if e.involved_object.name == name])


def deployment(name, replicas, managers=()):
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, resource_version="7", managed_fields=[
            client.V1ManagedFieldsEntry(manager=m, operation=op, api_version="apps/v1", fields_type="FieldsV1",
                                        fields_v1=fields) for m, op, fields in managers]),
        spec=client.V1DeploymentSpec(replicas=replicas, selector=client.V1LabelSelector(match_labels={"app": name}),
                                     template=client.V1PodTemplateSpec()))


def service(name):
    return client.V1Service(metadata=client.V1ObjectMeta(name=name, resource_version="3"))


def hpa(name, low, high, target=None):
    return client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name=f"{name}-hpa"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            min_replicas=low, max_replicas=high,
            scale_target_ref=client.V2CrossVersionObjectReference(kind="Deployment", name=target or name)))


def ingress(name, hosts, ingress_class, address=None):
    status = client.V1IngressStatus(load_balancer=client.V1IngressLoadBalancerStatus(
        ingress=[client.V1IngressLoadBalancerIngress(hostname=address)] if address else None))
    return client.V1Ingress(metadata=client.V1ObjectMeta(name=name, annotations={"kubernetes.io/ingress.class": ingress_class}),
                            spec=client.V1IngressSpec(rules=[client.V1IngressRule(host=h) for h in hosts]),
                            status=status)


def secret(name, keys):
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name), data={k: "eA==" for k in keys})


def app_secret(without: tuple[str, ...] = ()):
    """The app Secret with the keys `make eks-load-secrets` puts in it (from the app's files)."""
    from tests import app_files

    return secret("ideaforge-ai-secrets", [k for k in app_files.secret_keys() if k not in without])


def old_flow(extra=None) -> dict:
    """The namespace as `make eks-deploy` leaves it (names of the dev stack's defaults)."""
    kubectl = (("kubectl-client-side-apply", "Update", {"f:spec": {"f:replicas": {}}}),)
    objects = {
        ("Deployment", "backend"): deployment("backend", 5, kubectl),
        ("Deployment", "frontend"): deployment("frontend", 3, kubectl),
        ("Service", "backend"): service("backend"), ("Service", "frontend"): service("frontend"),
        ("HorizontalPodAutoscaler", "backend-hpa"): hpa("backend", 5, 20),
        ("HorizontalPodAutoscaler", "frontend-hpa"): hpa("frontend", 3, 10),
        ("Ingress", "ideaforge-ai-ingress-nginx"): ingress("ideaforge-ai-ingress-nginx", [], "nginx"),
        ("Secret", "ideaforge-ai-secrets"): app_secret(),
    }
    objects.update(extra or {})
    return objects


def state_of(*refs, retain=True) -> list[dict]:
    types = {v: k for k, v in cli.LIVE_APP_TYPES.items()}
    return [{"type": types[kind], "urn": f"urn:pulumi:dev::ideaforge-ai::x${types[kind]}::{name}",
             "id": f"ns-dev/{name}", "retainOnDelete": retain} for kind, name in refs]


def job_state(image="ghcr.io/soumantrivedi/ideaforge-ai/backend:24f45fd") -> dict:
    return {"type": "kubernetes:batch/v1:Job", "id": "ns-dev/db-migrations",
            "urn": "urn:pulumi:dev::ideaforge-ai::ideaforge:migrations:MigrationJob$kubernetes:batch/v1:Job::db-migrations",
            "inputs": {"metadata": {"name": "db-migrations"}, "spec": {"template": {"spec": {
                "containers": [{"name": "migrate", "image": image, "command": ["python", "-c", "launch", "/r.pyz", "abc"],
                                "env": [{"name": "MIGRATIONS_DIR", "value": "/app/migrations"}]}],
                "volumes": [{"name": "runner", "configMap": {"name": "db-migrations-runner"}}]}}}}}


class Harness:
    def __init__(self, tmp_path: Path, stack_text: str = STACK_FILE):
        self.project = tmp_path
        self.path = tmp_path / "Pulumi.dev.yaml"
        self.path.write_text(stack_text)

    def stack_text(self) -> str:
        return self.path.read_text()

    def run(self, argv, stack=None, cluster=None, **overrides):
        stack = stack if stack is not None else FakeStack(self.project)
        cluster = cluster if cluster is not None else FakeCluster()
        seen = {}
        defaults = dict(project_dir=self.project, require_cli=lambda: None, open_stack=lambda name: stack,
                        require_reachable=lambda context: seen.__setitem__("reachable", context),
                        connect=lambda context: (seen.__setitem__("cluster", context), cluster)[1],
                        current_context=lambda: "laptop", checks=[], up_checks=[])
        defaults.update(overrides)
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(argv, tools=cli.Tools(**defaults), out=out, err=err)
        return SimpleNamespace(code=code, out=out.getvalue(), err=err.getvalue(), stack=stack, cluster=cluster,
                               seen=seen)


def kubeconfig(path: Path, port: int) -> Path:
    path.write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}}}]
        users: [{{name: u, user: {{token: t}}}}]
        contexts: [{{name: local, context: {{cluster: c, user: u}}}}]
        current-context: local
        """))
    return path
