"""The end-to-end tier: the real Pulumi CLI and Kubernetes provider, a real control plane,
PostgreSQL and Redis on 127.0.0.1, and a node agent that runs pods as local processes.

Run with `make e2e`. The tools are built (once, then cached) by e2e/build-tools.sh.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import yaml
from kubernetes import client, config as kube_config

from runner.scratch import ScratchPostgres, free_port
from tests import backend_image
from tests.e2e.controlplane import ControlPlane
from tests.e2e.node_agent import Image, NodeAgent

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "ideaforge-e2e"
PASSWORD = "e2e-Secret/p@ss"
PASSPHRASE = "e2e-passphrase"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(900))  # a deploy takes its time; a hang still ends


@dataclass
class Tools:
    bin_dirs: list[Path]
    pulumi_home: Path

    @property
    def kubernetes_bin(self) -> Path:
        return next(d for d in self.bin_dirs if (d / "kube-apiserver").exists())

    @property
    def path(self) -> str:
        # Not the provider's directory: the engine takes the plugin installed in PULUMI_HOME.
        dirs = [str(d) for d in self.bin_dirs if not (d / "pulumi-resource-kubernetes").exists()]
        return ":".join([*dirs, os.environ["PATH"]])


@pytest.fixture(scope="session")
def tools(tmp_path_factory) -> Tools:
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
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"), tools.kubernetes_bin)
    try:
        plane.start()
    except Exception:
        plane.stop()
        raise
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def postgres():
    server = ScratchPostgres().start()
    admin = psycopg2.connect(server.url())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("CREATE ROLE agentic_pm LOGIN PASSWORD %s", (PASSWORD,))
        cursor.execute("CREATE DATABASE agentic_pm_db OWNER agentic_pm")
    admin.close()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis(tmp_path_factory):
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip() != "PONG":
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def kube(control_plane):
    api = kube_config.new_client_from_config(str(control_plane.kubeconfig))
    yield api
    api.close()


class Images:
    """Image -> local program. The backend image of each tag has its own migration folders
    (`backend_tags`); by default the app-like fixtures of tests/fixtures/app_image."""

    def __init__(self):
        self.backend_tags: dict[str, dict[str, Path]] = {}

    def __call__(self, reference: str) -> Image:
        if "/backend:" in reference:
            tag = reference.rsplit(":", 1)[1]
            folders = self.backend_tags.get(tag, backend_image.IMAGE_DIRS)
            return Image(f"{backend_image.python_bin_dir()}:/usr/bin:/bin", dict(folders))
        return Image("/usr/local/bin:/usr/bin:/bin")


@pytest.fixture(scope="session")
def images():
    return Images()


@pytest.fixture(scope="session")
def node(kube, control_plane, images, tmp_path_factory):
    agent = NodeAgent(kube, tmp_path_factory.mktemp("node"), control_plane.certs,
                      hosts={"postgres-ha-primary": "127.0.0.1", "redis": "127.0.0.1"}, images=images).start()
    yield agent
    agent.stop()
    assert agent.errors == [], "\n".join(agent.errors)


class E2E:
    """One project checkout and one stack `e2e`, with what the tests need to drive and observe them."""

    def __init__(self, tools: Tools, plane: ControlPlane, kube, node: NodeAgent, postgres: ScratchPostgres,
                 redis_port: int, work: Path):
        self.tools, self.plane, self.kube, self.node = tools, plane, kube, node
        self.postgres, self.redis_port = postgres, redis_port
        self.project = work / "project"
        self.stack = "e2e"
        self.namespace = NAMESPACE
        self.database_name = "agentic_pm_db"
        self.state = work / "state"
        self.state.mkdir()
        shutil.copytree(ROOT, self.project, ignore=shutil.ignore_patterns(
            ".git", ".venv", "venv", "node_modules", "tests", ".pytest_cache", "__pycache__", "*.pyc", ".bench"))
        self.core = client.CoreV1Api(kube)
        self.apps = client.AppsV1Api(kube)
        self.batch = client.BatchV1Api(kube)

    @property
    def env(self) -> dict:
        return dict(os.environ, PATH=self.tools.path, PULUMI_HOME=str(self.tools.pulumi_home),
                    PULUMI_BACKEND_URL=f"file://{self.state}", PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
                    PULUMI_SKIP_UPDATE_CHECK="true", PULUMI_DIY_BACKEND_NO_LEGACY_WARNING="true",
                    KUBECONFIG=str(self.plane.kubeconfig), PYTHONUNBUFFERED="1")

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["pulumi", *args, "--stack", self.stack, "--non-interactive"], cwd=self.project,
                                env=self.env, capture_output=True, text=True, timeout=600)
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
        with contextlib.closing(psycopg2.connect(self.postgres.url())) as admin:
            admin.autocommit = True
            admin.cursor().execute(f'CREATE DATABASE "{database}" OWNER agentic_pm')

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

    def prepare_namespace(self) -> None:
        """What the app team's tooling keeps in the namespace (its Secret, the pull secret), and
        the test servers' addresses in the stack's app settings (the app ConfigMap's data)."""
        namespace = self.namespace
        self.set_app_config(POSTGRES_PORT=str(self.postgres.port), POSTGRES_DB=self.database_name,
                            REDIS_URL=f"redis://redis:{self.redis_port}/0")
        self.core.create_namespace({"metadata": {"name": namespace}})
        self.core.create_namespaced_secret(namespace, {"metadata": {"name": "ideaforge-ai-secrets"}, "stringData": {
            "POSTGRES_PASSWORD": PASSWORD, "SESSION_SECRET": "e2e-session-secret",
            "API_KEY_ENCRYPTION_KEY": "e2e-api-key-encryption-key"}})
        self.core.create_namespaced_secret(namespace, {"metadata": {"name": "ghcr-secret"},
                                                       "type": "kubernetes.io/dockerconfigjson",
                                                       "stringData": {".dockerconfigjson": '{"auths": {}}'}})
        deadline = time.monotonic() + 30  # the service-account controller creates `default`
        while not self.core.list_namespaced_service_account(namespace).items:
            assert time.monotonic() < deadline, "no default ServiceAccount in the namespace"
            time.sleep(0.2)

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

    def job(self, name: str):
        try:
            return self.batch.read_namespaced_job(name, self.namespace)
        except client.exceptions.ApiException as exc:
            if exc.status == 404:
                return None
            raise


@pytest.fixture(scope="module")
def e2e(tools, control_plane, kube, node, images, postgres, redis, tmp_path_factory):
    helper = E2E(tools, control_plane, kube, node, postgres, redis, tmp_path_factory.mktemp("e2e"))
    helper.images = images
    return helper
