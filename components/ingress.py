"""The Ingress in front of the app: frontendHost to the frontend, backendHost to the backend.

Without hosts, one rule by path: `/api` to the backend, everything else to the frontend.
The class is spec.ingressClassName when `className` is set; the old manifests chose it with
the `kubernetes.io/ingress.class` annotation, which `annotations` can carry on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
from pulumi_kubernetes.networking.v1 import (
    HTTPIngressPathArgs,
    HTTPIngressRuleValueArgs,
    Ingress,
    IngressBackendArgs,
    IngressRuleArgs,
    IngressServiceBackendArgs,
    IngressSpecArgs,
    IngressTLSArgs,
    ServiceBackendPortArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.security import labels, take_over_annotations
from components.settings import Settings


@dataclass(frozen=True)
class IngressArgs:
    namespace: pulumi.Input[str]
    settings: Settings
    depends_on: Sequence[pulumi.Resource] = ()


def _path(path: str, service: str, port: int) -> HTTPIngressPathArgs:
    return HTTPIngressPathArgs(path=path, path_type="Prefix", backend=IngressBackendArgs(
        service=IngressServiceBackendArgs(name=service, port=ServiceBackendPortArgs(number=port))))


class AppIngress(pulumi.ComponentResource):
    def __init__(self, name: str, args: IngressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:apps:AppIngress", name, None, opts)
        settings, ingress = args.settings, args.settings.ingress
        frontend = _path("/", "frontend", settings.frontend.port)
        backend = _path("/", "backend", settings.backend.port)
        if ingress.frontend_host or ingress.backend_host:
            rules = []
            if ingress.frontend_host:
                rules.append(IngressRuleArgs(host=ingress.frontend_host, http=HTTPIngressRuleValueArgs(paths=[frontend])))
            if ingress.backend_host:
                rules.append(IngressRuleArgs(host=ingress.backend_host, http=HTTPIngressRuleValueArgs(paths=[backend])))
        else:
            rules = [IngressRuleArgs(http=HTTPIngressRuleValueArgs(paths=[
                _path("/api", "backend", settings.backend.port), frontend]))]
        hosts = [h for h in (ingress.frontend_host, ingress.backend_host) if h]
        annotations = {**ingress.annotations, **take_over_annotations(settings.take_over)}
        self.ingress = Ingress(
            ingress.name,
            metadata=ObjectMetaArgs(name=ingress.name, namespace=args.namespace, labels=labels("ideaforge-ai", "ingress"),
                                    annotations=annotations or None),
            spec=IngressSpecArgs(
                ingress_class_name=ingress.class_name or None,
                rules=rules,
                tls=[IngressTLSArgs(hosts=hosts or None, secret_name=ingress.tls_secret)] if ingress.tls_secret else None,
            ),
            # Its own depends_on, as a component's does not reach its children: the Services it
            # routes to exist first, so its await does not wait for them.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"name": self.ingress.metadata.name})
