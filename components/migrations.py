"""The migration Job: the runner, in the backend image, against the app's migrations.

Which migrations (config `migrations.source`):
- `image`: the copies inside the image the Job runs (`migrations.imageDirs`), so they
  travel with backendImageTag; the program never sees them;
- `configmap`: files of this checkout (`migrations.dirs`), shipped in ConfigMaps.

The runner itself travels as a zipapp in a ConfigMap (components.runner_bundle) unless
a dedicated `migrations.image` has it; the Job runs it only if its sha256 is the one in the
Job's own pod template (components/runner_launch.py). The Job runs exactly when needed: its
pod template carries the image, the runner's checksum and (configmap source) the migrations'
checksum, so any change replaces the Job (see components.jobs), and an unchanged stack leaves
it alone.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pulumi
from pulumi_kubernetes.batch.v1 import Job, JobSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMap,
    ConfigMapProjectionArgs,
    ConfigMapVolumeSourceArgs,
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

from components import runner_bundle
from components.credentials import DatabaseCredentials
from components.jobs import REPLACE_UNREADY, run_to_completion
from components.migration_bundle import Bundle
from components.runner_bundle import RunnerBundle
from components.security import container_security, labels, pod_security
from components.settings import Settings

JOB_NAME = "db-migrations"
CONFIGMAP_NAME = "db-migrations-files"
RUNNER_CONFIGMAP = "db-migrations-runner"
SNAPSHOT_CONFIGMAP = "db-migrations-snapshot"
SNAPSHOT_MOUNT = "/opt/db-migrations-snapshot"
SNAPSHOT_FILE = "snapshot.sql"
SNAPSHOT_LIMIT = 900 * 1024  # a ConfigMap holds at most 1 MiB
FILES_MOUNT = "/migrations"  # first on the runner's own search path
DEFAULT_IMAGE_COMMAND = ("python", "-m", "runner")


@dataclass(frozen=True)
class MigrationArgs:
    namespace: pulumi.Input[str]
    settings: Settings
    credentials: DatabaseCredentials
    bundle: Optional[Bundle]  # the shipped files (configmap source), else None
    runner: Optional[RunnerBundle]  # the zipapp, unless a dedicated image has the runner
    wait_for: Sequence[pulumi.Resource] = ()
    # More of what runs the Job again when it changes (the database it reads from the app ConfigMap).
    triggers: Mapping[str, str] = field(default_factory=dict)
    snapshot: Optional[str] = None  # the text of migrations.snapshot (read_snapshot)


def read_snapshot(project_dir: Path, relative: Optional[str]) -> Optional[str]:
    """migrations.snapshot's text, checked at preview: it exists and fits in a ConfigMap."""
    if not relative:
        return None
    path = project_dir / relative
    if not path.is_file():
        raise pulumi.RunError(f"migrations.snapshot {relative} does not exist; take one with `python -m runner snapshot "
                              f"{relative}` (README, \"Fresh environments\") or `pulumi config rm --path migrations.snapshot`")
    data = path.read_bytes()
    if len(data) > SNAPSHOT_LIMIT:
        raise pulumi.RunError(f"migrations.snapshot {relative} is {len(data) // 1024} KiB; a ConfigMap holds at most "
                              f"{SNAPSHOT_LIMIT // 1024} KiB: bake it into a dedicated migrations image "
                              "(migrations.image) and set MIGRATION_SNAPSHOT there")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise pulumi.RunError(f"migrations.snapshot {relative} is not UTF-8 text (byte {exc.start}); the runner "
                              "reads snapshots as UTF-8: take it again with `python -m runner snapshot`") from None


def configmap_name(index: int) -> str:
    return CONFIGMAP_NAME if index == 0 else f"{CONFIGMAP_NAME}-{index + 1}"


