"""The migration Job: the runner, in the backend image, against the shipped migrations.

Runs exactly when needed: the pod template carries the backend image and a checksum of
every migration file, so a new backend image or any changed file replaces the Job (see
components.jobs), and an unchanged stack leaves it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
from pulumi_kubernetes.batch.v1 import Job, JobSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMap,
    ConfigMapProjectionArgs,
    ContainerArgs,
    EnvVarArgs,
    LocalObjectReferenceArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProjectedVolumeSourceArgs,
    ResourceRequirementsArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeProjectionArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.credentials import DatabaseCredentials
from components.jobs import REPLACE_UNREADY, run_to_completion
from components.migration_bundle import Bundle
from components.security import container_security, labels, pod_security
from components.settings import Settings

JOB_NAME = "db-migrations"
CONFIGMAP_NAME = "db-migrations"
MOUNT_PATH = "/migrations"  # first on the runner's search path


@dataclass(frozen=True)
class MigrationArgs:
    namespace: pulumi.Input[str]
    settings: Settings
    bundle: Bundle
    credentials: DatabaseCredentials
    wait_for: Sequence[pulumi.Resource] = ()


def configmap_name(index: int) -> str:
    return CONFIGMAP_NAME if index == 0 else f"{CONFIGMAP_NAME}-{index + 1}"


class MigrationJob(pulumi.ComponentResource):
    config_maps: list[ConfigMap]
    job: Job

    def __init__(self, name: str, args: MigrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:migrations:MigrationJob", name, None, opts)
        settings, bundle = args.settings, args.bundle
        job_labels = labels("db-migration", "database")
        self.config_maps = [
            ConfigMap(
                configmap_name(i),
                metadata=ObjectMetaArgs(name=configmap_name(i), namespace=args.namespace, labels=job_labels),
                data={f.name: f.text for f in chunk},
                opts=pulumi.ResourceOptions(parent=self),
            )
            for i, chunk in enumerate(bundle.chunks)
        ]
        m = settings.migration
        deadline = m.active_deadline_seconds
        self.job = Job(
            JOB_NAME,
            metadata=ObjectMetaArgs(
                name=JOB_NAME,
                namespace=args.namespace,
                labels=job_labels,
                annotations=REPLACE_UNREADY,
            ),
            spec=JobSpecArgs(
                ttl_seconds_after_finished=m.ttl_seconds_after_finished,
                backoff_limit=m.backoff_limit,
                active_deadline_seconds=deadline,
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(
                        labels=job_labels,
                        annotations={
                            "ideaforge.ai/migrations-checksum": bundle.checksum,
                            "ideaforge.ai/migrations-count": str(len(bundle.files)),
                        },
                    ),
                    spec=PodSpecArgs(
                        # Never: every failed attempt keeps its own pod and logs.
                        restart_policy="Never",
                        automount_service_account_token=False,
                        image_pull_secrets=_pull_secrets(settings),
                        security_context=pod_security(settings.run_as_non_root, settings.run_as_user),
                        containers=[self._container(args)],
                        volumes=[self._volume()] if self.config_maps else None,
                    ),
                ),
            ),
            opts=run_to_completion(self, [*self.config_maps, *args.credentials.dependencies(), *args.wait_for], deadline),
        )
        self.job_name = self.job.metadata.name
        self.register_outputs({"job_name": self.job_name, "migrations_checksum": bundle.checksum})

    def _container(self, args: MigrationArgs) -> ContainerArgs:
        settings, m, pg = args.settings, args.settings.migration, args.settings.postgres
        env = [
            *args.credentials.database_env(settings),
            EnvVarArgs(name="MIGRATIONS_DIR", value=MOUNT_PATH),
            EnvVarArgs(name="MIGRATION_LOCK_TIMEOUT", value=m.lock_timeout),
            EnvVarArgs(name="MIGRATION_STATEMENT_TIMEOUT", value=m.statement_timeout),
            # Half the deadline for another run's lock, so a stuck lock ends this attempt in time.
            EnvVarArgs(name="MIGRATION_WAIT_FOR_LOCK", value=str(max(10, m.active_deadline_seconds // 2))),
            EnvVarArgs(name="PYTHONUNBUFFERED", value="1"),
        ]
        if pg.sslmode:
            env.append(EnvVarArgs(name="POSTGRES_SSLMODE", value=pg.sslmode))
        return ContainerArgs(
            name="migrate",
            image=settings.images.migration,
            command=list(m.command),
            env=env,
            volume_mounts=[VolumeMountArgs(name="migrations", mount_path=MOUNT_PATH, read_only=True)] if self.config_maps else None,
            resources=ResourceRequirementsArgs(
                requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "500m", "memory": "512Mi"}
            ),
            # The runner writes a summary to /dev/termination-log; without one, the log tail
            # becomes the termination message that Pulumi's error and kubectl describe show.
            termination_message_policy="FallbackToLogsOnError",
            security_context=container_security(),
        )

    def _volume(self) -> VolumeArgs:
        return VolumeArgs(
            name="migrations",
            projected=ProjectedVolumeSourceArgs(
                sources=[
                    VolumeProjectionArgs(config_map=ConfigMapProjectionArgs(name=configmap_name(i)))
                    for i in range(len(self.config_maps))
                ]
            ),
        )


def _pull_secrets(settings: Settings):
    pull = settings.images.pull_secret
    return [LocalObjectReferenceArgs(name=pull)] if pull else None
