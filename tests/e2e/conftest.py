"""The end-to-end tier: the real Pulumi CLI and Kubernetes provider against a cluster made of
real components: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a kubelet
with Debian's containerd and runc, kube-proxy and CoreDNS, on a node in namespaces of the
run's own (e2e/isolate.sh). PostgreSQL and Redis run beside the node, in the same network
namespace, behind the Services the app's namespace has (postgres-ha-primary, redis).

Run with `make e2e`. The tools are built (once, then cached) by e2e/build-tools.sh, the
images by tests/e2e/images.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psycopg2
import pytest
import yaml
from kubernetes import client

from runner.scratch import ScratchPostgres, free_port
from tests import backend_image
from tests.e2e import images as image_builds
from tests.e2e.controlplane import ControlPlane
from tests.e2e.node import Node, node_ip, require_isolation

ROOT = Path(__file__).resolve().parents[2]
APP = image_builds.APP
NAMESPACE = "ideaforge-e2e"
PASSWORD = "e2e-Secret/p@ss"
PASSPHRASE = "e2e-passphrase"
FIRST_TAG = "e2e-1"
# App-like migration folders (tests/fixtures/app_image) for stacks on an empty database: the
# app's own history cannot build one (README, "What was and was not run end to end").
FIXTURE_FOLDERS = (backend_image.IMAGE_DIRS["/app/migrations"], backend_image.IMAGE_DIRS["/app/migrations-local"])


TIMINGS: list[str] = []


def record_timing(line: str) -> None:
    """A measurement for the run's summary (BENCHMARKS.md takes its figures from there)."""
    TIMINGS.append(line)


def pytest_terminal_summary(terminalreporter):
    # pytest loads this file as `conftest`; the scenarios import it as `tests.e2e.conftest`: two
    # module objects, each with its own list.
    imported = sys.modules.get("tests.e2e.conftest")
    lines = TIMINGS + (imported.TIMINGS if imported is not None and imported.TIMINGS is not TIMINGS else [])
    if lines:
        terminalreporter.section("e2e timings")
        for line in lines:
            terminalreporter.write_line(line)


# Minutes each part of the tier took on the real node (BENCHMARKS.md, "The e2e tier on the real
# node"), to share the parts among side-by-side workers (E2E_WORKERS, e2e/isolate.sh). A part is
# a module, or one scenario of a module whose scenarios each build their own state
# (STANDS_ALONE = True: any worker can run any of them); unlisted: 5.
MINUTES = {"test_cluster_failures": 15, "test_deploy": 13, "test_cli": 6, "test_live_namespace": 6,
           "test_take_over": 5, "test_scale": 4.5,
           "test_operations::test_hand_back_leaves_the_app_running_for_the_old_flow_which_can_deploy_again": 6,
           "test_operations::test_a_take_over_that_stops_at_the_ingress_converges_when_run_again": 5,
           "test_operations::test_pods_roll_once_during_a_take_over": 4.5,
           "test_operations::test_the_take_over_pre_flight_stops_on_a_database_it_cannot_read_and_changes_nothing": 4.5,
           "test_operations::test_migrate_runs_the_migrations_of_a_tag_and_leaves_the_backend_then_up_finds_nothing_pending": 3,
           "test_operations::test_the_preview_credential_previews_but_cannot_change_anything_nor_read_secrets": 2,
           "test_operations::test_status_reports_the_live_history_against_the_images_files_and_changes_nothing": 2,
           "test_operations::test_pulumi_destroy_removes_the_stacks_jobs_and_keeps_the_live_app": 2}


def part_of(item) -> str:
    module = item.module.__name__.rsplit(".", 1)[-1]
    return f"{module}::{item.originalname}" if getattr(item.module, "STANDS_ALONE", False) else module


def shares(parts: list[str], workers: int) -> dict[str, int]:
    """Part -> worker (1..workers): the longest first, each to the worker with the least so far."""
    load, given = [0.0] * workers, {}
    for part in sorted(parts, key=lambda p: (-MINUTES.get(p, 5), p)):
        worker = min(range(workers), key=lambda w: (load[w], w))
        load[worker] += MINUTES.get(part, 5)
        given[part] = worker + 1
    return given


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(1200))  # a deploy takes its time; a hang still ends
    workers, me = int(os.environ.get("E2E_WORKERS", "1")), int(os.environ.get("E2E_WORKER", "1"))
    if workers > 1:
        given = shares(sorted({part_of(item) for item in items}), workers)
        mine = [item for item in items if given[part_of(item)] == me]
        config.hook.pytest_deselected(items=[item for item in items if item not in mine])
        config.stash[IDLE] = bool(items) and not mine
        items[:] = mine


