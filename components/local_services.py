"""Postgres and Redis inside the namespace, for laptop clusters (kind, minikube, Docker Desktop).

Only for the `local` stack (config local.enabled): a single-replica StatefulSet with a
volume and a Redis Deployment, each with a readiness probe, under the Service names the
rest of the program connects to (database.host, redis.host). The server image has pgvector
and the contrib extensions (uuid-ossp) that the app's migrations create.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.apps.v1 import Deployment, DeploymentSpecArgs, StatefulSet, StatefulSetSpecArgs
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    ExecActionArgs,
    PersistentVolumeClaimSpecArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    PersistentVolumeClaimArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    Service,
    ServicePortArgs,
    ServiceSpecArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeResourceRequirementsArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs

from components.credentials import DatabaseCredentials
from pulumi_kubernetes.core.v1 import CapabilitiesArgs, SecurityContextArgs

from components.security import labels
from components.settings import Settings

POSTGRES_UID = 999  # the postgres user of the Debian-based postgres and pgvector images
REDIS_UID = 999  # the redis user of the alpine image


@dataclass(frozen=True)
class LocalServicesArgs:
    namespace: pulumi.Input[str]
    settings: Settings
    credentials: DatabaseCredentials


def _container_security() -> SecurityContextArgs:
    return SecurityContextArgs(allow_privilege_escalation=False, capabilities=CapabilitiesArgs(drop=["ALL"]))


def _pod_security(uid: int) -> PodSecurityContextArgs:
    return PodSecurityContextArgs(
        run_as_non_root=True, run_as_user=uid, run_as_group=uid, fs_group=uid,
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


class LocalServices(pulumi.ComponentResource):
    postgres: StatefulSet
    redis: Deployment

    def __init__(self, name: str, args: LocalServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:local:LocalServices", name, None, opts)
        settings = args.settings
        db, redis, local = settings.database, settings.redis, settings.local
        pg_labels, redis_labels = labels("postgres", "database"), labels("redis", "cache")
        child = pulumi.ResourceOptions(parent=self, depends_on=args.credentials.dependencies())

        self.postgres_service = Service(
            "postgres",
            metadata=ObjectMetaArgs(name=db.host, namespace=args.namespace, labels=pg_labels),
            spec=ServiceSpecArgs(selector={"app": "postgres"}, ports=[ServicePortArgs(name="postgres", port=db.port, target_port="postgres")]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.postgres = StatefulSet(
            "postgres",
            metadata=ObjectMetaArgs(name="postgres", namespace=args.namespace, labels=pg_labels),
            spec=StatefulSetSpecArgs(
                service_name=db.host,
                replicas=1,
                selector=LabelSelectorArgs(match_labels={"app": "postgres"}),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=pg_labels),
                    spec=PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=_pod_security(POSTGRES_UID),
                        containers=[ContainerArgs(
                            name="postgres",
                            image=local.postgres_image,
                            ports=[ContainerPortArgs(name="postgres", container_port=5432)],
                            env=[
                                EnvVarArgs(name="POSTGRES_USER", value=db.user),
                                EnvVarArgs(name="POSTGRES_DB", value=db.name),
                                args.credentials.password_env(),
                                EnvVarArgs(name="PGDATA", value="/var/lib/postgresql/data/pgdata"),
                            ],
                            readiness_probe=ProbeArgs(
                                exec_=ExecActionArgs(command=["pg_isready", "-U", db.user, "-d", db.name, "-h", "127.0.0.1"]),
                                period_seconds=5, failure_threshold=6,
                            ),
                            resources=ResourceRequirementsArgs(requests={"cpu": "100m", "memory": "256Mi"}, limits={"memory": "512Mi"}),
                            volume_mounts=[VolumeMountArgs(name="data", mount_path="/var/lib/postgresql/data"),
                                           VolumeMountArgs(name="run", mount_path="/var/run/postgresql")],
                            security_context=_container_security(),
                        )],
                        volumes=[VolumeArgs(name="run", empty_dir=EmptyDirVolumeSourceArgs())],
                    ),
                ),
                volume_claim_templates=[PersistentVolumeClaimArgs(
                    metadata=ObjectMetaArgs(name="data"),
                    spec=PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"],
                        resources=VolumeResourceRequirementsArgs(requests={"storage": local.storage}),
                    ),
                )],
            ),
            opts=child,
        )
        self.redis_service = Service(
            "redis",
            metadata=ObjectMetaArgs(name=redis.host, namespace=args.namespace, labels=redis_labels),
            spec=ServiceSpecArgs(selector={"app": "redis"}, ports=[ServicePortArgs(name="redis", port=redis.port, target_port="redis")]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.redis = Deployment(
            "redis",
            metadata=ObjectMetaArgs(name="redis", namespace=args.namespace, labels=redis_labels),
            spec=DeploymentSpecArgs(
                replicas=1,
                selector=LabelSelectorArgs(match_labels={"app": "redis"}),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=redis_labels),
                    spec=PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=_pod_security(REDIS_UID),
                        containers=[ContainerArgs(
                            name="redis",
                            image=local.redis_image,
                            ports=[ContainerPortArgs(name="redis", container_port=6379)],
                            readiness_probe=ProbeArgs(exec_=ExecActionArgs(command=["redis-cli", "ping"]), period_seconds=5),
                            resources=ResourceRequirementsArgs(requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "256Mi"}),
                            volume_mounts=[VolumeMountArgs(name="data", mount_path="/data")],
                            security_context=_container_security(),
                        )],
                        volumes=[VolumeArgs(name="data", empty_dir=EmptyDirVolumeSourceArgs())],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
