"""Each workload's environment: exactly the variables of its `env` list, each from the app
ConfigMap or the app Secret under its own name, optional where the list says so.

The app's manifests gave the backend 57 variables and the frontend 6, by configMapKeyRef and
secretKeyRef; `envFrom` of the whole ConfigMap and Secret would give the internet-facing
frontend every API key, let the Secret's copies of ConfigMap keys win, set variables the app
never got, and start pods without a required one. The variables the stack sets itself
(database.*, the password's Secret and key, redisUrl) come from there instead
(DatabaseCredentials.env_overrides).

A pod reads its variables when it starts. So that a change reaches running pods, the pod
template carries a checksum of the ConfigMap values the workload reads (a change of a key the
frontend does not read leaves the frontend alone) and the resourceVersion of the app Secret
(any change of the Secret rolls the workloads that read it, at the next `up`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

import pulumi
from pulumi_kubernetes.core.v1 import ConfigMapKeySelectorArgs, EnvVarArgs, EnvVarSourceArgs, SecretKeySelectorArgs

from components.settings import App, Settings, Workload, jobs_config_keys

CONFIG_CHECKSUM = "ideaforge.ai/config-sha256"
SECRET_VERSION = "ideaforge.ai/secret-version"


@dataclass(frozen=True)
class WorkloadEnv:
    env: list[EnvVarArgs]
    config_keys: tuple[str, ...]  # the app ConfigMap keys it reads
    reads_secret: bool  # whether it reads the app Secret
    left_out: tuple[str, ...]  # variables of its list with no source in this stack


def workload_env(workload: Workload, app: App, overrides: Mapping[str, EnvVarArgs]) -> WorkloadEnv:
    env, config_keys, left_out = [], [], []
    for var in workload.env:
        if var.name in overrides:
            env.append(overrides[var.name])
        elif var.source == "configMap" and app.config_map:
            env.append(EnvVarArgs(name=var.name, value_from=EnvVarSourceArgs(config_map_key_ref=ConfigMapKeySelectorArgs(
                name=app.config_map, key=var.name, optional=True if var.optional else None))))
            config_keys.append(var.name)
        elif var.source == "secret" and app.secret:
            env.append(EnvVarArgs(name=var.name, value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(
                name=app.secret, key=var.name, optional=True if var.optional else None))))
        else:
            left_out.append(var.name)
    reads_secret = bool(app.secret) and any(_secret_of(e) == app.secret for e in env)
    return WorkloadEnv(env, tuple(config_keys), reads_secret, tuple(left_out))


@dataclass(frozen=True)
class Environment:
    env: list[EnvVarArgs]
    template_annotations: dict[str, pulumi.Input[str]]


def environment(workload: Workload, settings: Settings, overrides: Mapping[str, EnvVarArgs],
                secret_version: Optional[pulumi.Input[str]]) -> Environment:
    """The workload's variables, and what rolls its pods when it changes."""
    found = workload_env(workload, settings.app, overrides)
    if found.left_out:
        pulumi.log.warn(f"{workload.name}: this stack has no app ConfigMap or Secret for "
                        f"{', '.join(found.left_out)}, so the app uses its own defaults for them")
    annotations: dict[str, pulumi.Input[str]] = {}
    if found.config_keys:
        annotations[CONFIG_CHECKSUM] = config_checksum(settings.app.config_data, found.config_keys)
    if found.reads_secret and secret_version is not None:
        annotations[SECRET_VERSION] = secret_version
    return Environment(found.env, annotations)


def jobs_triggers(settings: Settings) -> dict[str, str]:
    """On the Jobs' pod templates: the checksum of the ConfigMap values they read, so that a new
    database gets its readiness check and migrations before the backend rolls to it."""
    keys = jobs_config_keys(settings)
    return {CONFIG_CHECKSUM: config_checksum(settings.app.config_data, keys)} if keys else {}


def config_checksum(data: Mapping[str, str], keys: Iterable[str]) -> str:
    """sha256 of the values of these keys (an absent key counts as absent)."""
    values = {key: data.get(key) for key in sorted(set(keys))}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def _secret_of(var: EnvVarArgs):
    source = var.value_from
    return source.secret_key_ref.name if source is not None and source.secret_key_ref is not None else None
