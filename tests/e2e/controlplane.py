"""A Kubernetes control plane for the end-to-end tests, in the run's network namespace.

etcd (Debian's etcd-server), kube-apiserver, kube-controller-manager and kube-scheduler
(built from k8s.io/kubernetes by e2e/build-tools.sh), with certificates and service-account
keys made for each run by openssl. The API server listens on the node's address, which the
`kubernetes` Service points at, so pods (CoreDNS) reach it as in any cluster. Logs are kept
in the run's directory and printed when something fails to come up.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import requests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Certificates:
    """A CA and the certificates one control plane needs, in `directory`."""

    def __init__(self, directory: Path, node_ip: str):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=e2e-ca",
                 "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)
        _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
        _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
        self.issue("apiserver", "/CN=kube-apiserver",
                   f"DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:10.0.0.1,IP:{node_ip}")
        self.issue("admin", "/O=system:masters/CN=e2e-admin")
        # In the masters group: its controllers act under its own name (no per-controller accounts).
        self.issue("controller-manager", "/O=system:masters/CN=system:kube-controller-manager")
        self.issue("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client")
        self.issue("kubelet", "/O=system:nodes/CN=system:node:e2e-node", f"DNS:e2e-node,IP:{node_ip}")
        self.issue("kube-proxy", "/CN=system:kube-proxy")  # bound to system:node-proxier by default

    def issue(self, name: str, subject: str, alt_names: Optional[str] = None) -> None:
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=self.dir)
        extensions = self.dir / f"{name}.ext"
        extensions.write_text(f"subjectAltName={alt_names}\n" if alt_names else "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", f"{name}.crt", "-extfile", extensions.name, cwd=self.dir)

    def path(self, name: str) -> str:
        return str(self.dir / name)


@dataclass
class ControlPlane:
    directory: Path
    bin_dir: Path
    node_ip: str
    api_port: int = field(default_factory=free_port)
    processes: dict = field(default_factory=dict)

    @property
    def server(self) -> str:
        return f"https://{self.node_ip}:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    def start(self) -> "ControlPlane":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.certs = Certificates(self.directory / "pki", self.node_ip)
        self.write_kubeconfig(self.kubeconfig, "admin")
        self.write_kubeconfig(self.directory / "controller-manager.kubeconfig", "controller-manager")
        etcd_client, etcd_peer = free_port(), free_port()
        self._spawn("etcd", [
            "etcd", "--name", "e2e", "--data-dir", str(self.directory / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"e2e=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync",
        ])
        self._spawn_apiserver(etcd_client)
        self.wait_ready("/readyz", 90)
        self._spawn_controller_manager()
        self._spawn("kube-scheduler", [
            str(self.bin_dir / "kube-scheduler"), "--kubeconfig", str(self.kubeconfig),
            "--authentication-kubeconfig", str(self.kubeconfig), "--authorization-kubeconfig", str(self.kubeconfig),
            "--bind-address", "127.0.0.1", "--secure-port", str(free_port()), "--leader-elect=false",
        ])
        return self

    def _spawn_apiserver(self, etcd_client: int) -> None:
        self.etcd_client = etcd_client
        c = self.certs.path
        self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"),
            "--etcd-servers", f"http://127.0.0.1:{etcd_client}",
            "--bind-address", self.node_ip, "--advertise-address", self.node_ip,
            "--secure-port", str(self.api_port),
            "--tls-cert-file", c("apiserver.crt"), "--tls-private-key-file", c("apiserver.key"),
            "--client-ca-file", c("ca.crt"),
            "--service-account-key-file", c("sa.pub"), "--service-account-signing-key-file", c("sa.key"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-cluster-ip-range", "10.0.0.0/24",
            "--authorization-mode", "Node,RBAC",
            "--kubelet-client-certificate", c("apiserver-kubelet-client.crt"),
            "--kubelet-client-key", c("apiserver-kubelet-client.key"),
            "--kubelet-preferred-address-types", "InternalIP",
            "--allow-privileged=true",
            "--profiling=false",
        ])

    def restart_apiserver(self) -> None:
        """Stop the API server (SIGTERM, as a rolling control-plane upgrade does) and start it again."""
        self._stop("kube-apiserver")
        self._spawn_apiserver(self.etcd_client)
        self.wait_ready("/readyz", 90)

    def stop_apiserver(self) -> None:
        self._stop("kube-apiserver")

    def start_apiserver(self) -> None:
        self._spawn_apiserver(self.etcd_client)
        self.wait_ready("/readyz", 90)

    def _spawn_controller_manager(self) -> None:
        c = self.certs.path
        self._spawn("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"),
            "--kubeconfig", str(self.directory / "controller-manager.kubeconfig"),
            "--authentication-kubeconfig", str(self.directory / "controller-manager.kubeconfig"),
            "--authorization-kubeconfig", str(self.directory / "controller-manager.kubeconfig"),
            "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
            "--service-account-private-key-file", c("sa.key"), "--root-ca-file", c("ca.crt"),
            "--cluster-signing-cert-file", c("ca.crt"), "--cluster-signing-key-file", c("ca.key"),
            "--use-service-account-credentials=false", "--leader-elect=false",
            # nodelifecycle on: it lifts the node's not-ready taint once the kubelet reports Ready.
            "--controllers", "*,-nodeipam,-service,-route,-cloud-node-lifecycle,-persistentvolume-binder",
            "--concurrent-job-syncs", "5",
        ])

    @property
    def api(self):
        if getattr(self, "_api", None) is None:
            from kubernetes import config as kube_config
            self._api = kube_config.new_client_from_config(str(self.kubeconfig))
        return self._api

    def write_kubeconfig(self, path: Path, user: str) -> None:
        c = self.certs.path
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: e2e\n  cluster:\n    server: {self.server}\n    certificate-authority: {c('ca.crt')}\n"
            f"users:\n- name: {user}\n  user:\n    client-certificate: {c(user + '.crt')}\n"
            f"    client-key: {c(user + '.key')}\n"
            f"contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: {user}\n"
            "current-context: e2e\n"
        )

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.directory / f"{name}.log", "ab")
        self.processes[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)

    def request(self, path: str, timeout: float = 5) -> requests.Response:
        c = self.certs.path
        return requests.get(self.server + path, cert=(c("admin.crt"), c("admin.key")), verify=c("ca.crt"),
                            timeout=timeout)

    def wait_ready(self, path: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        last = ""
        while time.monotonic() < deadline:
            for name, (process, _) in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                response = self.request(path)
                if response.status_code == 200:
                    return
                last = response.text
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.5)
        raise RuntimeError(f"the API server was not ready after {seconds}s ({last}):\n{self.log_tail('kube-apiserver')}")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.directory / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _stop(self, name: str) -> None:
        end(*self.processes.pop(name), seconds=30)

    def stop(self) -> None:
        for process, log in reversed(list(self.processes.values())):
            end(process, log, seconds=15)
        self.processes.clear()


def end(process: subprocess.Popen, log, seconds: float) -> None:
    """SIGTERM, then SIGKILL after `seconds`; then close the process's log file."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


