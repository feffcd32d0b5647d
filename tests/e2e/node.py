"""The node: containerd (Debian's), runc, the CNI bridge, a real kubelet and kube-proxy, and
CoreDNS, all inside the namespaces e2e/isolate.sh made for the run.

The kubelet runs every pod: images from containerd's store (imported, never pulled), init
containers, probes, security contexts, resource limits (cgroup v1, OOM kills), restart
policies, volumes with the kubelet's own layout, logs through the API server. What this
machine needs, each found by trying (README, "Tests"):
- cgroup v1 only: `failCgroupV1: false`, `cgroupDriver: cgroupfs`; the pods' cgroups under
  the run's own cgroupRoot, so the run can remove them all;
- containerd's `restrict_oom_score_adj`: root here lacks CAP_SYS_RESOURCE, and runc fails
  every sandbox with "can't get final child's PID from pipe: EOF" (underneath: writing
  /proc/self/oom_score_adj is refused) unless containerd keeps the score at or above its own;
- no swap accounting (`failSwapOn: false`) and no iptables chains of the kubelet's own;
- the node address on a veth pair (the kubelet refuses loopback and there is no dummy link);
- a CNI bridge with host-local addresses. The bridge is the pods' gateway so that Service
  addresses (kube-proxy's NAT in this namespace) are reachable; nothing is masqueraded and
  nothing routes out of the namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Optional

import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e import images
from tests.e2e.controlplane import end

NODE = "e2e-node"
POD_CIDR = "10.244.0.0/24"
CLUSTER_DNS = "10.0.0.10"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CNI_BIN = "/usr/lib/cni"
K8S_NAMESPACE = "k8s.io"  # containerd's namespace for the CRI


def node_ip() -> str:
    return os.environ["E2E_NODE_IP"]


def require_isolation() -> None:
    if os.environ.get("E2E_ISOLATED") != "1" or os.getpid() == 1:
        raise RuntimeError("the end-to-end tests run inside e2e/isolate.sh (namespaces of their own, and the host "
                           "restored afterwards): run `make e2e`, or `flock /tmp/e2e.lock e2e/isolate.sh "
                           ".venv/bin/python -m pytest -m e2e tests/e2e ...`")


class Node:
    def __init__(self, directory: Path, plane, kubernetes_bin: Path, coredns_bin: Path):
        self.dir = directory
        self.plane = plane
        self.bin = kubernetes_bin
        self.coredns_bin = coredns_bin
        self.processes: dict[str, tuple[subprocess.Popen, object]] = {}
        self.api = client.ApiClient()

    # -- containerd ----------------------------------------------------------------------------

    def _containerd_config(self) -> Path:
        config = self.dir / "containerd.toml"
        config.write_text(f"""version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{CONTAINERD_SOCKET}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "/etc/cni/net.d"
