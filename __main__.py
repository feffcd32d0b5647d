"""IdeaForge AI: Postgres + Redis ready -> migration Job -> backend -> frontend.

Composition only: stack settings -> components -> exports. Each arrow is a Pulumi
dependency, so a failed link stops everything after it.
"""

from pathlib import Path

import pulumi

from components import migration_bundle, settings as stack_settings
from components.credentials import CredentialsArgs, DatabaseCredentials
from components.local_services import LocalServices, LocalServicesArgs
from components.migrations import MigrationArgs, MigrationJob
from components.namespace import namespace_for
from components.prerequisites import Prerequisites, PrerequisitesArgs
from components.readiness import ReadinessArgs, ReadinessCheck, postgres_probe, probe_container, redis_probe
from components.web_app import WebApp, WebAppArgs

PROJECT_DIR = Path(__file__).resolve().parent

settings = stack_settings.from_stack()
bundle = migration_bundle.load(PROJECT_DIR / settings.migration.directory)
namespace = namespace_for(settings)
prerequisites = Prerequisites("prerequisites", PrerequisitesArgs(settings))

credentials = DatabaseCredentials("credentials", CredentialsArgs(namespace, settings))
local = LocalServices("local-services", LocalServicesArgs(namespace, settings, credentials)) if settings.local_services else None
after_local = [prerequisites, *([local] if local else [])]

postgres = postgres_probe(settings)
redis = redis_probe(settings, credentials.redis_url_secret)
# Readiness is checked again whenever a deploy would run migrations.
trigger = f"{settings.images.backend_tag}-{bundle.checksum[:16]}"
postgres_ready = ReadinessCheck("postgres-ready", ReadinessArgs(namespace, postgres, trigger, depends_on=after_local))
redis_ready = ReadinessCheck("redis-ready", ReadinessArgs(namespace, redis, trigger, depends_on=after_local))

migrations = MigrationJob(
    "migrations",
    MigrationArgs(namespace, settings, bundle, credentials, wait_for=[postgres_ready.job, redis_ready.job]),
)

backend = WebApp(
    "backend",
    WebAppArgs(
        namespace=namespace,
        image=settings.images.backend,
        app=settings.backend,
        run_as_non_root=settings.run_as_non_root,
        run_as_user=settings.run_as_user,
        pull_secret=settings.images.pull_secret,
        config_map_env=settings.app_config_map,
        secret_env=settings.app_secret,
        env=credentials.database_env(settings),
        init_containers=[
            probe_container(postgres, "wait-for-postgres", wait_forever=True),
            probe_container(redis, "wait-for-redis", wait_forever=True),
        ],
        depends_on=[migrations.job, prerequisites],
    ),
)

frontend = WebApp(
    "frontend",
    WebAppArgs(
        namespace=namespace,
        image=settings.images.frontend,
        app=settings.frontend,
        run_as_non_root=settings.run_as_non_root,
        run_as_user=settings.run_as_user,
        pull_secret=settings.images.pull_secret,
        depends_on=[backend.deployment, backend.service, prerequisites],
    ),
)

pulumi.export("namespace", namespace)
pulumi.export("migrationJobName", migrations.job_name)
pulumi.export("migrations", bundle.manifest())
pulumi.export("migrationsChecksum", bundle.checksum)
pulumi.export("readinessJobs", [postgres_ready.job_name, redis_ready.job_name])
pulumi.export("backendService", backend.service_name)
pulumi.export("frontendService", frontend.service_name)
pulumi.export("backendImage", settings.images.backend)
pulumi.export("frontendImage", settings.images.frontend)
pulumi.export("backendImageTag", settings.images.backend_tag)
pulumi.export("frontendImageTag", settings.images.frontend_tag)
