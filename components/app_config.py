"""The app's ConfigMap (`ideaforge-ai-config`), written from the stack's `app.configData`.

`make eks-deploy` applied it from k8s/eks/configmap.yaml; `make eks-load-secrets` only builds
the Secret. Owned here, its non-secret values live in the stack file, reviewed like any other
change, and a changed value reaches the pods that read it: each workload's pod template
carries a checksum of the keys it reads (components.app_env), so the next `up` rolls exactly
those. On the take-over `up` the existing object is adopted like the others (patchForce).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
from pulumi_kubernetes.core.v1 import ConfigMap
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.retention import retains_live_app
from components.security import labels, take_over_annotations
from components.settings import Settings


# The provider replaces a ConfigMap whose data changes (it does not update one in place), and a
# named one is deleted before its replacement is created. Where the stack retains the live
# ConfigMap (components.retention), that delete leaves the object in place, so the replacement
# is applied over it and would conflict with the fields its previous incarnation's field manager
# owns: force them, as they are this program's own.
REPLACE_OVER_RETAINED = {"pulumi.com/patchForce": "true"}


@dataclass(frozen=True)
class AppConfigArgs:
    namespace: pulumi.Input[str]
    settings: Settings
    depends_on: Sequence[pulumi.Input[pulumi.Resource]] = ()


class AppConfig(pulumi.ComponentResource):
    config_map: ConfigMap

    def __init__(self, name: str, args: AppConfigArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:apps:AppConfig", name, None, opts)
        app = args.settings.app
        self.config_map = ConfigMap(
            app.config_map,
            metadata=ObjectMetaArgs(name=app.config_map, namespace=args.namespace,
                                    labels=labels("ideaforge-ai", "config"),
                                    annotations={**(REPLACE_OVER_RETAINED if retains_live_app(args.settings) else {}),
                                                 **take_over_annotations(args.settings.take_over)} or None),
            data=dict(app.config_data),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"name": self.config_map.metadata.name})
