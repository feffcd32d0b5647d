"""The namespace: pre-existing by default, created on request."""

from __future__ import annotations

import pulumi
from pulumi_kubernetes.core.v1 import Namespace
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.settings import Settings


def namespace_for(settings: Settings) -> pulumi.Input[str]:
    """The namespace name; an output of the Namespace when this stack creates it, so
    everything placed in it waits for it."""
    if not settings.create_namespace:
        return settings.namespace
    namespace = Namespace(
        "namespace",
        metadata=ObjectMetaArgs(name=settings.namespace, labels={"app.kubernetes.io/part-of": "ideaforge-ai"}),
        opts=pulumi.ResourceOptions(retain_on_delete=True),
    )
    return namespace.metadata.name
