"""What the live namespace runs, end to end on the real node: the Ingress await policy when no
controller answers (none runs here) and when one does (the test answers in its place), each
workload's env list checked against the live Secret through the real provider, the owned app
ConfigMap and what a change of it (or of the Secret) rolls, and a bounded init wait during a
Redis outage.

The scenarios that only read or change a deployed stack share one (`live`, deployed once per
module by the fixture, so any scenario still runs alone with `-k`); each leaves it deployable.
The missing-key and Redis-outage scenarios have stacks of their own.
"""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client

from tests import app_files


def output_of(result) -> str:
    return result.stdout + result.stderr


def new_stack(e2e, name: str, **config) -> None:
    """A stack `name` in namespace live-<name>, its database and Secret ready, `config` set
    (`--path` keys), nothing deployed yet."""
    e2e.use_stack(name, f"live-{name}", f"live_{name}")
    e2e.prepare_namespace()
    e2e.init_stack()
    for key, value in config.items():
        e2e.config(key, str(value), path=True)


@pytest.fixture(scope="module")
def live(e2e):
    """The shared stack, deployed once: the first `up`'s result."""
    new_stack(e2e, "live")
    first = e2e.deploy("up", timeout=600)
    assert first.returncode == 0, output_of(first)[-6000:]
    yield first
    e2e.remove_namespaces()


@pytest.fixture
def on_live(e2e, live):
    """The scenario runs on the shared stack (a scenario with a stack of its own switched away)."""
    e2e.stack, e2e.namespace, e2e.database_name = "live", "live-live", "live_live"
    return live


def replica_sets(e2e, app: str) -> set[str]:
    return {rs.metadata.uid for rs in e2e.apps.list_namespaced_replica_set(
        e2e.namespace, label_selector=f"app={app}").items}


def ingress(e2e, name: str = "ideaforge-ai-ingress-nginx"):
    return client.NetworkingV1Api(e2e.kube).read_namespaced_ingress(name, e2e.namespace)


def address_of(item) -> list:
    balancer = item.status.load_balancer if item.status else None
    return (balancer.ingress if balancer else None) or []


# -- the Ingress -------------------------------------------------------------------------------


def test_an_ingress_no_controller_answers_does_not_stall_the_deploy(e2e, on_live):
    # No ingress controller runs on this cluster; Pulumi's own Ingress await would have held the
    # first `up` for ten minutes, then failed it.
    assert address_of(ingress(e2e)) == []
    assert e2e.apps.read_namespaced_deployment("frontend", e2e.namespace).status.ready_replicas


def test_an_address_wait_that_runs_out_fails_the_deploy_at_the_ingress(e2e, on_live):
    e2e.config("ingress.awaitAddressSeconds", "20", path=True)
    try:
        up = e2e.deploy("up", timeout=300)

        assert up.returncode == 1, output_of(up)[-6000:]
        assert "ideaforge-ai-ingress-nginx" in output_of(up)
        assert e2e.apps.read_namespaced_deployment("frontend", e2e.namespace).status.ready_replicas
    finally:
        e2e.config("ingress.awaitAddressSeconds", "0", path=True)
    again = e2e.deploy("up", timeout=300)
    assert again.returncode == 0, output_of(again)[-6000:]


def test_an_address_wait_ends_when_the_controller_answers(e2e, on_live):
    networking = client.NetworkingV1Api(e2e.kube)
    namespace = e2e.namespace

    def answer() -> None:
        """What an ingress controller does once it serves the Ingress (none runs here)."""
        time.sleep(5)
        networking.patch_namespaced_ingress_status("ideaforge-ai-ingress-nginx", namespace, {
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})

    e2e.config("ingress.awaitAddressSeconds", "120", path=True)
    controller = threading.Thread(target=answer)
    controller.start()
    try:
        started = time.monotonic()
        up = e2e.deploy("up", timeout=300)
    finally:
        controller.join()
        e2e.config("ingress.awaitAddressSeconds", "0", path=True)

    assert up.returncode == 0, output_of(up)[-6000:]
    assert time.monotonic() - started < 120  # it ended with the answer, not the timeout
    assert address_of(ingress(e2e))


# -- each workload's variables -----------------------------------------------------------------


@pytest.mark.parametrize("app", ["backend", "frontend"])
def test_each_workload_runs_with_exactly_the_variables_of_its_app_manifest(e2e, on_live, app):
    live = e2e.apps.read_namespaced_deployment(app, e2e.namespace)
    env = e2e.kube.sanitize_for_serialization(live.spec.template.spec.containers[0].env)
    assert env == app_files.container_env(app)
    assert live.spec.template.spec.containers[0].env_from is None


