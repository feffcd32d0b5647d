"""The Ingress in front of the app: each rule a host and its paths, in order, to the backend
or frontend Service.

The dev stack's is the one traffic goes through, `ideaforge-ai-ingress-nginx` (k8s/eks/
ingress-nginx.yaml): several paths on the frontend host (the multi-agent endpoint, /api, /)
and the API host. The class is spec.ingressClassName when `className` is set; an annotation
can carry it instead (settings refuses both: the API server does).

How long `up` waits for the ingress controller to report the Ingress's address is a setting
(`awaitAddressSeconds`). Pulumi's default is to wait up to ten minutes and then fail; the
Ingress comes last, so a controller that never answers (an ALB without its certificate, a
class no controller serves) would hold every deploy after all pods have rolled. 0 does not
wait (`pulumi.com/skipAwait`): the Ingress is created or updated and the deploy ends.
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

from components.security import SKIP_AWAIT, labels, take_over_annotations
from components.settings import IngressPath, Settings

@dataclass(frozen=True)
class IngressArgs:
    namespace: pulumi.Input[str]
    settings: Settings
    depends_on: Sequence[pulumi.Resource] = ()


def _path(path: IngressPath, settings: Settings) -> HTTPIngressPathArgs:
    port = settings.backend.port if path.service == "backend" else settings.frontend.port
    return HTTPIngressPathArgs(path=path.path, path_type=path.path_type, backend=IngressBackendArgs(
        service=IngressServiceBackendArgs(name=path.service, port=ServiceBackendPortArgs(number=port))))


class AppIngress(pulumi.ComponentResource):
    def __init__(self, name: str, args: IngressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:apps:AppIngress", name, None, opts)
        settings, ingress = args.settings, args.settings.ingress
        rules = [IngressRuleArgs(host=rule.host, http=HTTPIngressRuleValueArgs(
            paths=[_path(p, settings) for p in rule.paths])) for rule in ingress.rules]
        waits = ingress.await_address_seconds > 0
        annotations = {**ingress.annotations, **take_over_annotations(settings.take_over),
                       **({} if waits else SKIP_AWAIT)}
        timeout = f"{ingress.await_address_seconds}s"
        self.ingress = Ingress(
            ingress.name,
            metadata=ObjectMetaArgs(name=ingress.name, namespace=args.namespace, labels=labels("ideaforge-ai", "ingress"),
                                    annotations=annotations or None),
            spec=IngressSpecArgs(
                ingress_class_name=ingress.class_name or None,
                rules=rules,
                tls=[IngressTLSArgs(hosts=ingress.hosts or None, secret_name=ingress.tls_secret)]
                if ingress.tls_secret else None,
            ),
            # Its own depends_on, as a component's does not reach its children: the Services it
            # routes to exist first, so its await does not wait for them.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(args.depends_on),
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout) if waits else None),
        )
        self.register_outputs({"name": self.ingress.metadata.name})