IDLE = pytest.StashKey[bool]()


def pytest_sessionfinish(session, exitstatus):
    # A worker the shares left without a scenario (a run of a few, -k) has nothing to fail;
    # a selection that matched nothing at all still ends with pytest's "no tests ran".
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(IDLE, False):
        session.exitstatus = pytest.ExitCode.OK


@dataclass
class Tools:
    bin_dirs: list[Path]
    pulumi_home: Path

    def dir_with(self, binary: str) -> Path:
        return next(d for d in self.bin_dirs if (d / binary).exists())

    @property
    def kubernetes_bin(self) -> Path:
        return self.dir_with("kube-apiserver")

    @property
    def path(self) -> str:
        # Not the provider's directory: the engine takes the plugin installed in PULUMI_HOME.
        dirs = [str(d) for d in self.bin_dirs if not (d / "pulumi-resource-kubernetes").exists()]
        return ":".join([*dirs, os.environ["PATH"]])


@pytest.fixture(scope="session")
def tools(tmp_path_factory) -> Tools:
    require_isolation()
    built = subprocess.run([str(ROOT / "e2e" / "build-tools.sh")], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"e2e/build-tools.sh failed:\n{built.stderr[-4000:]}")
    bin_dirs = [Path(line) for line in built.stdout.split()]
    home = tmp_path_factory.mktemp("pulumi-home")
    provider = next(d / "pulumi-resource-kubernetes" for d in bin_dirs if (d / "pulumi-resource-kubernetes").exists())
    version = provider.parent.parent.name.rsplit("-", 1)[1]
    pulumi = next(d / "pulumi" for d in bin_dirs if (d / "pulumi").exists())
    # Registered from the file, so the engine never tries to download a plugin.
    subprocess.run([str(pulumi), "plugin", "install", "resource", "kubernetes", version, "--file", str(provider)],
                   env=dict(os.environ, PULUMI_HOME=str(home)), check=True, capture_output=True)
    return Tools(bin_dirs, home)


@pytest.fixture(scope="session")
def control_plane(tools, tmp_path_factory):
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"), tools.kubernetes_bin, node_ip())
    try:
        plane.start()
    except Exception:
        plane.stop()
        raise
    yield plane
    plane.stop()


class Images:
    """The images of the run: built from Debian packages here (tests/e2e/images.py) and imported
    into the node's containerd. `backend(tag, files)` makes a later backend tag whose
    /app/migrations holds these files more than the app's."""

    def __init__(self, node: Node):
        self.node = node

    def backend(self, tag: str, files: Optional[dict[str, str]] = None) -> str:
        image = image_builds.backend(tag, files)
        self.node.import_images([image])
        return image.reference

    def frontend(self, tag: str) -> str:
        image = image_builds.frontend(tag)
        self.node.import_images([image])
        return image.reference


def first_images(tools: Tools) -> list[image_builds.Image]:
    return [
        image_builds.backend(FIRST_TAG, None, FIXTURE_FOLDERS), image_builds.frontend(FIRST_TAG), image_builds.frontend("e2e-1b"),
        image_builds.tool(image_builds.POSTGRES_CLIENT_IMAGE), image_builds.tool(image_builds.REDIS_CLIENT_IMAGE),
        image_builds.tool(image_builds.BUSYBOX_IMAGE), image_builds.pause(),
        image_builds.coredns(tools.dir_with("coredns") / "coredns"),
    ]


@pytest.fixture(scope="session")
def node(tools, control_plane, tmp_path_factory):
    started = time.monotonic()
    built = first_images(tools)
    build_seconds = time.monotonic() - started
    agent = Node(tmp_path_factory.mktemp("node"), control_plane, tools.kubernetes_bin, tools.dir_with("coredns"))
    try:
        agent.start(built)
    except Exception:
        agent.stop()
        raise
    record_timing(f"node: images assembled in {build_seconds:.1f} s (cached layers), imported into containerd in "
                  f"{agent.image_import_seconds:.1f} s; node Ready with CoreDNS {time.monotonic() - started:.1f} s "
                  "after the start")
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def images(node):
    return Images(node)


