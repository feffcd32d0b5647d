"""Objects the stack uses but does not own: the app's ConfigMap and Secret, the pull secret.

Each is read from the cluster (`.get`), so a missing one stops `pulumi preview` with its
namespace and name, instead of leaving pods in CreateContainerConfigError until Pulumi's
await timeout halfway through `up`. pulumi-kubernetes keeps a read Secret's data as a
Pulumi secret. Nothing is read when this stack creates the namespace (nothing can be in it
yet).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.core.v1 import ConfigMap, Secret

from components.settings import CREATED_SECRET, Settings


@dataclass(frozen=True)
class PrerequisitesArgs:
    settings: Settings


class Prerequisites(pulumi.ComponentResource):
    def __init__(self, name: str, args: PrerequisitesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:prerequisites:Prerequisites", name, None, opts)
        settings = args.settings
        self.read: list[pulumi.Resource] = []
        if not settings.create_namespace:
            namespace = settings.namespace
            secrets = {settings.app_secret, settings.images.pull_secret} - {"", CREATED_SECRET}
            for secret in sorted(secrets):
                self.read.append(Secret.get(f"existing-secret-{secret}", f"{namespace}/{secret}",
                                            opts=pulumi.ResourceOptions(parent=self)))
            if settings.app_config_map:
                self.read.append(ConfigMap.get(f"existing-configmap-{settings.app_config_map}",
                                               f"{namespace}/{settings.app_config_map}",
                                               opts=pulumi.ResourceOptions(parent=self)))
        self.register_outputs({})