class MigrationJob(pulumi.ComponentResource):
    config_maps: list[ConfigMap]
    job: Job

    def __init__(self, name: str, args: MigrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:migrations:MigrationJob", name, None, opts)
        settings = args.settings
        job_labels = labels("db-migration", "database")
        child = pulumi.ResourceOptions(parent=self)
        chunks = args.bundle.chunks if args.bundle else ()
        self.config_maps = [
            ConfigMap(
                configmap_name(i),
                metadata=ObjectMetaArgs(name=configmap_name(i), namespace=args.namespace, labels=job_labels),
                data={f.name: f.text for f in chunk},
                opts=child,
            )
            for i, chunk in enumerate(chunks)
        ]
        self.runner_config_map = None
        if args.runner is not None:
            self.runner_config_map = ConfigMap(
                RUNNER_CONFIGMAP,
                metadata=ObjectMetaArgs(name=RUNNER_CONFIGMAP, namespace=args.namespace, labels=job_labels),
                binary_data={runner_bundle.FILE_NAME: base64.b64encode(args.runner.data).decode()},
                opts=child,
            )
        self.snapshot_config_map = None
        if args.snapshot is not None:
            self.snapshot_config_map = ConfigMap(
                SNAPSHOT_CONFIGMAP,
                metadata=ObjectMetaArgs(name=SNAPSHOT_CONFIGMAP, namespace=args.namespace, labels=job_labels),
                data={SNAPSHOT_FILE: args.snapshot},
                opts=child,
            )
        m = settings.migrations
        # A new backend tag runs the Job again even with a dedicated migrations image: what the
        # backend expects of the schema may have changed with it.
        trigger = {"ideaforge.ai/image": settings.migration_image, "ideaforge.ai/backend-image": settings.images.backend,
                   **args.triggers}
        if args.runner is not None:
            trigger["ideaforge.ai/runner-sha256"] = args.runner.checksum
        if args.bundle is not None:
            trigger["ideaforge.ai/migrations-sha256"] = args.bundle.checksum
            trigger["ideaforge.ai/migrations-count"] = str(len(args.bundle.files))
        if args.snapshot is not None:
            trigger["ideaforge.ai/snapshot-sha256"] = hashlib.sha256(args.snapshot.encode()).hexdigest()
        volumes, mounts = self._volumes()
        owned = [*self.config_maps, *(c for c in (self.runner_config_map, self.snapshot_config_map) if c)]
        self.job = Job(
            JOB_NAME,
            metadata=ObjectMetaArgs(name=JOB_NAME, namespace=args.namespace, labels=job_labels,
                                    annotations=REPLACE_UNREADY),
            spec=JobSpecArgs(
                ttl_seconds_after_finished=m.ttl_seconds_after_finished,
                backoff_limit=m.backoff_limit,
                active_deadline_seconds=m.active_deadline_seconds,
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=job_labels, annotations=trigger),
                    spec=PodSpecArgs(
                        # Never: every failed attempt keeps its own pod and logs.
                        restart_policy="Never",
                        automount_service_account_token=False,
                        image_pull_secrets=_pull_secrets(settings),
                        security_context=pod_security(settings.backend.security),
                        containers=[self._container(args, mounts)],
                        volumes=volumes or None,
                    ),
                ),
            ),
            opts=run_to_completion(self, [*owned, *args.credentials.dependencies(), *args.wait_for],
                                   m.active_deadline_seconds),
        )
        self.job_name = self.job.metadata.name
        self.register_outputs({"job_name": self.job_name})

    def _volumes(self) -> tuple[list[VolumeArgs], list[VolumeMountArgs]]:
        volumes, mounts = [], []
        if self.config_maps:
            volumes.append(VolumeArgs(name="migrations", projected=ProjectedVolumeSourceArgs(sources=[
                VolumeProjectionArgs(config_map=ConfigMapProjectionArgs(name=configmap_name(i)))
                for i in range(len(self.config_maps))
            ])))
            mounts.append(VolumeMountArgs(name="migrations", mount_path=FILES_MOUNT, read_only=True))
        if self.runner_config_map is not None:
            volumes.append(VolumeArgs(name="runner", config_map=ConfigMapVolumeSourceArgs(name=RUNNER_CONFIGMAP)))
            mounts.append(VolumeMountArgs(name="runner", mount_path=runner_bundle.MOUNT_PATH, read_only=True))
        if self.snapshot_config_map is not None:
            volumes.append(VolumeArgs(name="snapshot", config_map=ConfigMapVolumeSourceArgs(name=SNAPSHOT_CONFIGMAP)))
            mounts.append(VolumeMountArgs(name="snapshot", mount_path=SNAPSHOT_MOUNT, read_only=True))
        return volumes, mounts

    def _container(self, args: MigrationArgs, mounts: list[VolumeMountArgs]) -> ContainerArgs:
        settings, m = args.settings, args.settings.migrations
        directories = FILES_MOUNT if m.source == "configmap" else ":".join(m.image_dirs)
        env = [
            *args.credentials.database_env(),
            args.credentials.password_env(),
            EnvVarArgs(name="MIGRATIONS_DIR", value=directories),
            EnvVarArgs(name="MIGRATION_LOCK_TIMEOUT", value=m.lock_timeout),
            EnvVarArgs(name="MIGRATION_STATEMENT_TIMEOUT", value=m.statement_timeout),
            # Half the deadline for another run's lock, so a stuck lock ends this attempt in time.
            EnvVarArgs(name="MIGRATION_WAIT_FOR_LOCK", value=str(max(10, m.active_deadline_seconds // 2))),
            EnvVarArgs(name="PYTHONUNBUFFERED", value="1"),
        ]
        if m.allow_out_of_order:
            env.append(EnvVarArgs(name="MIGRATION_ALLOW_OUT_OF_ORDER", value="true"))
        if settings.database.sslmode:
            env.append(EnvVarArgs(name="POSTGRES_SSLMODE", value=settings.database.sslmode))
        if args.snapshot is not None:
            # Loaded only when the database is empty: a database with a history ignores it.
            env.append(EnvVarArgs(name="MIGRATION_SNAPSHOT", value=f"{SNAPSHOT_MOUNT}/{SNAPSHOT_FILE}"))
        if args.runner is not None:
            # The launcher checks the zipapp against the checksum written here, in the pod template.
            command = args.runner.command()
        else:
            command = list(m.command or DEFAULT_IMAGE_COMMAND)
        return ContainerArgs(
            name="migrate",
            image=settings.migration_image,
            command=command,
            env=env,
            volume_mounts=mounts or None,
            resources=ResourceRequirementsArgs(
                requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "500m", "memory": "512Mi"}
            ),
            # The runner writes a summary to /dev/termination-log; without one, the log tail
            # becomes the termination message that Pulumi's error and kubectl describe show.
            termination_message_policy="FallbackToLogsOnError",
            security_context=container_security(settings.backend.security),
        )


def _pull_secrets(settings: Settings):
    pull = settings.images.pull_secret
    return [LocalObjectReferenceArgs(name=pull)] if pull else None
