"""Kubernetes access for the deploy script: reachability and the clients for the report."""

from __future__ import annotations

from typing import Optional

from deploytool.errors import TransientError


def clients(context: Optional[str] = None):
    """BatchV1Api and CoreV1Api from the kubeconfig (or the in-cluster service account)."""
    from kubernetes import client, config

    try:
        config.load_kube_config(context=context)
    except Exception:
        config.load_incluster_config()
    return client.BatchV1Api(), client.CoreV1Api()


def require_reachable(context: Optional[str] = None) -> None:
    from kubernetes import client, config

    try:
        try:
            config.load_kube_config(context=context)
        except config.ConfigException:
            config.load_incluster_config()
        client.VersionApi().get_code(_request_timeout=10)
    except Exception as exc:
        raise TransientError(
            f"the Kubernetes cluster is not reachable{f' (context {context})' if context else ''}: "
            f"{_reason(exc)}; check `kubectl cluster-info` and your KUBECONFIG"
        ) from None


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "reason", "") or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
