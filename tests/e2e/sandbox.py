"""Run a container's command as a local process, the way the kubelet would set it up.

The pod's volumes (ConfigMap, projected ConfigMaps, Secret, emptyDir) are written to a
directory of the test and bind-mounted at their mount paths inside a private mount
namespace (`unshare -m`; the tests run as root), together with a hosts file that resolves
Service names to 127.0.0.1 and a file at the termination-message path. Environment
variables are resolved as the kubelet resolves them: envFrom, then env in order, with
configMapKeyRef/secretKeyRef/fieldRef and `$(VAR)` references.

Shared by the Job contract test and the end-to-end node agent (tests/e2e/node_agent.py).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

# (kind, name) -> {key: bytes}: the ConfigMaps and Secrets of the namespace
Lookup = Callable[[str, str], Optional[dict]]


class ConfigError(Exception):
    """What the kubelet reports as CreateContainerConfigError."""


@dataclass
class Bind:
    source: Path
    target: str
    read_only: bool = True


@dataclass
class Launch:
    command: list[str]
    env: dict[str, str]
    binds: list[Bind] = field(default_factory=list)
    uid: Optional[int] = None
    cwd: str = "/"


def config_map_lookup(config_maps: dict[str, dict], secrets: dict[str, dict]) -> Lookup:
    """A Lookup over plain dicts (name -> manifest-like {"data": ..., "binaryData": ...})."""
    def lookup(kind: str, name: str) -> Optional[dict]:
        store = config_maps if kind == "ConfigMap" else secrets
        found = store.get(name)
        if found is None:
            return None
        data = {k: v.encode() for k, v in (found.get("data") or found.get("stringData") or {}).items()}
        for k, v in (found.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v)
        if kind == "Secret" and "data" in found and "stringData" not in found:
            data = {k: base64.b64decode(v) for k, v in found["data"].items()}
        return data
    return lookup


def _referred(lookup: Lookup, kind: str, ref: dict) -> Optional[dict]:
    """The data of a ConfigMap or Secret a pod refers to; None if it is missing and optional."""
    data = lookup(kind, ref["name"])
    if data is None and not ref.get("optional"):
        raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    return data


def resolve_env(container: dict, lookup: Lookup, pod_fields: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        for key, value in (_referred(lookup, kind, ref) or {}).items():
            env[source.get("prefix", "") + key] = value.decode()
    for item in container.get("env") or []:
        if "value" in item or "valueFrom" not in item:
            env[item["name"]] = _expand(item.get("value", ""), env)
            continue
        value_from = item["valueFrom"]
        if "fieldRef" in value_from:
            env[item["name"]] = pod_fields.get(value_from["fieldRef"]["fieldPath"], "")
            continue
        kind, ref = (("ConfigMap", value_from["configMapKeyRef"]) if "configMapKeyRef" in value_from
                     else ("Secret", value_from["secretKeyRef"]))
        data = lookup(kind, ref["name"])
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                continue
            what = f'{kind.lower()} "{ref["name"]}" not found' if data is None else \
                f"couldn't find key {ref['key']} in {kind} {ref['name']}"
            raise ConfigError(what)
        env[item["name"]] = data[ref["key"]].decode()
    return env


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) references to variables defined before; $$ is a literal $."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def materialize_volumes(pod_spec: dict, container: dict, lookup: Lookup, root: Path) -> list[Bind]:
    """Write each mounted volume under `root` and return where it is bound."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    binds = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        directory = root / "volumes" / mount["name"]
        if not directory.exists():
            directory.mkdir(parents=True)
            for kind, ref, items in _sources(volume):
                for key, value in (_referred(lookup, kind, ref) or {}).items():
                    target = items.get(key, key) if items is not None else key
                    if items is not None and key not in items:
                        continue
                    path = directory / target
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(value)
        binds.append(Bind(directory, mount["mountPath"], bool(mount.get("readOnly"))))
    return binds


def _sources(volume: dict):
    if "configMap" in volume:
        yield "ConfigMap", volume["configMap"], _items(volume["configMap"])
    elif "secret" in volume:
        yield "Secret", {"name": volume["secret"]["secretName"], **volume["secret"]}, _items(volume["secret"])
    elif "projected" in volume:
        for source in volume["projected"]["sources"]:
            if "configMap" in source:
                yield "ConfigMap", source["configMap"], _items(source["configMap"])
            elif "secret" in source:
                yield "Secret", source["secret"], _items(source["secret"])
    # emptyDir: an empty directory


def _items(ref: dict) -> Optional[dict]:
    return {i["key"]: i["path"] for i in ref["items"]} if ref.get("items") else None


def start(launch: Launch, log: Path, hosts: dict[str, str], termination_log: Path,
          termination_path: str = "/dev/termination-log") -> subprocess.Popen:
    """Start the process in its own mount namespace; stdout and stderr go to `log`."""
    hosts_file = termination_log.with_name(termination_log.name + ".hosts")
    hosts_file.write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in sorted(hosts.items())))
    termination_log.write_text("")
    binds = [*launch.binds, Bind(hosts_file, "/etc/hosts"), Bind(termination_log, termination_path, False)]
    lines = ["set -e"]
    for bind in binds:
        _ensure_mount_point(bind)
        lines.append(f"mount --bind {shlex.quote(str(bind.source))} {shlex.quote(bind.target)}")
        if bind.read_only:
            lines.append(f"mount -o remount,bind,ro {shlex.quote(bind.target)}")
    lines.append(f"cd {shlex.quote(launch.cwd)}")
    user = [] if launch.uid in (None, 0) else ["setpriv", f"--reuid={launch.uid}", f"--regid={launch.uid}",
                                                 "--clear-groups", "--"]
    lines.append("exec " + " ".join(shlex.quote(part) for part in [*user, *launch.command]))
    script = termination_log.with_name(termination_log.name + ".sh")
    script.write_text("\n".join(lines) + "\n")
    with open(log, "ab") as out:
        return subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", str(script)],
                                env=launch.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _ensure_mount_point(bind: Bind) -> None:
    """A bind mount needs something to mount on; created on the host, empty, once."""
    target = Path(bind.target)
    if target.exists():
        return
    if bind.source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()


def termination_message(termination_log: Path, log: Path, exit_code: int, policy: str) -> str:
    """What the kubelet puts in the container's terminated state."""
    message = termination_log.read_text(errors="replace") if termination_log.exists() else ""
    if not message and exit_code != 0 and policy == "FallbackToLogsOnError" and log.exists():
        tail = log.read_bytes()[-2048:].decode(errors="replace").splitlines()[-80:]
        message = "\n".join(tail)
    return message[:4096]


def standard_env(pod_name: str) -> dict[str, str]:
    return {"PATH": os.environ.get("E2E_CONTAINER_PATH", "/usr/local/bin:/usr/bin:/bin"), "HOSTNAME": pod_name,
            "HOME": "/root"}
