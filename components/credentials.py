"""Where the database address, user and password come from, for every pod that needs them.

By default from the app's own ConfigMap and Secret (as the old manifests did, with
configMapKeyRef/secretKeyRef), so the stack never overrides what the app team set there.
A value set in the stack's `database` config replaces the ConfigMap's. A password given as
the Pulumi secret postgresPassword goes into a Secret this program creates; its value stays
encrypted in the Pulumi state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
from pulumi_kubernetes.core.v1 import (
    ConfigMapKeySelectorArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    Secret,
    SecretKeySelectorArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.security import labels
from components.settings import CREATED_SECRET, Settings

# The app ConfigMap's keys (k8s/eks/configmap.yaml), and the variables the backend and the
# runner read.
DATABASE_KEYS = (("host", "POSTGRES_HOST"), ("port", "POSTGRES_PORT"), ("user", "POSTGRES_USER"), ("name", "POSTGRES_DB"))
REDIS_URL_KEY = "REDIS_URL"


@dataclass(frozen=True)
class CredentialsArgs:
    namespace: pulumi.Input[str]
    settings: Settings


class DatabaseCredentials(pulumi.ComponentResource):
    secret: Optional[Secret]

    def __init__(self, name: str, args: CredentialsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:credentials:DatabaseCredentials", name, None, opts)
        self.settings = settings = args.settings
        db, redis = settings.database, settings.redis
        string_data: dict[str, pulumi.Input[str]] = {}
        if db.password is not None:
            string_data[db.password_key] = db.password
        if redis.url is not None:
            string_data[REDIS_URL_KEY] = redis.url
        self.secret = None
        if string_data:
            self.secret = Secret(
                CREATED_SECRET,
                metadata=ObjectMetaArgs(name=CREATED_SECRET, namespace=args.namespace,
                                        labels=labels("ideaforge-ai", "credentials")),
                type="Opaque",
                string_data=string_data,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
            )
        self.register_outputs({"secret_name": db.password_secret})

    def database_env(self, names: tuple[str, str, str, str] = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
                                                               "POSTGRES_DB")) -> list[EnvVarArgs]:
        """Address, user and database name, under the given variable names, plus the password
        as POSTGRES_PASSWORD (the runner's and the backend's names) or PGPASSWORD (psql's)."""
        db = self.settings.database
        env = []
        for (field, key), variable in zip(DATABASE_KEYS, names):
            value = getattr(db, field)
            if value is not None:
                env.append(EnvVarArgs(name=variable, value=str(value)))
            else:
                env.append(EnvVarArgs(name=variable, value_from=EnvVarSourceArgs(
                    config_map_key_ref=ConfigMapKeySelectorArgs(name=self.settings.app.config_map, key=key))))
        return env

    def password_env(self, variable: str = "POSTGRES_PASSWORD") -> EnvVarArgs:
        """The password from a Secret: never inline in a manifest."""
        db = self.settings.database
        return EnvVarArgs(name=variable, value_from=EnvVarSourceArgs(
            secret_key_ref=SecretKeySelectorArgs(name=db.password_secret, key=db.password_key)))

    def backend_overrides(self) -> list[EnvVarArgs]:
        """What the backend needs beyond envFrom of the app ConfigMap and Secret: only the
        values this stack sets differently (an empty list in the dev stack)."""
        db = self.settings.database
        env = [e for e, (field, _) in zip(self.database_env(), DATABASE_KEYS) if getattr(db, field) is not None]
        if db.password is not None or db.password_key != "POSTGRES_PASSWORD" or not self.settings.app.secret:
            env.append(self.password_env())
        if not self.settings.app.config_map:
            source = self.redis_url_source()
            redis = self.settings.redis
            env.append(EnvVarArgs(name=REDIS_URL_KEY, value_from=source) if source
                       else EnvVarArgs(name=REDIS_URL_KEY, value=f"redis://{redis.host}:{redis.port}/0"))
        return env

    def redis_url_source(self) -> Optional[EnvVarSourceArgs]:
        """REDIS_URL for the readiness check: the Pulumi secret, else the app ConfigMap's; None
        when neither exists (then host and port are used)."""
        if self.settings.redis.url is not None:
            return EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=CREATED_SECRET, key=REDIS_URL_KEY))
        if self.settings.app.config_map:
            return EnvVarSourceArgs(config_map_key_ref=ConfigMapKeySelectorArgs(
                name=self.settings.app.config_map, key=REDIS_URL_KEY))
        return None

    def dependencies(self) -> list[pulumi.Resource]:
        return [self.secret] if self.secret is not None else []
