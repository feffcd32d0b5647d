"""IdeaForge AI: Postgres + Redis ready -> migration Job -> (seed) -> backend -> frontend.

Composition only: stack settings -> components -> exports. Each arrow is a Pulumi
dependency, so a failed link stops everything after it.
"""

from pathlib import Path

import pulumi

from components import migration_bundle, runner_bundle, settings as stack_settings
from components.app_config import AppConfig, AppConfigArgs
from components.app_env import environment, jobs_triggers
from components.credentials import CredentialsArgs, DatabaseCredentials
from components.ingress import AppIngress, IngressArgs
from components.local_services import LocalServices, LocalServicesArgs
from components.migrations import MigrationArgs, MigrationJob, read_snapshot
from components.namespace import namespace_for
from components.prerequisites import Prerequisites, PrerequisitesArgs
from components.readiness import ReadinessArgs, ReadinessCheck, postgres_probe, redis_probe, wait_container
from components.retention import keep_live_app
from components.seed import SeedArgs, SeedJob
from components.web_app import WebApp, WebAppArgs

PROJECT_DIR = Path(__file__).resolve().parent

settings = stack_settings.from_stack()
keep_live_app(settings)  # what serves the app outlives the stack's hold on it (components/retention.py)
migrations_config = settings.migrations
bundle = None
if migrations_config.source == "configmap":
    bundle, conflicts = migration_bundle.load([PROJECT_DIR / d for d in migrations_config.dirs])
    for conflict in conflicts:
        pulumi.log.warn(f"migrations: {conflict}")
runner = runner_bundle.build() if migrations_config.image is None else None

namespace = namespace_for(settings)
prerequisites = Prerequisites("prerequisites", PrerequisitesArgs(settings))
credentials = DatabaseCredentials("credentials", CredentialsArgs(namespace, settings))
app_config = AppConfig("app-config", AppConfigArgs(namespace, settings, depends_on=prerequisites.checked)) \
    if settings.app.config_map else None
local = LocalServices("local-services", LocalServicesArgs(namespace, settings, credentials)) if settings.local.enabled else None
# The readiness Jobs read the database's address from the app ConfigMap.
after_local = [*prerequisites.checked, *([app_config.config_map] if app_config else []), *([local] if local else [])]

postgres = postgres_probe(settings, credentials)
redis = redis_probe(settings, credentials)
# Readiness is checked again whenever a deploy would run migrations.
trigger = "-".join(filter(None, [settings.migration_image, runner and runner.checksum[:16],
                                 bundle and bundle.checksum[:16]]))
# And when the database or Redis they read from the app ConfigMap changes.
jobs_config = jobs_triggers(settings)
trigger = "-".join([trigger, *(value[:16] for value in jobs_config.values())])
jobs_ttl = settings.migrations.ttl_seconds_after_finished
postgres_ready = ReadinessCheck("postgres-ready", ReadinessArgs(namespace, postgres, trigger, jobs_ttl,
                                                                depends_on=after_local))
redis_ready = ReadinessCheck("redis-ready", ReadinessArgs(namespace, redis, trigger, jobs_ttl, depends_on=after_local))

migrations = MigrationJob("migrations", MigrationArgs(
    namespace, settings, credentials, bundle, runner, wait_for=[postgres_ready.job, redis_ready.job],
    triggers=jobs_config, snapshot=read_snapshot(PROJECT_DIR, migrations_config.snapshot)))
before_backend = [migrations.job]
if settings.seed.enabled:
    seed = SeedJob("seed", SeedArgs(namespace, settings, credentials, PROJECT_DIR, depends_on=[migrations.job]))
    before_backend.append(seed.job)

overrides = credentials.env_overrides()
backend_env = environment(settings.backend, settings, overrides, prerequisites.app_secret_version())
probes = {"postgres": postgres, "redis": redis}
backend = WebApp("backend", WebAppArgs(
    namespace=namespace,
    image=settings.images.backend,
    workload=settings.backend,
    pull_secret=settings.images.pull_secret,
    env=backend_env.env,
    template_annotations=backend_env.template_annotations,
    init_containers=[wait_container(probes[wait.service], wait) for wait in settings.backend.init_waits],
    take_over=settings.take_over,
    depends_on=[*before_backend, *prerequisites.checked],
))

frontend_env = environment(settings.frontend, settings, overrides, prerequisites.app_secret_version())
frontend = WebApp("frontend", WebAppArgs(
    namespace=namespace,
    image=settings.images.frontend,
    workload=settings.frontend,
    pull_secret=settings.images.pull_secret,
    env=frontend_env.env,
    template_annotations=frontend_env.template_annotations,
    take_over=settings.take_over,
    depends_on=[backend.deployment, backend.service, *prerequisites.checked],
))

ingress = AppIngress("ingress", IngressArgs(namespace, settings, depends_on=[backend.service, frontend.service])) \
    if settings.ingress.enabled else None

pulumi.export("namespace", namespace)
pulumi.export("migrationJobName", migrations.job_name)
pulumi.export("migrationsSource", migrations_config.source)
pulumi.export("migrations", bundle.manifest() if bundle else [])
pulumi.export("migrationsChecksum", bundle.checksum if bundle else None)
pulumi.export("runnerChecksum", runner.checksum if runner else None)
pulumi.export("readinessJobs", [postgres_ready.job_name, redis_ready.job_name])
pulumi.export("backendService", backend.service_name)
pulumi.export("frontendService", frontend.service_name)
pulumi.export("backendImage", settings.images.backend)
pulumi.export("frontendImage", settings.images.frontend)
pulumi.export("backendImageTag", settings.images.backend_tag)
pulumi.export("frontendImageTag", settings.images.frontend_tag)
