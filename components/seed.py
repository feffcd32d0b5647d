"""Optional sample data, after the migrations and before the backend (config `seed`).

The old flow ran a `db-setup` Job after the migrations: it ran every migration again with
psql, ignoring errors, then loaded seed_sample_data.sql when `products` was empty. Only
the seeding part is kept here, as an opt-in Job: running migrations a second time, errors
ignored, is what the migration Job exists to stop. It is off by default because the file
lives in the app's checkout (not in its image) and an established database is seeded
already; a fresh environment turns it on with the file's path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pulumi
from pulumi_kubernetes.batch.v1 import Job, JobSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMap,
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    EnvVarArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.credentials import DatabaseCredentials
from components.jobs import REPLACE_UNREADY, run_to_completion
from components.security import labels, probe_security, unprivileged_pod
from components.settings import Settings

JOB_NAME = "db-seed"
_SCRIPT = r"""
set -eu
if [ -n "$SKIP_IF_QUERY" ] && [ -n "$(psql -X -q -t -A -c "$SKIP_IF_QUERY" 2>/dev/null)" ]; then
  echo "seed skipped: the database already has data ($SKIP_IF_QUERY returned a row)"
  exit 0
fi
psql -X -q -v ON_ERROR_STOP=1 -1 -f /seed/seed.sql
echo "seed loaded"
"""


@dataclass(frozen=True)
class SeedArgs:
    namespace: pulumi.Input[str]
    settings: Settings
    credentials: DatabaseCredentials
    project_dir: Path
    depends_on: Sequence[pulumi.Resource] = ()


class SeedJob(pulumi.ComponentResource):
    def __init__(self, name: str, args: SeedArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:seed:SeedJob", name, None, opts)
        settings, seed = args.settings, args.settings.seed
        path = args.project_dir / seed.file
        if not path.is_file():
            raise pulumi.RunError(f"seed.file {seed.file} does not exist; fix it with "
                                  "`pulumi config set --path seed.file <path relative to the project>`")
        text = path.read_text(encoding="utf-8")
        job_labels = labels("db-seed", "database")
        self.config_map = ConfigMap(
            JOB_NAME,
            metadata=ObjectMetaArgs(name=JOB_NAME, namespace=args.namespace, labels=job_labels),
            data={"seed.sql": text},
            opts=pulumi.ResourceOptions(parent=self),
        )
        env = [*args.credentials.database_env(("PGHOST", "PGPORT", "PGUSER", "PGDATABASE")),
               args.credentials.password_env("PGPASSWORD"), EnvVarArgs(name="SKIP_IF_QUERY", value=seed.skip_if_query)]
        deadline = 600
        self.job = Job(
            JOB_NAME,
            metadata=ObjectMetaArgs(name=JOB_NAME, namespace=args.namespace, labels=job_labels,
                                    annotations=REPLACE_UNREADY),
            spec=JobSpecArgs(
                backoff_limit=1,
                active_deadline_seconds=deadline,
                ttl_seconds_after_finished=settings.migrations.ttl_seconds_after_finished,
                template=PodTemplateSpecArgs(
                    # A changed file runs the Job again (and the guard query decides).
                    metadata=ObjectMetaArgs(labels=job_labels, annotations={
                        "ideaforge.ai/seed-sha256": hashlib.sha256(text.encode()).hexdigest()}),
                    spec=PodSpecArgs(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        security_context=unprivileged_pod(),
                        containers=[ContainerArgs(
                            name="seed", image=settings.readiness.postgres_client_image,
                            command=["sh", "-c", _SCRIPT], env=env,
                            volume_mounts=[VolumeMountArgs(name="seed", mount_path="/seed", read_only=True)],
                            security_context=probe_security(),
                            termination_message_policy="FallbackToLogsOnError",
                        )],
                        volumes=[VolumeArgs(name="seed", config_map=ConfigMapVolumeSourceArgs(name=JOB_NAME))],
                    ),
                ),
            ),
            opts=run_to_completion(self, [self.config_map, *args.depends_on], deadline),
        )
        self.register_outputs({})
