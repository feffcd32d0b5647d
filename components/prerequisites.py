"""Objects the stack uses but does not own: the app's ConfigMap and Secret, the pull secret.

Each is read from the cluster (`.get`), so a missing one stops `pulumi preview` with its
namespace and name, instead of leaving pods in CreateContainerConfigError until Pulumi's
await timeout halfway through `up`. The keys the Jobs take from them are checked too.
pulumi-kubernetes keeps a read Secret's data as a Pulumi secret, in the state: with `readSecrets`
false no Secret is read (deploy.py checks them instead). Nothing is read when this stack
creates the namespace (nothing can be in it yet).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.core.v1 import ConfigMap, Secret

from components.credentials import DATABASE_KEYS
from components.settings import CREATED_SECRET, Settings


@dataclass(frozen=True)
class PrerequisitesArgs:
    settings: Settings


class MissingKeys(pulumi.RunError):
    pass


def required_config_map_keys(settings: Settings) -> list[str]:
    """The app ConfigMap keys the Jobs read (those the stack does not set itself)."""
    keys = [key for field, key in DATABASE_KEYS if getattr(settings.database, field) is None]
    if settings.redis.url is None:
        keys.append("REDIS_URL")
    return keys


class Prerequisites(pulumi.ComponentResource):
    def __init__(self, name: str, args: PrerequisitesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:prerequisites:Prerequisites", name, None, opts)
        settings = args.settings
        self.read: list[pulumi.Resource] = []
        if not settings.create_namespace:
            namespace = settings.namespace
            child = pulumi.ResourceOptions(parent=self)
            # Not with readSecrets false: what is read stays in the state (deploy.py checks them instead).
            secrets = {settings.app.secret, settings.images.pull_secret} if settings.read_secrets else set()
            for secret in sorted(secrets - {"", CREATED_SECRET}):
                found = Secret.get(f"existing-secret-{secret}", f"{namespace}/{secret}", opts=child)
                self.read.append(found)
            if settings.app.config_map:
                config_map = ConfigMap.get(f"existing-configmap-{settings.app.config_map}",
                                           f"{namespace}/{settings.app.config_map}", opts=child)
                wanted = required_config_map_keys(settings)
                config_map.data.apply(lambda data: _check_keys(settings, data, wanted))
                self.read.append(config_map)
        self.register_outputs({})


def _check_keys(settings: Settings, data, wanted: list[str]) -> None:
    if data is None:  # not known (a preview of objects yet to exist): nothing to check
        return
    missing = [key for key in wanted if key not in data]
    if missing:
        raise MissingKeys(
            f"ConfigMap {settings.namespace}/{settings.app.config_map} has no {', '.join(missing)}, which the "
            "migration and readiness Jobs read; add them there, or set them in the stack "
            "(`pulumi config set --path database.host ...`)"
        )
