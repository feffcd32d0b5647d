"""Secure-by-default pod and container settings shared by every workload."""

from __future__ import annotations

from typing import Optional

from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    PodSecurityContextArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
)

# Readiness and wait-for containers only run pg_isready / redis-cli: any unprivileged id works.
NOBODY = 65534


def pod_security(run_as_non_root: bool, run_as_user: Optional[int] = None) -> PodSecurityContextArgs:
    return PodSecurityContextArgs(
        run_as_non_root=run_as_non_root or None,
        run_as_user=run_as_user,
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security(run_as_user: Optional[int] = None) -> SecurityContextArgs:
    return SecurityContextArgs(
        allow_privilege_escalation=False,
        capabilities=CapabilitiesArgs(drop=["ALL"]),
        run_as_user=run_as_user,
        run_as_non_root=True if run_as_user else None,
    )


def probe_security() -> SecurityContextArgs:
    return SecurityContextArgs(
        allow_privilege_escalation=False,
        capabilities=CapabilitiesArgs(drop=["ALL"]),
        run_as_user=NOBODY,
        run_as_group=NOBODY,
        run_as_non_root=True,
        read_only_root_filesystem=True,
    )


def labels(app: str, component: str) -> dict[str, str]:
    """`app` keeps the selectors of the old manifests (kubectl ... -l app=db-migration)."""
    return {
        "app": app,
        "component": component,
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": "ideaforge-ai",
        "app.kubernetes.io/managed-by": "pulumi",
    }
