"""Cluster DNS as a kubeadm or kind cluster has it: CoreDNS in kube-system behind the kube-dns
Service, reading Services and Endpoints through the API. Pods find `postgres-ha-primary`,
`redis` and `backend` by name, as in the app's namespace. There is no upstream resolver: the
run's network namespace has no way out, so other names fail."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

COREFILE = """.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
    loadbalance
}
"""


def _create(create, *args) -> None:
    try:
        create(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise


def deploy(api: client.ApiClient, image: str, cluster_ip: str) -> None:
    core, apps, rbac = client.CoreV1Api(api), client.AppsV1Api(api), client.RbacAuthorizationV1Api(api)
    labels = {"k8s-app": "kube-dns"}
    _create(rbac.create_cluster_role, {
        "metadata": {"name": "system:coredns"},
        "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                   "verbs": ["list", "watch"]},
                  {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]})
    _create(rbac.create_cluster_role_binding, {
        "metadata": {"name": "system:coredns"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
        "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]})
    _create(core.create_namespaced_service_account, "kube-system", {"metadata": {"name": "coredns"}})
    _create(core.create_namespaced_config_map, "kube-system",
            {"metadata": {"name": "coredns"}, "data": {"Corefile": COREFILE}})
    _create(apps.create_namespaced_deployment, "kube-system", {
        "metadata": {"name": "coredns", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": "coredns", "dnsPolicy": "Default", "priorityClassName": "system-cluster-critical",
                "containers": [{
                    "name": "coredns", "image": image, "imagePullPolicy": "Never",
                    "args": ["-conf", "/etc/coredns/Corefile"],
                    "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                              {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                    "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "170Mi"}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}]}],
                "volumes": [{"name": "config", "configMap": {"name": "coredns"}}]}}}})
    _create(core.create_namespaced_service, "kube-system", {
        "metadata": {"name": "kube-dns", "labels": labels},
        "spec": {"selector": labels, "clusterIP": cluster_ip,
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}})