class NodePostgres(ScratchPostgres):
    """The run's PostgreSQL, reachable from the pods on the node's address; connections from
    there log in with a password (scram-sha-256), as they do to the app's server, while the
    tests connect locally as the superuser."""

    def start(self) -> "NodePostgres":
        if not (self.data / "PG_VERSION").exists():
            self.initdb()
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all 0.0.0.0/0 scram-sha-256\n")
        options = f"-h 127.0.0.1,{node_ip()} -p {self.port} -k '' -c max_connections=300 -F -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "-t", "60",
                  "start")
        return self


@pytest.fixture(scope="session")
def postgres():
    require_isolation()
    server = NodePostgres().start()
    admin = psycopg2.connect(server.url())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("CREATE ROLE agentic_pm LOGIN PASSWORD %s", (PASSWORD,))
        cursor.execute("CREATE DATABASE agentic_pm_db OWNER agentic_pm")
    admin.close()
    yield server
    server.cleanup()


class Redis:
    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "Redis":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", node_ip(), "--protected-mode", "no",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "PING"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis(tmp_path_factory):
    require_isolation()
    server = Redis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kube(control_plane):
    return control_plane.api


def app_documents(name: str) -> list[dict]:
    """The documents of one of the app's k8s/eks manifests."""
    return [d for d in yaml.safe_load_all((APP / "k8s" / "eks" / name).read_text()) if d]


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as `kubectl create secret --from-env-file` reads them."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            found[key.strip()] = value
    return found


