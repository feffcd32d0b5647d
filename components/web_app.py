"""A web workload: its Deployment, Service and HorizontalPodAutoscaler (backend, frontend).

With autoscaling on, the Deployment does not set `replicas`: the autoscaler owns that
field, and a program that also set it would fight the autoscaler on every `up` (a
server-side apply conflict, pulumi-kubernetes #2491). The pod template keeps the old
manifests' labels (`app`, `component`) and selector, so taking over a running Deployment
does not change its selector, and the old `kubectl -l app=backend` commands keep working.
The container's environment is the workload's own list (components.app_env), never `envFrom`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
from pulumi_kubernetes.apps.v1 import Deployment, DeploymentSpecArgs
from pulumi_kubernetes.autoscaling.v2 import (
    CrossVersionObjectReferenceArgs,
    HorizontalPodAutoscaler,
    HorizontalPodAutoscalerSpecArgs,
    MetricSpecArgs,
    MetricTargetArgs,
    ResourceMetricSourceArgs,
)
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    EnvVarArgs,
    HTTPGetActionArgs,
    LocalObjectReferenceArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    Service,
    ServicePortArgs,
    ServiceSpecArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs

from components.security import SKIP_AWAIT, container_security, labels, pod_security, take_over_annotations
from components.settings import Probe, Workload

COMPONENT = {"backend": "api", "frontend": "web"}  # the old manifests' `component` labels


@dataclass(frozen=True)
class WebAppArgs:
    namespace: pulumi.Input[str]
    image: str
    workload: Workload
    pull_secret: str = ""
    env: Sequence[EnvVarArgs] = ()
    # On the pod template: what must roll the pods when it changes (the checksum of the
    # ConfigMap values read, the app Secret's version).
    template_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    init_containers: Sequence[ContainerArgs] = ()
    take_over: bool = False
    # What must be complete before the Deployment is created or updated (on the Deployment
    # itself: a component's own depends_on does not reach its children).
    depends_on: Sequence[pulumi.Resource] = ()


def _rollout_wait(seconds: int) -> pulumi.CustomTimeouts:
    """How long `up` waits for a rollout: Pulumi's wait for the Deployment, which ends only with
    the rollout or this timeout (ProgressDeadlineExceeded does not end it)."""
    return pulumi.CustomTimeouts(create=f"{seconds}s", update=f"{seconds}s")


class WebApp(pulumi.ComponentResource):
    deployment: Deployment
    service: Service

    def __init__(self, name: str, args: WebAppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:apps:WebApp", name, None, opts)
        w = args.workload
        component = COMPONENT.get(name, "web")
        metadata_labels = labels(name, component)
        template_labels = {"app": name, "component": component}
        annotations = take_over_annotations(args.take_over) or None
        container = ContainerArgs(
            name=name,
            image=args.image,
            ports=[ContainerPortArgs(name="http", container_port=w.port, protocol="TCP")],
            env=list(args.env) or None,
            resources=ResourceRequirementsArgs(requests=w.requests, limits=w.limits),
            readiness_probe=_probe(w.readiness, w),
            liveness_probe=_probe(w.liveness, w),
            security_context=container_security(w.security),
        )
        self.deployment = Deployment(
            name,
            metadata=ObjectMetaArgs(name=name, namespace=args.namespace, labels=metadata_labels,
                                    annotations=annotations),
            spec=DeploymentSpecArgs(
                replicas=None if w.autoscaling.enabled else w.replicas,
                # The Deployment's own verdict, shown by kubectl and in deploy.py's report. The
                # provider does not stop at it: it waits out the resource's timeout (below).
                progress_deadline_seconds=w.progress_deadline_seconds,
                selector=LabelSelectorArgs(match_labels={"app": name}),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=template_labels,
                                            annotations=dict(args.template_annotations) or None),
                    spec=PodSpecArgs(
                        image_pull_secrets=[LocalObjectReferenceArgs(name=args.pull_secret)] if args.pull_secret else None,
                        security_context=pod_security(w.security),
                        init_containers=list(args.init_containers) or None,
                        containers=[container],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on),
                                        custom_timeouts=_rollout_wait(w.rollout_timeout_seconds)),
        )
        # Not awaited: it is created once the Deployment's rollout has been awaited, so its
        # endpoints are those Ready pods (its selector is the pod template's `app` label), and the
        # provider's wait would add only a fixed 10 s sleep after the last endpoints change
        # (pulumi-kubernetes pkg/await/service.go), holding the frontend and the Ingress after it.
        self.service = Service(
            name,
            metadata=ObjectMetaArgs(name=name, namespace=args.namespace, labels=metadata_labels,
                                    annotations={**(annotations or {}), **SKIP_AWAIT}),
            spec=ServiceSpecArgs(
                type="ClusterIP",
                selector={"app": name},
                ports=[ServicePortArgs(name="http", port=w.port, target_port=w.port, protocol="TCP")],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
        )
        self.autoscaler = None
        if w.autoscaling.enabled:
            self.autoscaler = self._autoscaler(name, args, metadata_labels, annotations)
        self.service_name = self.service.metadata.name
        self.register_outputs({"service_name": self.service_name})

    def _autoscaler(self, name: str, args: WebAppArgs, metadata_labels: dict, annotations) -> HorizontalPodAutoscaler:
        scaling = args.workload.autoscaling
        metrics = [
            MetricSpecArgs(type="Resource", resource=ResourceMetricSourceArgs(
                name=resource, target=MetricTargetArgs(type="Utilization", average_utilization=target)))
            for resource, target in (("cpu", scaling.cpu_utilization), ("memory", scaling.memory_utilization))
            if target is not None
        ]
        return HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=ObjectMetaArgs(name=f"{name}-hpa", namespace=args.namespace, labels=metadata_labels,
                                    annotations=annotations),
            spec=HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=CrossVersionObjectReferenceArgs(api_version="apps/v1", kind="Deployment", name=name),
                min_replicas=scaling.min,
                max_replicas=scaling.max,
                metrics=metrics,
                behavior=scaling.behavior,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
        )


def _probe(probe: Probe, w: Workload) -> ProbeArgs:
    return ProbeArgs(
        http_get=HTTPGetActionArgs(path=w.health_path, port=w.port),
        initial_delay_seconds=probe.initial_delay_seconds,
        period_seconds=probe.period_seconds,
        timeout_seconds=probe.timeout_seconds,
        failure_threshold=probe.failure_threshold,
    )
