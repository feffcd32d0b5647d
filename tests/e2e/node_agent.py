"""A stand-in for the kubelet: one Node whose pods run as local processes.

It registers the Node and keeps it Ready (status heartbeat and Lease), binds every pending
pod to itself (there is no scheduler), and then:
- a pod of a Job: runs its init containers, then its containers, as local processes
  (tests/e2e/sandbox.py: volumes at their mount paths, Service names in a hosts file,
  environment resolved from the API), and reports phase, exit codes and termination
  messages in the pod's status; deleting the pod (deadline, TTL, replacement) stops it;
- any other pod (Deployments, StatefulSets): Running and Ready at once; images of web
  servers are not run.
Container logs are served on the kubelet API (/containerLogs/...), so `kubectl logs` and
the Kubernetes client read them through the API server.

Images map to local programs: the app's backend image is a Python with psycopg2 2.9.10
and its migration folders (tests/backend_image.py); postgres, redis, busybox and pgvector
client images are this machine's shell with pg_isready and redis-cli. A pod that must not
run as root, on an image that runs as root without a runAsUser, fails the way the kubelet
makes it fail: CreateContainerConfigError.
"""

from __future__ import annotations

import datetime
import http.server
import re
import signal
import ssl
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlparse

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import backend_image
from tests.e2e import sandbox

NODE = "e2e-node"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Image:
    path: str  # PATH for the process
    binds: dict[str, Path] = field(default_factory=dict)  # the image's own folders
    runs_as_root: bool = True


def image_for(reference: str) -> Image:
    if "/backend:" in reference:
        return Image(f"{backend_image.python_bin_dir()}:/usr/bin:/bin", dict(backend_image.IMAGE_DIRS))
    return Image("/usr/local/bin:/usr/bin:/bin")


@dataclass
class Running:
    uid: str
    thread: threading.Thread
    process: Optional[object] = None
    stop: threading.Event = field(default_factory=threading.Event)