class E2E:
    """One project checkout and one stack `e2e`, with what the tests need to drive and observe them."""

    def __init__(self, tools: Tools, plane: ControlPlane, kube, node: Node, postgres: NodePostgres,
                 redis: Redis, images: Images, work: Path):
        self.tools, self.plane, self.kube, self.node = tools, plane, kube, node
        self.postgres, self.redis, self.images = postgres, redis, images
        self.redis_port = redis.port
        self.project = work / "project"
        self.stack = "e2e"
        self.namespace = NAMESPACE
        self.database_name = "agentic_pm_db"
        self.state = work / "state"
        self.state.mkdir()
        shutil.copytree(ROOT, self.project, ignore=shutil.ignore_patterns(
            ".git", ".venv", "venv", "node_modules", "tests", ".pytest_cache", "__pycache__", "*.pyc", ".bench"))
        # runtime.options.virtualenv as shipped (`venv`): the project's own environment.
        (self.project / "venv").symlink_to(Path(sys.prefix))
        self.made_namespaces: list[str] = []
        self.core = client.CoreV1Api(kube)
        self.apps = client.AppsV1Api(kube)
        self.batch = client.BatchV1Api(kube)
        self.networking = client.NetworkingV1Api(kube)

    @property
    def env(self) -> dict:
        return dict(os.environ, PATH=self.tools.path, PULUMI_HOME=str(self.tools.pulumi_home),
                    PULUMI_BACKEND_URL=f"file://{self.state}", PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
                    PULUMI_SKIP_UPDATE_CHECK="true", PULUMI_DIY_BACKEND_NO_LEGACY_WARNING="true",
                    KUBECONFIG=str(self.plane.kubeconfig), PYTHONUNBUFFERED="1",
                    # pip inside the run's network (no way out): the wheels `make e2e` fetched.
                    PIP_NO_INDEX="1", PIP_FIND_LINKS=os.environ.get("E2E_WHEELS", ""))

    def pulumi(self, *args: str, check: bool = True, timeout: float = 900,
               env: Optional[dict] = None) -> subprocess.CompletedProcess:
        result = subprocess.run(["pulumi", *args, "--stack", self.stack, "--non-interactive"], cwd=self.project,
                                env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def deploy(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "deploy.py", *args, "--stack", self.stack], cwd=self.project,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def spawn_deploy(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "deploy.py", *args, "--stack", self.stack], cwd=self.project,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def config(self, key: str, value: str, path: bool = False) -> None:
        self.pulumi("config", "set", *(["--path"] if path else []), key, value)

    def use_stack(self, name: str, namespace: str, database: str) -> None:
        """Another stack, in another namespace and database, configured as Pulumi.e2e.yaml otherwise."""
        config = yaml.safe_load((self.project / "Pulumi.e2e.yaml").read_text())
        config["config"]["ideaforge-ai:namespace"] = namespace
        (self.project / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(config))
        self.stack, self.namespace, self.database_name = name, namespace, database
        self.create_database(database)

    def create_database(self, database: str) -> None:
        with contextlib.closing(psycopg2.connect(self.postgres.url())) as admin:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if not cursor.fetchall():
                    cursor.execute(f'CREATE DATABASE "{database}" OWNER agentic_pm')

    def init_stack(self) -> None:
        subprocess.run(["pulumi", "stack", "init", self.stack, "--secrets-provider", "passphrase", "--non-interactive"],
                       cwd=self.project, env=self.env, check=True, capture_output=True, text=True)

    def database(self):
        connection = psycopg2.connect(self.postgres.url(self.database_name))
        connection.autocommit = True
        return contextlib.closing(connection)

    def query(self, sql: str, params=None, as_app: bool = False) -> list:
        """As the superuser, or as the app's role (`as_app`), which owns what the app created."""
        with self.database() as connection, connection.cursor() as cursor:
            if as_app:
                cursor.execute("SET ROLE agentic_pm")
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def applied(self) -> list[str]:
        return [r[0] for r in self.query("SELECT migration_name FROM schema_migrations ORDER BY migration_name")]

    # -- the namespace as the app team's tooling leaves it -----------------------------------

    def app_config_map(self) -> dict:
        """k8s/eks/configmap.yaml's ideaforge-ai-config, with what a test machine changes: the
        namespace, the database of this stack and the hosts."""
        manifest = next(d for d in app_documents("configmap.yaml") if d["metadata"]["name"] == "ideaforge-ai-config")
        manifest["metadata"]["namespace"] = self.namespace
        data = manifest["data"]
        data["POSTGRES_DB"] = self.database_name
        for key in ("FRONTEND_URL", "CORS_ORIGINS"):
            data[key] = on_test_domain(data[key])
        return manifest

    def app_secret(self, password: str = PASSWORD) -> dict:
        """ideaforge-ai-secrets as the live namespace holds it: k8s/eks/secrets.yaml's keys (which
        `make eks-deploy` applies), with the values `make eks-load-secrets` loads from env.eks
        (here the app's env.eks.example) and a database password of the test's."""
        manifest = next(d for d in app_documents("secrets.yaml") if d["metadata"]["name"] == "ideaforge-ai-secrets")
        data = {key: str(value) for key, value in manifest["stringData"].items()}
        data.update(env_file(APP / "env.eks.example"))
        data["POSTGRES_PASSWORD"] = password
        data["FRONTEND_URL"], data["CORS_ORIGINS"] = (on_test_domain(data.get(k, "")) for k in ("FRONTEND_URL",
                                                                                              "CORS_ORIGINS"))
        return {"metadata": {"name": "ideaforge-ai-secrets", "namespace": self.namespace}, "type": "Opaque",
                "stringData": data}

    def backing_services(self) -> None:
        """postgres-ha-primary and redis, as the app's namespace has them (k8s/eks: its own
        Postgres and Redis); here they lead to the run's servers beside the node."""
        discovery = client.DiscoveryV1Api(self.kube)
        for name, port, target in (("postgres-ha-primary", 5432, self.postgres.port), ("redis", 6379, self.redis.port)):
            self.core.create_namespaced_service(self.namespace, {
                "metadata": {"name": name},
                "spec": {"ports": [{"name": "tcp", "port": port, "targetPort": target, "protocol": "TCP"}]}})
            discovery.create_namespaced_endpoint_slice(self.namespace, {
                "metadata": {"name": f"{name}-node", "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [node_ip()], "conditions": {"ready": True}}],
                "ports": [{"name": "tcp", "port": target, "protocol": "TCP"}]})

    def prepare_namespace(self) -> None:
        """What the app team's tooling keeps in the namespace (its Secret, the pull secret, the
        database and Redis Services), and the app's settings (k8s/eks/configmap.yaml's data) in
        the stack, which writes the app ConfigMap from them."""
        namespace = self.namespace
        self.set_app_config(**self.app_config_map()["data"])
        self.create_namespace(namespace)
        self.core.create_namespaced_secret(namespace, self.app_secret())
        self.core.create_namespaced_secret(namespace, {"metadata": {"name": "ghcr-secret"},
                                                       "type": "kubernetes.io/dockerconfigjson",
                                                       "stringData": {".dockerconfigjson": '{"auths": {}}'}})
        self.backing_services()
        deadline = time.monotonic() + 30  # the service-account controller creates `default`
        while not self.core.list_namespaced_service_account(namespace).items:
            assert time.monotonic() < deadline, "no default ServiceAccount in the namespace"
            time.sleep(0.2)

    def create_namespace(self, namespace: str) -> None:
        self.core.create_namespace({"metadata": {"name": namespace}})
        self.made_namespaces.append(namespace)

    def remove_namespaces(self, seconds: float = 300) -> None:
        """Delete the namespaces this checkout made, and wait until they are gone: the node has
        room for one stack at the dev stack's memory requests (5 backends at 2Gi), so a
        scenario's pods must be gone before the next scenario's are scheduled."""
        made, self.made_namespaces = self.made_namespaces, []
        for namespace in made:
            try:
                self.core.delete_namespace(namespace)
            except client.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise
        deadline = time.monotonic() + seconds
        while True:
            left = [n for n in made if n in {i.metadata.name for i in self.core.list_namespace().items}]
            if not left:
                return
            assert time.monotonic() < deadline, f"namespaces {left} were not deleted within {seconds:.0f}s"
            time.sleep(1)

    def stack_file(self) -> Path:
        return self.project / f"Pulumi.{self.stack}.yaml"

    def set_app_config(self, **values: str) -> None:
        """Values of the app ConfigMap, written into the stack file as `pulumi config set --path
        app.configData.KEY` would (also before `pulumi stack init`)."""
        document = yaml.safe_load(self.stack_file().read_text())
        app = document["config"].setdefault("ideaforge-ai:app", {})
        app.setdefault("configData", {}).update(values)
        self.stack_file().write_text(yaml.safe_dump(document, sort_keys=False))

    def app_config(self) -> dict:
        """The stack's app settings (app.configData), as the program writes them to the ConfigMap."""
        return yaml.safe_load(self.stack_file().read_text())["config"]["ideaforge-ai:app"]["configData"]

    def pods_of_job(self, job: str) -> list:
        return self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job}").items

    def pods(self, selector: str) -> list:
        return [p for p in self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
                if not p.metadata.deletion_timestamp]

    def job(self, name: str):
        try:
            return self.batch.read_namespaced_job(name, self.namespace)
        except client.exceptions.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def fresh_stack(self, name: str, *settings: tuple[str, str], up: bool = True) -> None:
        """A stack `name` in namespace ideaforge-<name> with database <name>_db, the namespace as
        the app team keeps it, these settings (path keys), a backend image of its own with the
        app-like migration folders, and (up) its first deploy."""
        self.use_stack(name, f"ideaforge-{name}", f"{name}_db")
        self.node.import_images([image_builds.backend(f"{name}-1", None, FIXTURE_FOLDERS)])
        self.prepare_namespace()
        self.init_stack()
        self.config("backendImageTag", f"{name}-1")
        for key, value in settings:
            self.config(key, value, path=True)
        if up:
            first = self.deploy("up")
            assert first.returncode == 0, (first.stdout + first.stderr)[-6000:]
            self.settled()

    def settled(self, seconds: float = 180) -> None:
        """Wait until the web Deployments are as the autoscalers keep them: at least at their
        minimum, every pod Ready and of the current template. A first deploy creates each at one
        replica and ends with its rollout; the autoscaler raises it within its sync period (15 s),
        after the deploy, so a scenario that compares the pods before and after something
        starts from here."""
        autoscaling = client.AutoscalingV2Api(self.kube)
        deadline = time.monotonic() + seconds
        for app in ("backend", "frontend"):
            try:
                low = autoscaling.read_namespaced_horizontal_pod_autoscaler(
                    f"{app}-hpa", self.namespace).spec.min_replicas or 1
            except client.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise
                low = 1  # no autoscaler: the Deployment's own count
            while True:
                deployment = self.apps.read_namespaced_deployment(app, self.namespace)
                status, wanted = deployment.status, deployment.spec.replicas or 0
                if (wanted >= low and status.observed_generation == deployment.metadata.generation
                        and (status.updated_replicas or 0) == (status.ready_replicas or 0) == wanted
                        == len(self.pods(f"app={app}"))):
                    break
                assert time.monotonic() < deadline, f"{app}: {status.ready_replicas} of {wanted} Ready, {low} wanted"
                time.sleep(1)

    def backend_image(self, tag: str, files: Optional[dict[str, str]] = None) -> str:
        """A backend image tag whose /app/migrations holds `files` more than the app's."""
        return self.images.backend(tag, files)


def on_test_domain(text: str) -> str:
    """The app's public hosts, moved to a test domain."""
    return re.sub(r"([a-z0-9-]+)\.cf\.platform\.mckinsey\.cloud", r"\1.e2e.test", text)


@pytest.fixture(scope="module")
def e2e(tools, control_plane, kube, node, images, postgres, redis, tmp_path_factory):
    checkout = E2E(tools, control_plane, kube, node, postgres, redis, images, tmp_path_factory.mktemp("e2e"))
    yield checkout
    checkout.remove_namespaces()