""")
        return config

    def _cni_config(self) -> None:
        net = Path("/etc/cni/net.d")
        net.mkdir(parents=True, exist_ok=True)
        (net / "10-e2e.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "e2e", "plugins": [
                {"type": "bridge", "bridge": "e2e-cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ]}, indent=2))

    def ctr(self, *args: str, input_path: Optional[Path] = None, timeout: float = 600) -> str:
        command = ["ctr", "--address", CONTAINERD_SOCKET, "--namespace", K8S_NAMESPACE, *args]
        if input_path is not None:
            command.append(str(input_path))
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result.stdout

    def import_images(self, built: list[images.Image]) -> None:
        archive = self.dir / f"images-{time.monotonic_ns()}.tar"
        images.write_archive(built, archive, skip_blobs=self.blobs)
        self.ctr("images", "import", "--no-unpack", "--all-platforms", input_path=archive)
        archive.unlink()
        self.blobs |= {d for image in built for d in image_blobs(image)}

    # -- kubelet and kube-proxy ----------------------------------------------------------------

    def _kubelet_config(self) -> Path:
        certs = self.plane.certs
        resolv = self.dir / "resolv.conf"
        resolv.write_text("")  # pods resolve cluster names only; there is no upstream here
        config = self.dir / "kubelet.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "failCgroupV1": False, "cgroupDriver": "cgroupfs", "cgroupRoot": os.environ["E2E_CGROUP_ROOT"],
            "failSwapOn": False, "makeIPTablesUtilChains": False, "protectKernelDefaults": False,
            "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": certs.path("ca.crt")}},
            "authorization": {"mode": "AlwaysAllow"},
            "tlsCertFile": certs.path("kubelet.crt"), "tlsPrivateKeyFile": certs.path("kubelet.key"),
            "address": node_ip(), "readOnlyPort": 0, "healthzBindAddress": "127.0.0.1",
            "clusterDNS": [CLUSTER_DNS], "clusterDomain": "cluster.local", "resolvConf": str(resolv),
            # Images are imported once per run and never pulled: the kubelet must not collect them,
            # and a machine shared with other work must not make it evict the tests' pods.
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "serializeImagePulls": False, "podPidsLimit": 4096,
            # Status and pod changes reach the API server as soon as they happen.
            "nodeStatusReportFrequency": "10s", "syncFrequency": "10s",
        }))
        return config

    def _kube_proxy_config(self) -> Path:
        config = self.dir / "kube-proxy.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.plane.directory / "kube-proxy.kubeconfig")},
            "mode": "iptables", "clusterCIDR": POD_CIDR, "hostnameOverride": NODE, "bindAddress": node_ip(),
            "metricsBindAddress": "127.0.0.1:10249", "healthzBindAddress": "127.0.0.1:10256",
            # Leave the host's conntrack table sizes alone (they are not per network namespace).
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False, "syncPeriod": "10s", "minSyncPeriod": "0s"},
        }))
        return config

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, built: list[images.Image]) -> "Node":
        self.dir.mkdir(parents=True, exist_ok=True)
        self.blobs: set[str] = set()
        self._cni_config()
        self._spawn("containerd", ["containerd", "--config", str(self._containerd_config())])
        self._wait(lambda: Path(CONTAINERD_SOCKET).exists() and self._ctr_ok(), 60, "containerd")
        started = time.monotonic()
        self.import_images(built)
        self.image_import_seconds = time.monotonic() - started
        self.plane.write_kubeconfig(self.plane.directory / "node.kubeconfig", "kubelet")
        self.plane.write_kubeconfig(self.plane.directory / "kube-proxy.kubeconfig", "kube-proxy")
        self._spawn("kubelet", [
            str(self.bin / "kubelet"), "--config", str(self._kubelet_config()),
            "--kubeconfig", str(self.plane.directory / "node.kubeconfig"),
            "--hostname-override", NODE, "--node-ip", node_ip(), "--v", "1",
        ])
        self._spawn("kube-proxy", [str(self.bin / "kube-proxy"), "--config", str(self._kube_proxy_config()),
                                   "--v", "1"])
        core = client.CoreV1Api(self.plane.api)
        self._wait(lambda: self._node_ready(core), 120, "the node to be Ready")
        self._start_coredns()
        return self

    def _ctr_ok(self) -> bool:
        try:
            self.ctr("version", timeout=10)
            return True
        except RuntimeError:
            return False

    def _node_ready(self, core) -> bool:
        try:
            node = core.read_node(NODE)
        except ApiException:
            return False
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    def _start_coredns(self) -> None:
        from tests.e2e import coredns
        coredns.deploy(self.plane.api, images.COREDNS_IMAGE, CLUSTER_DNS)
        apps = client.AppsV1Api(self.plane.api)

        def ready() -> bool:
            status = apps.read_namespaced_deployment("coredns", "kube-system").status
            return (status.ready_replicas or 0) >= 1
        self._wait(ready, 120, "CoreDNS")

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.dir / f"{name}.log", "ab")
        self.processes[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)

    def _wait(self, condition, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            for name, (process, _) in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {n} ---\n{self.log_tail(n, 15)}" for n in self.processes)
                raise RuntimeError(f"waited {seconds:.0f}s for {what}:\n{tails}")
            time.sleep(0.5)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        """The kubelet and kube-proxy, then containerd. The containers left running end with
        the run's PID namespace (e2e/isolate.sh)."""
        for name in ("kube-proxy", "kubelet", "containerd"):
            if name not in self.processes:
                continue
            end(*self.processes.pop(name), seconds=20)

    def healthy(self) -> bool:
        try:
            return requests.get("http://127.0.0.1:10248/healthz", timeout=2).text == "ok"
        except requests.RequestException:
            return False


def image_blobs(image: images.Image) -> set[str]:
    """The digests of an image's layer blobs (what a later import can leave out)."""
    found = set()
    for layer in image.layers:
        found.add(images._digest(layer) if isinstance(layer, bytes) else images._file_digest(layer))
    return found