class NodeAgent:
    def __init__(self, api: client.ApiClient, directory: Path, certs, hosts: dict[str, str],
                 images=image_for):
        self.api = api
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.directory = directory
        self.certs = certs
        self.hosts = hosts
        self.images = images
        self.running: dict[str, Running] = {}
        self.started_pods: set[str] = set()
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.threads: list[threading.Thread] = []
        self.pod_ips: dict[str, str] = {}
        self.networking = client.NetworkingV1Api(api)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> "NodeAgent":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.server = self._log_server()
        self._register()
        for target in (self._heartbeat, self._pods, self._ingresses):
            thread = threading.Thread(target=self._guarded(target), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for running in list(self.running.values()):
            running.stop.set()
            self._kill(running)
        self.server.shutdown()
        for thread in self.threads:
            thread.join(timeout=10)

    def _guarded(self, target):
        def run():
            while not self.stopping.is_set():
                try:
                    target()
                    return
                except Exception:  # kept for the test report; the loop goes on
                    self.errors.append(traceback.format_exc())
                    time.sleep(0.5)
        return run

    # -- the node ----------------------------------------------------------------------------

    def _register(self) -> None:
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}},
        }
        try:
            self.core.create_node(node)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._node_status()

    def _node_status(self) -> None:
        capacity = {"cpu": "64", "memory": "256Gi", "pods": "500", "ephemeral-storage": "100Gi"}
        status = {"status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "e2e node agent",
                            "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {"machineID": "e2e", "systemUUID": "e2e", "bootID": "e2e", "kernelVersion": "e2e",
                         "osImage": "e2e", "containerRuntimeVersion": "e2e://1", "kubeletVersion": "v1.35.4",
                         "kubeProxyVersion": "v1.35.4", "operatingSystem": "linux", "architecture": "amd64"},
        }}
        self.core.patch_node_status(NODE, status)

    def _heartbeat(self) -> None:
        while not self.stopping.wait(5):
            self._node_status()
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": NODE, "namespace": "kube-node-lease"},
                     "spec": {"holderIdentity": NODE, "leaseDurationSeconds": 40,
                              "renewTime": datetime.datetime.now(datetime.timezone.utc).strftime(
                                  "%Y-%m-%dT%H:%M:%S.%fZ")}}
            try:
                self.coordination.patch_namespaced_lease(NODE, "kube-node-lease", {"spec": lease["spec"]})
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self.coordination.create_namespaced_lease("kube-node-lease", lease)

    # -- pods --------------------------------------------------------------------------------

    def _pods(self) -> None:
        while not self.stopping.wait(0.2):
            pods = self.api.sanitize_for_serialization(self.core.list_pod_for_all_namespaces())["items"]
            present = set()
            for pod in pods:
                uid = pod["metadata"]["uid"]
                present.add(uid)
                if not pod["spec"].get("nodeName"):
                    self._bind(pod)
                elif pod["metadata"].get("deletionTimestamp"):
                    self._terminate(pod)
                elif uid not in self.started_pods:
                    self.started_pods.add(uid)
                    self._start(pod)
            for uid in [u for u in self.running if u not in present]:
                running = self.running.pop(uid)
                running.stop.set()
                self._kill(running)

    def pod_ip(self, uid: str) -> str:
        """A pod IP of its own (Endpoints refuse loopback addresses); processes use the host's network."""
        if uid not in self.pod_ips:
            n = len(self.pod_ips) + 2
            self.pod_ips[uid] = f"10.244.{n // 250}.{n % 250 + 2}"
        return self.pod_ips[uid]

    def _ingresses(self) -> None:
        """Stands in for an nginx ingress controller: gives every Ingress of class nginx an
        address, and none to others (an ALB Ingress here has no controller, as in a cluster
        without the AWS load balancer controller)."""
        while not self.stopping.wait(1):
            for ingress in self.networking.list_ingress_for_all_namespaces().items:
                cls = ingress.spec.ingress_class_name or (ingress.metadata.annotations or {}).get(
                    "kubernetes.io/ingress.class")
                if cls != "nginx":
                    continue
                if not (ingress.status and ingress.status.load_balancer and ingress.status.load_balancer.ingress):
                    self.networking.patch_namespaced_ingress_status(
                        ingress.metadata.name, ingress.metadata.namespace,
                        {"status": {"loadBalancer": {"ingress": [{"hostname": "e2e-lb.local"}]}}})

    def _bind(self, pod: dict) -> None:
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}}
        try:
            self.core.create_namespaced_binding(meta["namespace"], body, _preload_content=False)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _start(self, pod: dict) -> None:
        owners = {o["kind"] for o in pod["metadata"].get("ownerReferences") or []}
        target = self._run_job_pod if "Job" in owners else self._mark_ready
        running = Running(pod["metadata"]["uid"], threading.Thread(target=self._guarded_pod(target, pod), daemon=True))
        self.running[running.uid] = running
        running.thread.start()

    def _guarded_pod(self, target, pod):
        def run():
            try:
                target(pod)
            except Exception:
                self.errors.append(f"pod {pod['metadata']['name']}: {traceback.format_exc()}")
        return run

    def _terminate(self, pod: dict) -> None:
        meta = pod["metadata"]
        running = self.running.get(meta["uid"])
        if running is not None and not running.stop.is_set():
            running.stop.set()
            self._kill(running)
        phase = pod.get("status", {}).get("phase")
        if phase not in ("Succeeded", "Failed") and running is not None and running.thread.is_alive():
            return  # the pod's thread reports its end first
        try:
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=0,
                                            _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise

    @staticmethod
    def _kill(running: Running) -> None:
        process = running.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except Exception:
                process.kill()

    def _patch_status(self, pod: dict, status: dict) -> None:
        meta = pod["metadata"]
        try:
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {"status": status})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _mark_ready(self, pod: dict) -> None:
        containers = pod["spec"]["containers"]
        ip = self.pod_ip(pod["metadata"]["uid"])
        self._patch_status(pod, {
            "phase": "Running", "hostIP": "127.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": now(),
            "conditions": [_condition(t, "True") for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": c["image"], "ready": True,
                                   "started": True, "restartCount": 0, "state": {"running": {"startedAt": now()}}}
                                  for c in containers],
        })

    def _run_job_pod(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        running = self.running[uid]
        self._patch_status(pod, {"phase": "Pending", "hostIP": "127.0.0.1", "startTime": now(),
                                 "conditions": [_condition("PodScheduled", "True")]})
        init_statuses, statuses = [], []
        for index, container in enumerate(pod["spec"].get("initContainers") or []):
            result = self._run_container(pod, container, running, f"init-{index}")
            init_statuses.append(result)
            if result["state"].get("terminated", {}).get("exitCode") != 0:
                self._finish(pod, init_statuses, [_waiting(c, "PodInitializing") for c in pod["spec"]["containers"]])
                return
        for container in pod["spec"]["containers"]:
            ip = self.pod_ip(uid)
            self._patch_status(pod, {
                "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "conditions": [_condition("Initialized", "True"), _condition("Ready", "True")],
                "initContainerStatuses": init_statuses or None,
                "containerStatuses": [{"name": container["name"], "image": container["image"], "ready": True,
                                       "restartCount": 0, "state": {"running": {"startedAt": now()}}}]})
            statuses.append(self._run_container(pod, container, running, "main"))
        self._finish(pod, init_statuses, statuses)

    def _finish(self, pod: dict, init_statuses: list, statuses: list) -> None:
        failed = any(s["state"].get("terminated", {}).get("exitCode", 1) != 0 for s in init_statuses + statuses
                     if "terminated" in s["state"]) or any("waiting" in s["state"] for s in statuses)
        self._patch_status(pod, {
            "phase": "Failed" if failed else "Succeeded",
            "conditions": [_condition("Ready", "False", "PodCompleted"), _condition("ContainersReady", "False")],
            "initContainerStatuses": init_statuses or None,
            "containerStatuses": statuses,
        })

    def _run_container(self, pod: dict, container: dict, running: Running, slot: str) -> dict:
        meta = pod["metadata"]
        root = self.directory / meta["namespace"] / meta["name"] / container["name"]
        root.mkdir(parents=True, exist_ok=True)
        log = self.log_path(meta["namespace"], meta["name"], container["name"])
        image = self.images(container["image"])
        started = now()
        while True:
            try:
                launch = self._launch(pod, container, image, root)
                break
            except sandbox.ConfigError as exc:
                # As the kubelet does: the pod stays Pending, and it tries again.
                waiting = _waiting(container, "CreateContainerConfigError", str(exc))
                key = "initContainerStatuses" if slot.startswith("init") else "containerStatuses"
                self._patch_status(pod, {"phase": "Pending", key: [waiting]})
                if running.stop.wait(2):
                    return waiting
        if running.stop.is_set():
            return _terminated(container, 137, "Error", "", started)
        running.process = sandbox.start(launch, log, self.hosts, root / "termination-log",
                                        container.get("terminationMessagePath", "/dev/termination-log"))
        code = running.process.wait()
        code = 128 + -code if code < 0 else code
        message = sandbox.termination_message(root / "termination-log", log, code,
                                              container.get("terminationMessagePolicy", "File"))
        return _terminated(container, code, "Completed" if code == 0 else "Error", message, started)

    def _launch(self, pod: dict, container: dict, image: Image, root: Path) -> sandbox.Launch:
        namespace, spec = pod["metadata"]["namespace"], pod["spec"]
        security = {**(spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
        uid = security.get("runAsUser")
        if security.get("runAsNonRoot") and uid is None and image.runs_as_root:
            raise sandbox.ConfigError("container has runAsNonRoot and image will run as root")
        lookup = self._lookup(namespace)
        fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": namespace,
                  "status.podIP": self.pod_ip(pod["metadata"]["uid"]), "spec.nodeName": NODE}
        env = dict(sandbox.standard_env(pod["metadata"]["name"]), PATH=image.path)
        env.update(sandbox.resolve_env(container, lookup, fields))
        binds = sandbox.materialize_volumes(spec, container, lookup, root)
        binds += [sandbox.Bind(source, target) for target, source in image.binds.items()]
        command = [*(container.get("command") or []), *(container.get("args") or [])]
        return sandbox.Launch(command, env, binds, uid=uid)

    def _lookup(self, namespace: str) -> sandbox.Lookup:
        def lookup(kind: str, name: str) -> Optional[dict]:
            try:
                read = self.core.read_namespaced_config_map if kind == "ConfigMap" else self.core.read_namespaced_secret
                found = self.api.sanitize_for_serialization(read(name, namespace))
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            if kind == "Secret":
                found = {"data": found.get("data") or {}}
            return sandbox.config_map_lookup({name: found}, {name: found})(kind, name)
        return lookup

    # -- logs ----------------------------------------------------------------------------------

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        path = self.directory / "logs" / namespace / pod / f"{container}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _log_server(self):
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                match = re.fullmatch(r"/containerLogs/([^/]+)/([^/]+)/([^/]+)", url.path)
                if not match:
                    self.send_error(404)
                    return
                path = agent.log_path(*match.groups())
                text = path.read_text(errors="replace") if path.exists() else ""
                tail = parse_qs(url.query).get("tailLines")
                if tail:
                    text = "".join(text.splitlines(keepends=True)[-int(tail[0]):])
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certs.path("kubelet.crt"), self.certs.path("kubelet.key"))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return server


def _condition(kind: str, status: str, reason: Optional[str] = None) -> dict:
    condition = {"type": kind, "status": status, "lastTransitionTime": now(), "lastProbeTime": None}
    if reason:
        condition["reason"] = reason
    return condition


def _terminated(container: dict, code: int, reason: str, message: str, started: str) -> dict:
    terminated = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now()}
    if message:
        terminated["message"] = message
    return {"name": container["name"], "image": container["image"], "imageID": container["image"], "ready": False,
            "restartCount": 0, "state": {"terminated": terminated}}


def _waiting(container: dict, reason: str, message: str = "") -> dict:
    waiting = {"reason": reason}
    if message:
        waiting["message"] = message
    return {"name": container["name"], "image": container["image"], "ready": False, "restartCount": 0,
            "state": {"waiting": waiting}}
