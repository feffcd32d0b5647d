"""Pod and container security settings, per workload.

The backend and frontend get what their configuration says (the app's images run as root
today; README, "Hardening the images"). The Jobs this program owns outright (readiness
checks, the seed) run unprivileged; the migration Job runs in the backend image, so it
takes the backend's settings.
"""

from __future__ import annotations

from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    PodSecurityContextArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
)

from components.settings import Security

# Readiness and wait-for containers only run pg_isready / redis-cli: any unprivileged id works.
NOBODY = 65534


def pod_security(security: Security) -> PodSecurityContextArgs:
    return PodSecurityContextArgs(
        run_as_non_root=security.run_as_non_root or None,
        run_as_user=security.run_as_user,
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security(security: Security) -> SecurityContextArgs:
    return SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=security.read_only_root_filesystem or None,
        capabilities=CapabilitiesArgs(drop=list(security.drop) or None, add=list(security.add) or None),
    )


def unprivileged_pod() -> PodSecurityContextArgs:
    return PodSecurityContextArgs(run_as_non_root=True, seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"))


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
    """`app` and `component` keep the selectors and labels of the old manifests
    (`kubectl ... -l app=db-migration`)."""
    return {
        "app": app,
        "component": component,
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": "ideaforge-ai",
        "app.kubernetes.io/managed-by": "pulumi",
    }


# The field manager Pulumi applies with during a take-over; deploy.py hands the fields
# `kubectl apply` owned to it first (deploytool/cluster.py), so the take-over's one update also
# drops what the program no longer sets, and pods roll once.
TAKE_OVER_MANAGER = "pulumi-kubernetes-ideaforge"
# Pulumi creates or updates the object and does not wait for it to become ready.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def take_over_annotations(take_over: bool) -> dict[str, str]:
    """On the take-over `up`, Pulumi forces ownership of the fields it sets on objects that
    `kubectl apply` created (server-side apply would otherwise stop on a field conflict), as
    the field manager the take-over handed kubectl's fields to. The state keeps that manager
    when the annotations go."""
    if not take_over:
        return {}
    return {"pulumi.com/patchForce": "true", "pulumi.com/patchFieldManager": TAKE_OVER_MANAGER}
