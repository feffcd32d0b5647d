"""The app's own deploy inputs, read from the read-only snapshot at ../shared/ideaforge-ai
(IDEAFORGE_APP_DIR to use another checkout of soumantrivedi/ideaforge-ai): the tests compare
the program with what the app's manifests ran, never with facts retyped here."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = Path(os.environ.get("IDEAFORGE_APP_DIR", ROOT.parent / "shared" / "ideaforge-ai"))
EKS = APP_DIR / "k8s" / "eks"


def _documents(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the tests read the app's manifests from a checkout of "
                                "soumantrivedi/ideaforge-ai at ../shared/ideaforge-ai (or IDEAFORGE_APP_DIR)")
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest(file: str, kind: str, name: str) -> dict:
    """One object of a k8s/eks file."""
    found = [d for d in _documents(EKS / file) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{file}: expected one {kind} {name}"
    return found[0]


def container_env(workload: str) -> list[dict]:
    """The env list of the backend's or frontend's container in k8s/eks/<workload>.yaml."""
    deployment = manifest(f"{workload}.yaml", "Deployment", workload)
    return deployment["spec"]["template"]["spec"]["containers"][0]["env"]


def config_map_data() -> dict[str, str]:
    return manifest("configmap.yaml", "ConfigMap", "ideaforge-ai-config")["data"]


def env_example_keys() -> list[str]:
    """The keys env.eks.example puts in the Secret (`make eks-load-secrets` loads env.eks whole)."""
    keys = []
    for line in (APP_DIR / "env.eks.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.append(line.split("=", 1)[0].strip())
    return keys


def secret_keys() -> list[str]:
    """The keys of a Secret as the live one: every key the manifests read from it, and those of
    env.eks (which hold ConfigMap keys too, CORS_ORIGINS and FRONTEND_URL among them)."""
    keys = dict.fromkeys(env_example_keys())
    for workload in ("backend", "frontend"):
        for var in container_env(workload):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                keys[ref["key"]] = None
    return list(keys)
