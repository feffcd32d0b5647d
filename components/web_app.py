"""A web workload: a Deployment and its Service (backend and frontend)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
from pulumi_kubernetes.apps.v1 import Deployment, DeploymentSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMapEnvSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EnvFromSourceArgs,
    EnvVarArgs,
    HTTPGetActionArgs,
    LocalObjectReferenceArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    SecretEnvSourceArgs,
    Service,
    ServicePortArgs,
    ServiceSpecArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs

from components.security import container_security, labels, pod_security
from components.settings import App


@dataclass(frozen=True)
class WebAppArgs:
    namespace: pulumi.Input[str]
    image: str
    app: App
    run_as_non_root: bool
    run_as_user: Optional[int] = None
    pull_secret: str = ""
    env: Sequence[EnvVarArgs] = ()
    config_map_env: str = ""  # envFrom an existing ConfigMap
    secret_env: str = ""  # envFrom an existing Secret
    init_containers: Sequence[ContainerArgs] = ()
    # What must be complete before the Deployment is created or updated (on the Deployment
    # itself: a component's own depends_on does not reach its children).
    depends_on: Sequence[pulumi.Resource] = ()


class WebApp(pulumi.ComponentResource):
    deployment: Deployment
    service: Service

    def __init__(self, name: str, args: WebAppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:apps:WebApp", name, None, opts)
        app_labels = labels(name, "web")
        selector = {"app": name}
        env_from = []
        if args.config_map_env:
            env_from.append(EnvFromSourceArgs(config_map_ref=ConfigMapEnvSourceArgs(name=args.config_map_env)))
        if args.secret_env:
            env_from.append(EnvFromSourceArgs(secret_ref=SecretEnvSourceArgs(name=args.secret_env)))
        http = HTTPGetActionArgs(path=args.app.health_path, port="http")
        container = ContainerArgs(
            name=name,
            image=args.image,
            ports=[ContainerPortArgs(name="http", container_port=args.app.port)],
            env=list(args.env) or None,
            env_from=env_from or None,
            resources=ResourceRequirementsArgs(requests=args.app.resources.requests(), limits=args.app.resources.limits()),
            readiness_probe=ProbeArgs(http_get=http, period_seconds=10, failure_threshold=3),
            liveness_probe=ProbeArgs(http_get=http, initial_delay_seconds=30, period_seconds=20, failure_threshold=3),
            security_context=container_security(),
        )
        self.deployment = Deployment(
            name,
            metadata=ObjectMetaArgs(name=name, namespace=args.namespace, labels=app_labels),
            spec=DeploymentSpecArgs(
                replicas=args.app.replicas,
                selector=LabelSelectorArgs(match_labels=selector),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=app_labels),
                    spec=PodSpecArgs(
                        automount_service_account_token=False,
                        image_pull_secrets=[LocalObjectReferenceArgs(name=args.pull_secret)] if args.pull_secret else None,
                        security_context=pod_security(args.run_as_non_root, args.run_as_user),
                        init_containers=list(args.init_containers) or None,
                        containers=[container],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.service = Service(
            name,
            metadata=ObjectMetaArgs(name=name, namespace=args.namespace, labels=app_labels),
            spec=ServiceSpecArgs(
                selector=selector,
                ports=[ServicePortArgs(name="http", port=args.app.port, target_port="http")],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
        )
        self.service_name = self.service.metadata.name
        self.register_outputs({"service_name": self.service_name})
