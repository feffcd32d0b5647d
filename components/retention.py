"""What serves the app stays in the cluster when the stack lets go of it.

In a stack that deploys into a namespace it does not create (dev: the namespace `make
eks-deploy` filled), the Deployments, Services, autoscalers, Ingress and the app ConfigMap get
`retainOnDelete`: `pulumi destroy`, or a resource dropped or renamed in the program, removes
them from the stack's state and leaves them running, instead of deleting the live app. That is
also how a stack hands the namespace back to the old flow (deploy.py hand-back). The Jobs, the
runner's ConfigMaps and the Secret the program makes are the stack's own and are deleted.
A stack that creates its namespace (local) deletes everything on destroy.

Applied as a stack transformation, so every component's objects get it, whoever writes them.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi

from components.settings import Settings

LIVE_APP_TYPES = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:core/v1:Service",
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:networking.k8s.io/v1:Ingress",
)


def retains_live_app(settings: Settings) -> bool:
    return not settings.create_namespace and not settings.local.enabled


def keep_live_app(settings: Settings) -> None:
    """Register the transformation (before any resource is made)."""
    if not retains_live_app(settings):
        return

    def transformation(args: pulumi.ResourceTransformationArgs) -> Optional[pulumi.ResourceTransformationResult]:
        if not _serves_the_app(args.type_, args.props, settings):
            return None
        opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
        return pulumi.ResourceTransformationResult(args.props, opts)

    pulumi.runtime.register_stack_transformation(transformation)


def _serves_the_app(type_: str, props: dict, settings: Settings) -> bool:
    if type_ in LIVE_APP_TYPES:
        return True
    return type_ == "kubernetes:core/v1:ConfigMap" and bool(settings.app.config_map) and \
        _name(props.get("metadata")) == settings.app.config_map


def _name(metadata: Any) -> Optional[str]:
    if metadata is None:
        return None
    if isinstance(metadata, dict):
        return metadata.get("name")
    return getattr(metadata, "name", None)
