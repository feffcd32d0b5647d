"""Where the database password (and a Redis URL with credentials) comes from.

Either an existing Secret (appSecret, as the old manifests used), or a Secret this
program creates from Pulumi secrets, whose values stay encrypted in the Pulumi state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
from pulumi_kubernetes.core.v1 import EnvVarArgs, EnvVarSourceArgs, Secret, SecretKeySelectorArgs
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.security import labels
from components.settings import CREATED_SECRET, Settings


@dataclass(frozen=True)
class CredentialsArgs:
    namespace: pulumi.Input[str]
    settings: Settings


class DatabaseCredentials(pulumi.ComponentResource):
    secret: Optional[Secret]

    def __init__(self, name: str, args: CredentialsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ideaforge:credentials:DatabaseCredentials", name, None, opts)
        pg, redis = args.settings.postgres, args.settings.redis
        self.secret_name = pg.password_secret
        self.password_key = pg.password_key
        self.redis_url_secret = ""
        self.secret = None
        string_data: dict[str, pulumi.Input[str]] = {}
        if pg.password is not None:
            string_data[pg.password_key] = pg.password
        if redis.url is not None:
            string_data["REDIS_URL"] = redis.url
            self.redis_url_secret = CREATED_SECRET
        if string_data:
            self.secret_name = CREATED_SECRET if pg.password is not None else pg.password_secret
            self.secret = Secret(
                CREATED_SECRET,
                metadata=ObjectMetaArgs(name=CREATED_SECRET, namespace=args.namespace,
                                        labels=labels("ideaforge-ai", "credentials")),
                type="Opaque",
                string_data=string_data,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
            )
        self.register_outputs({"secret_name": self.secret_name})

    def database_env(self, settings: Settings) -> list[EnvVarArgs]:
        """The backend's connection environment, shared by the migration Job."""
        pg = settings.postgres
        return [
            EnvVarArgs(name="POSTGRES_HOST", value=pg.host),
            EnvVarArgs(name="POSTGRES_PORT", value=str(pg.port)),
            EnvVarArgs(name="POSTGRES_USER", value=pg.user),
            EnvVarArgs(name="POSTGRES_DB", value=pg.db),
            self.password_env(),
            self.redis_env(settings),
        ]

    def password_env(self) -> EnvVarArgs:
        """POSTGRES_PASSWORD from the Secret: never inline in a manifest."""
        return EnvVarArgs(
            name="POSTGRES_PASSWORD",
            value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=self.secret_name, key=self.password_key)),
        )

    def redis_env(self, settings: Settings) -> EnvVarArgs:
        if self.redis_url_secret:
            return EnvVarArgs(
                name="REDIS_URL",
                value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=self.redis_url_secret, key="REDIS_URL")),
            )
        return EnvVarArgs(name="REDIS_URL", value=settings.redis.plain_url)

    def dependencies(self) -> list[pulumi.Resource]:
        return [self.secret] if self.secret is not None else []