def test_a_key_missing_from_the_live_secret_stops_the_deploy_before_anything_runs(e2e):
    new_stack(e2e, "nokey")
    e2e.core.patch_namespaced_secret("ideaforge-ai-secrets", e2e.namespace,
                                     [{"op": "remove", "path": "/data/SESSION_SECRET"}])
    e2e.core.patch_namespaced_secret("ideaforge-ai-secrets", e2e.namespace,
                                     {"stringData": {"API_KEY_ENCRYPTION_KEY": "e2e-api-key-encryption-key"}})

    preview = e2e.deploy("preview")
    up = e2e.deploy("up")

    # The preview's check is the program's; `up` is stopped earlier by deploy.py's own check
    # before the update. Both name the Secret, the key and who reads it, never a value.
    assert f"Secret {e2e.namespace}/ideaforge-ai-secrets has no SESSION_SECRET (backend)" in output_of(preview)
    assert "Secret ideaforge-ai-secrets: has no key SESSION_SECRET (backend)" in output_of(up)
    for result in (preview, up):
        assert result.returncode != 0
        assert "e2e-api-key-encryption-key" not in output_of(result)
    assert e2e.batch.list_namespaced_job(e2e.namespace).items == []
    assert e2e.apps.list_namespaced_deployment(e2e.namespace).items == []


# -- the app ConfigMap and Secret ---------------------------------------------------------------


def test_the_deploy_writes_the_app_configmap_from_the_stack(e2e, on_live):
    live = e2e.core.read_namespaced_config_map("ideaforge-ai-config", e2e.namespace)
    assert live.data == {k: str(v) for k, v in e2e.app_config().items()}


def test_a_changed_app_setting_rolls_the_backend_that_reads_it_and_nothing_else(e2e, on_live):
    backend, frontend = replica_sets(e2e, "backend"), replica_sets(e2e, "frontend")
    job = e2e.job("db-migrations").metadata.uid

    level = "debug" if e2e.app_config()["LOG_LEVEL"] != "debug" else "info"
    e2e.config("app.configData.LOG_LEVEL", level, path=True)
    up = e2e.deploy("up")

    assert up.returncode == 0, output_of(up)[-6000:]
    assert e2e.core.read_namespaced_config_map("ideaforge-ai-config", e2e.namespace).data["LOG_LEVEL"] == level
    assert replica_sets(e2e, "backend") - backend  # a new ReplicaSet: the pods rolled
    assert replica_sets(e2e, "frontend") == frontend
    assert e2e.job("db-migrations").metadata.uid == job


def test_a_changed_secret_rolls_the_workloads_that_read_it_at_the_next_up(e2e, on_live):
    backend, frontend = replica_sets(e2e, "backend"), replica_sets(e2e, "frontend")
    job = e2e.job("db-migrations").metadata.uid

    e2e.core.patch_namespaced_secret("ideaforge-ai-secrets", e2e.namespace,
                                     {"stringData": {"OPENAI_API_KEY": f"sk-e2e-{time.time_ns()}"}})  # eks-load-secrets
    up = e2e.deploy("up")

    assert up.returncode == 0, output_of(up)[-6000:]
    assert replica_sets(e2e, "backend") - backend and replica_sets(e2e, "frontend") - frontend
    assert e2e.job("db-migrations").metadata.uid == job


# -- init containers ---------------------------------------------------------------------------


def test_a_bounded_redis_wait_lets_a_new_backend_pod_start_during_a_redis_outage(e2e):
    new_stack(e2e, "rediswait", **{"backend.initWaits.redis": 5, "backend.autoscaling.enabled": "false",
                                   "backend.replicas": 1})
    up = e2e.deploy("up")
    assert up.returncode == 0, output_of(up)[-6000:]
    [pod] = e2e.pods("app=backend")

    e2e.redis.stop()
    try:
        e2e.core.delete_namespaced_pod(pod.metadata.name, e2e.namespace)  # a restart, a scale-out
        deadline = time.monotonic() + 120
        while True:
            pods = [p for p in e2e.pods("app=backend") if p.metadata.uid != pod.metadata.uid]
            waits = [s for p in pods for s in (p.status.init_container_statuses or []) if s.name == "wait-for-redis"]
            if waits and waits[0].state.terminated:
                break
            assert time.monotonic() < deadline, "the new backend pod is still waiting for Redis"
            time.sleep(1)
        assert waits[0].state.terminated.exit_code == 0
        log = e2e.core.read_namespaced_pod_log(pods[0].metadata.name, e2e.namespace, container="wait-for-redis")
        assert "did not answer within 5s; starting without it" in log
    finally:
        e2e.redis.start()
