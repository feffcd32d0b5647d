"""Objects the stack uses but does not own: the app's Secret and the image pull secret.

Each is read from the cluster (`.get`), so a missing one stops `pulumi preview` with its
namespace and name, instead of leaving pods in CreateContainerConfigError until Pulumi's
await timeout halfway through `up`. The app Secret must hold every key a workload or a Job
cannot start without (settings.secret_keys_read); only key names are ever compared or
printed. pulumi-kubernetes keeps a read Secret's data as a Pulumi secret, in the state: with
`readSecrets` false no Secret is read (deploy.py checks them instead). Nothing is read when
this stack creates the namespace (nothing can be in it yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
from pulumi_kubernetes.core.v1 import Secret

from components.settings import CREATED_SECRET, Settings, secret_keys_read


@dataclass(frozen=True)
class PrerequisitesArgs:
    settings: Settings


class MissingKeys(pulumi.RunError):
    pass


class Prerequisites(pulumi.ComponentResource):
    app_secret: Optional[Secret]

    def __init__(self, name: str, args: PrerequisitesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:prerequisites:Prerequisites", name, None, opts)
        settings = args.settings
        self.read: list[pulumi.Resource] = []
        self.app_secret = None
        if not settings.create_namespace:
            namespace = settings.namespace
            child = pulumi.ResourceOptions(parent=self)
            # Not with readSecrets false: what is read stays in the state (deploy.py checks them instead).
            secrets = {settings.app.secret, settings.images.pull_secret} if settings.read_secrets else set()
            for secret in sorted(secrets - {"", CREATED_SECRET}):
                found = Secret.get(f"existing-secret-{secret}", f"{namespace}/{secret}", opts=child)
                self.read.append(found)
                if secret == settings.app.secret:
                    self.app_secret = found
        # What the rest waits for: the reads, and the check of the app Secret's keys (a failed
        # check registers nothing after it).
        self.checked: list[pulumi.Input[pulumi.Resource]] = [self]
        if self.app_secret is not None:
            wanted, secret = secret_keys_read(settings), self.app_secret
            self.checked.append(secret.data.apply(lambda data: _check_keys(settings, data, wanted) or secret))
        self.register_outputs({})

    def app_secret_version(self) -> Optional[pulumi.Output[str]]:
        """The app Secret's resourceVersion: it changes whenever the Secret does."""
        if self.app_secret is None:
            return None
        return self.app_secret.metadata.apply(lambda m: (m.resource_version if m is not None else None) or "")


def _check_keys(settings: Settings, data, wanted: dict[str, list[str]]) -> None:
    present = set(data or {})
    missing = {key: readers for key, readers in wanted.items() if key not in present}
    if missing:
        lines = [f"{key} ({' and '.join(dict.fromkeys(readers))})" for key, readers in missing.items()]
        raise MissingKeys(
            f"Secret {settings.namespace}/{settings.app.secret} has no {', '.join(lines)}, which the pods cannot "
            "start without; add them to the Secret (`make eks-load-secrets` from env.eks), or make the variable "
            "optional (`pulumi config set --path backend.env.NAME \"secret optional\"`)"
        )
