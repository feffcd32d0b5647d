"""Where the database address, user and password come from, for every pod that needs them.

By default from the app's ConfigMap and Secret (as the old manifests did, with
configMapKeyRef/secretKeyRef). A value set in the stack's `database` config replaces the
ConfigMap's, for the Jobs and the backend alike. A password given as
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
from components.settings import CREATED_SECRET, Settings, stack_sets

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

    def env_overrides(self) -> dict[str, EnvVarArgs]:
        """The app variables this stack gives from its own settings (database.*, the password's
        Secret and key, redisUrl) instead of the app ConfigMap or Secret under their own names:
        none in the dev stack."""
        overrides = {}
        for (_, key), var in zip(DATABASE_KEYS, self.database_env()):
            if stack_sets(self.settings, key):
                overrides[key] = var
        if stack_sets(self.settings, "POSTGRES_PASSWORD"):
            overrides["POSTGRES_PASSWORD"] = self.password_env()
        if stack_sets(self.settings, REDIS_URL_KEY):
            source = self.redis_url_source()
            redis = self.settings.redis
            overrides[REDIS_URL_KEY] = (EnvVarArgs(name=REDIS_URL_KEY, value_from=source) if source else
                                        EnvVarArgs(name=REDIS_URL_KEY, value=f"redis://{redis.host}:{redis.port}/0"))
        return overrides

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
