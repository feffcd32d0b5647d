"""Readiness of Postgres and Redis: a protocol check (pg_isready, Redis PING), not an open port.

The check runs in the cluster, as a Job, so it sees the same DNS, network and configuration
(the app ConfigMap) as the backend; the services may be in the namespace or outside it (a
managed database). The same probe script serves the backend's wait-for-postgres and
wait-for-redis init containers (config backend.initWaits): forever, or for a time after which
the pod starts anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
from pulumi_kubernetes.batch.v1 import Job, JobSpecArgs
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    EnvVarArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ResourceRequirementsArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.credentials import DatabaseCredentials
from components.jobs import REPLACE_UNREADY, run_to_completion
from components.security import labels, probe_security, unprivileged_pod
from components.settings import InitWait, Settings

# Shell loop shared by Job and init container. $CHECK is a command that succeeds when the
# service answers; TIMEOUT=0 waits forever. ON_TIMEOUT=start ends a wait that ran out with
# success, so the container after it starts anyway (an init container failing instead would
# be restarted by the kubelet, holding the pod just the same).
_LOOP = r"""
start=$(date +%s)
while true; do
  if reply=$(sh -c "$CHECK" 2>&1); then
    echo "$SERVICE at $TARGET is ready (waited $(( $(date +%s) - start ))s)"
    exit 0
  fi
  waited=$(( $(date +%s) - start ))
  if [ "$TIMEOUT" -gt 0 ] && [ "$waited" -ge "$TIMEOUT" ]; then
    if [ "${ON_TIMEOUT:-fail}" = start ]; then
      echo "$SERVICE at $TARGET did not answer within ${TIMEOUT}s; starting without it (last answer: $reply)"
      exit 0
    fi
    msg="$SERVICE at $TARGET did not become ready within ${TIMEOUT}s (waited ${waited}s); last answer: $reply"
    echo "$msg" >&2
    echo "$msg" > /dev/termination-log 2>/dev/null || true
    exit 1
  fi
  echo "waiting for $SERVICE at $TARGET (${waited}s): $reply"
  sleep 2
done
"""

_PROBE_RESOURCES = ResourceRequirementsArgs(
    requests={"cpu": "10m", "memory": "16Mi"}, limits={"cpu": "100m", "memory": "64Mi"}
)


@dataclass(frozen=True)
class Probe:
    service: str  # postgres | redis
    target: str  # what the messages call it; may use $(VAR) of `env`
    image: str
    check: str  # shell command; exit 0 when the service answers
    env: tuple[EnvVarArgs, ...]
    timeout_seconds: int


def postgres_probe(settings: Settings, credentials: DatabaseCredentials) -> Probe:
    return Probe(
        service="postgres",
        target="$(PGHOST):$(PGPORT)",
        image=settings.readiness.postgres_client_image,
        # pg_isready exits 0 only when the server accepts connections (not while starting up).
        check='pg_isready -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" -t 5',
        env=tuple(credentials.database_env(("PGHOST", "PGPORT", "PGUSER", "PGDATABASE"))),
        timeout_seconds=settings.readiness.postgres_timeout_seconds,
    )


def redis_probe(settings: Settings, credentials: DatabaseCredentials) -> Probe:
    redis = settings.redis
    url = credentials.redis_url_source()
    if url is not None:
        # The URL may hold a password: the messages name where it comes from, not the URL.
        where = "redisUrl" if redis.url is not None else f"REDIS_URL of ConfigMap {settings.app.config_map}"
        return Probe(
            service="redis", target=where, image=settings.readiness.redis_client_image,
            check='[ "$(redis-cli -u "$REDIS_URL" --no-auth-warning PING)" = PONG ]',
            env=(EnvVarArgs(name="REDIS_URL", value_from=url),),
            timeout_seconds=settings.readiness.redis_timeout_seconds,
        )
    return Probe(
        service="redis", target=f"{redis.host}:{redis.port}", image=settings.readiness.redis_client_image,
        check='[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" PING)" = PONG ]',
        env=(EnvVarArgs(name="REDIS_HOST", value=redis.host), EnvVarArgs(name="REDIS_PORT", value=str(redis.port))),
        timeout_seconds=settings.readiness.redis_timeout_seconds,
    )


def probe_container(probe: Probe, name: str) -> ContainerArgs:
    """The readiness Job's container: fails when the service does not answer in time."""
    return _container(probe, name, probe.timeout_seconds, [])


def wait_container(probe: Probe, wait: InitWait) -> ContainerArgs:
    """An init container holding a pod until the service answers: forever, or for
    wait.timeout_seconds after which the pod starts anyway."""
    if wait.timeout_seconds is None:
        return _container(probe, f"wait-for-{probe.service}", 0, [])
    return _container(probe, f"wait-for-{probe.service}", wait.timeout_seconds,
                      [EnvVarArgs(name="ON_TIMEOUT", value="start")])


def _container(probe: Probe, name: str, timeout_seconds: int, more_env: list[EnvVarArgs]) -> ContainerArgs:
    return ContainerArgs(
        name=name,
        image=probe.image,
        command=["sh", "-c", _LOOP],
        env=[
            *probe.env,
            EnvVarArgs(name="SERVICE", value=probe.service),
            EnvVarArgs(name="TARGET", value=probe.target),
            EnvVarArgs(name="CHECK", value=probe.check),
            EnvVarArgs(name="TIMEOUT", value=str(timeout_seconds)),
            *more_env,
        ],
        resources=_PROBE_RESOURCES,
        security_context=probe_security(),
        termination_message_policy="FallbackToLogsOnError",
    )


@dataclass(frozen=True)
class ReadinessArgs:
    namespace: pulumi.Input[str]
    probe: Probe
    # Changes whenever a deploy would run migrations, so every such deploy checks again.
    trigger: str
    ttl_seconds_after_finished: int
    depends_on: Sequence[pulumi.Resource] = ()


class ReadinessCheck(pulumi.ComponentResource):
    """Completes when the service answers its protocol check; fails naming it and the wait."""

    job: Job

    def __init__(self, name: str, args: ReadinessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:readiness:ReadinessCheck", name, None, opts)
        probe = args.probe
        job_name = f"wait-for-{probe.service}"
        job_labels = labels(job_name, "readiness")
        deadline = probe.timeout_seconds + 60
        self.job = Job(
            job_name,
            metadata=ObjectMetaArgs(
                name=job_name,
                namespace=args.namespace,
                labels=job_labels,
                annotations=REPLACE_UNREADY,
            ),
            spec=JobSpecArgs(
                backoff_limit=0,  # the script retries by itself until its deadline
                active_deadline_seconds=deadline,
                ttl_seconds_after_finished=args.ttl_seconds_after_finished,
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=job_labels, annotations={"ideaforge.ai/trigger": args.trigger}),
                    spec=PodSpecArgs(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        security_context=unprivileged_pod(),
                        containers=[probe_container(probe, "check")],
                    ),
                ),
            ),
            opts=run_to_completion(self, args.depends_on, deadline),
        )
        self.job_name = self.job.metadata.name
        self.register_outputs({"job_name": self.job_name})
