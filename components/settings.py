"""Stack configuration, read and validated in one place before any resource is made.

Every key, its type and its default are listed in KEYS (Pulumi.yaml declares the same
schema; a test keeps the two equal). All problems are collected and reported together,
each with the `pulumi config set` that fixes it, so a bad stack fails at `pulumi preview`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import pulumi

PROJECT = "ideaforge-ai"

# key -> (type, default); default None means the key must be set.
KEYS: dict[str, tuple[str, Any]] = {
    "namespace": ("string", None),
    "createNamespace": ("boolean", False),
    "imageRegistry": ("string", "ghcr.io/soumantrivedi/ideaforge-ai"),
    "backendImageTag": ("string", None),
    "frontendImageTag": ("string", None),
    "imagePullSecret": ("string", "ghcr-secret"),
    "appConfigMap": ("string", "ideaforge-ai-config"),
    "appSecret": ("string", "ideaforge-ai-secrets"),
    "postgresHost": ("string", "postgres-ha-primary"),
    "postgresPort": ("integer", 5432),
    "postgresUser": ("string", "postgres"),
    "postgresDb": ("string", "ideaforge_ai"),
    "postgresPasswordKey": ("string", "POSTGRES_PASSWORD"),
    "postgresSslMode": ("string", ""),
    "redisHost": ("string", "redis"),
    "redisPort": ("integer", 6379),
    "backendReplicas": ("integer", 2),
    "backendPort": ("integer", 8000),
    "backendHealthPath": ("string", "/health"),
    "backendCpuRequest": ("string", "250m"),
    "backendMemoryRequest": ("string", "512Mi"),
    "backendCpuLimit": ("string", "1"),
    "backendMemoryLimit": ("string", "1Gi"),
    "frontendReplicas": ("integer", 2),
    "frontendPort": ("integer", 3000),
    "frontendHealthPath": ("string", "/"),
    "frontendCpuRequest": ("string", "100m"),
    "frontendMemoryRequest": ("string", "128Mi"),
    "frontendCpuLimit": ("string", "500m"),
    "frontendMemoryLimit": ("string", "256Mi"),
    "runAsNonRoot": ("boolean", True),
    "migrationsDir": ("string", "migrations"),
    "migrationActiveDeadlineSeconds": ("integer", 600),
    "migrationBackoffLimit": ("integer", 3),
    "migrationTtlSecondsAfterFinished": ("integer", 3600),
    "migrationCommand": ("array", ["python", "-m", "runner"]),
    "migrationLockTimeout": ("string", "5s"),
    "migrationStatementTimeout": ("string", "5min"),
    "postgresReadyTimeoutSeconds": ("integer", 300),
    "redisReadyTimeoutSeconds": ("integer", 300),
    "postgresClientImage": ("string", "postgres:17-alpine"),
    "redisClientImage": ("string", "redis:7-alpine"),
    "localServices": ("boolean", False),
}
# Read and validated, but not declared in Pulumi.yaml: Pulumi makes a declared key without
# a default mandatory, and these mean something by being absent.
OPTIONAL_KEYS = ("postgresPassword", "redisUrl", "migrationImage", "runAsUser")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REGISTRY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_IMAGE = re.compile(r"^[a-z0-9]+([._/:-][a-zA-Z0-9_.-]+)*(@sha256:[0-9a-f]{64})?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?\s*(us|ms|s|min|h|d)?$")
_ENV_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_SSL_MODES = ("", "disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class SettingsError(pulumi.RunError):
    """Raised at preview with every configuration problem of the stack."""


class ConfigSource(Protocol):
    def get(self, key: str) -> Optional[str]: ...

    def get_secret(self, key: str) -> Optional[pulumi.Output]: ...


@dataclass(frozen=True)
class Images:
    registry: str
    backend_tag: str
    frontend_tag: str
    pull_secret: str  # "" for none
    migration_override: str  # "" to run migrations in the backend image

    @property
    def backend(self) -> str:
        return f"{self.registry}/backend:{self.backend_tag}"

    @property
    def frontend(self) -> str:
        return f"{self.registry}/frontend:{self.frontend_tag}"

    @property
    def migration(self) -> str:
        return self.migration_override or self.backend


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    db: str
    password: Optional[pulumi.Output]  # a Pulumi secret, or None to use the existing Secret
    password_secret: str  # Secret holding the password (existing, or created from `password`)
    password_key: str
    sslmode: str


@dataclass(frozen=True)
class Redis:
    host: str
    port: int
    url: Optional[pulumi.Output]  # a Pulumi secret with credentials, or None

    @property
    def plain_url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def requests(self) -> dict[str, str]:
        return {"cpu": self.cpu_request, "memory": self.memory_request}

    def limits(self) -> dict[str, str]:
        return {"cpu": self.cpu_limit, "memory": self.memory_limit}


@dataclass(frozen=True)
class App:
    replicas: int
    port: int
    health_path: str
    resources: Resources


@dataclass(frozen=True)
class Migration:
    directory: str
    active_deadline_seconds: int
    backoff_limit: int
    ttl_seconds_after_finished: int
    command: tuple[str, ...]
    lock_timeout: str
    statement_timeout: str


@dataclass(frozen=True)
class Readiness:
    postgres_timeout_seconds: int
    redis_timeout_seconds: int
    postgres_client_image: str
    redis_client_image: str


@dataclass(frozen=True)
class Settings:
    namespace: str
    create_namespace: bool
    images: Images
    app_config_map: str
    app_secret: str
    postgres: Postgres
    redis: Redis
    backend: App
    frontend: App
    migration: Migration
    readiness: Readiness
    run_as_non_root: bool
    run_as_user: Optional[int]
    local_services: bool


# The Secret the program creates when the password is given as a Pulumi secret.
CREATED_SECRET = "ideaforge-ai-credentials"
LOCAL_DEFAULT_PASSWORD = "ideaforge-local-only"


class _Reader:
    def __init__(self, source: ConfigSource):
        self.source = source
        self.errors: list[str] = []

    def fail(self, key: str, problem: str, example: str = "<value>") -> None:
        self.errors.append(f"{key}: {problem}; fix with `pulumi config set {key} {example}`")

    def raw(self, key: str) -> Any:
        kind, default = KEYS[key]
        value = self.source.get(key)
        if value is None:
            return default
        if kind == "integer":
            try:
                return int(str(value).strip())
            except ValueError:
                self.fail(key, f"{value!r} is not a whole number")
                return default
        if kind == "boolean":
            text = str(value).strip().lower()
            if text not in ("true", "false"):
                self.fail(key, f"{value!r} is not true or false", "true")
                return default
            return text == "true"
        if kind == "array":
            try:
                parsed = json.loads(value) if isinstance(value, str) else value
            except json.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, list) or not parsed or not all(isinstance(i, str) and i for i in parsed):
                self.fail(key, "must be a non-empty list of strings", "--path '[0]' python")
                return default
            return parsed
        return value.strip()

    def required(self, key: str, example: str) -> str:
        value = self.raw(key)
        if value is None or value == "":
            self.fail(key, "is not set", example)
            return ""
        return value

    def integer(self, key: str, minimum: int, maximum: int = 2**31 - 1) -> int:
        value = self.raw(key)
        if not minimum <= value <= maximum:
            self.fail(key, f"{value} is outside {minimum}..{maximum}", str(KEYS[key][1]))
        return value

    def matching(self, key: str, pattern: re.Pattern, what: str, example: str, allow_empty: bool = False) -> str:
        value = self.raw(key)
        if value == "" and allow_empty:
            return value
        if not pattern.match(value or ""):
            self.fail(key, f"{value!r} is not {what}", example)
        return value

    def name(self, key: str, allow_empty: bool = False, label: bool = False) -> str:
        value = self.raw(key)
        if value == "" and allow_empty:
            return value
        pattern, limit = (_DNS_LABEL, 63) if label else (_DNS_SUBDOMAIN, 253)
        if not pattern.match(value) or len(value) > limit:
            kind = "DNS-1123 label" if label else "DNS-1123 subdomain"
            self.fail(
                key,
                f"{value!r} is not a valid Kubernetes name ({kind}: lower-case letters, digits and '-', "
                f"at most {limit} characters)",
                "my-name",
            )
        return value


def load(source: ConfigSource) -> Settings:
    read = _Reader(source)
    namespace = read.required("namespace", "20890-ideaforge-ai-dev-58a50")
    if namespace and (not _DNS_LABEL.match(namespace) or len(namespace) > 63):
        read.fail("namespace", f"{namespace!r} is not a valid namespace name (DNS-1123 label: lower-case "
                  "letters, digits and '-', at most 63 characters)", "my-namespace")
    backend_tag = read.required("backendImageTag", "672425b")
    frontend_tag = read.required("frontendImageTag", "672425b")
    for key, tag in (("backendImageTag", backend_tag), ("frontendImageTag", frontend_tag)):
        if tag and not _IMAGE_TAG.match(tag):
            read.fail(key, f"{tag!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128)", "672425b")
    migration_image = (source.get("migrationImage") or "").strip()
    if migration_image and not _IMAGE.match(migration_image):
        read.fail("migrationImage", f"{migration_image!r} is not an image reference", "registry/migrations:tag")
    images = Images(
        registry=read.matching("imageRegistry", _REGISTRY, "a registry path", "ghcr.io/org/app"),
        backend_tag=backend_tag,
        frontend_tag=frontend_tag,
        pull_secret=read.name("imagePullSecret", allow_empty=True),
        migration_override=migration_image,
    )
    password = source.get_secret("postgresPassword")
    local_services = read.raw("localServices")
    if password is None and local_services:
        # The in-namespace Postgres of a laptop cluster is created with this password;
        # it stays a Pulumi secret. Real stacks set postgresPassword or appSecret.
        password = pulumi.Output.secret(LOCAL_DEFAULT_PASSWORD)
    app_secret = read.name("appSecret", allow_empty=True)
    if password is None and not app_secret:
        read.fail("appSecret", "is empty and postgresPassword is not set, so there is no database password",
                  "ideaforge-ai-secrets` or `pulumi config set --secret postgresPassword <password>")
    password_key = read.matching("postgresPasswordKey", _ENV_KEY, "a valid Secret key", "POSTGRES_PASSWORD")
    postgres = Postgres(
        host=read.required("postgresHost", "postgres-ha-primary"),
        port=read.integer("postgresPort", 1, 65535),
        user=read.required("postgresUser", "postgres"),
        db=read.required("postgresDb", "ideaforge_ai"),
        password=password,
        password_secret=CREATED_SECRET if password is not None else app_secret,
        password_key=password_key,
        sslmode=read.raw("postgresSslMode"),
    )
    if postgres.sslmode not in _SSL_MODES:
        read.fail("postgresSslMode", f"{postgres.sslmode!r} is not one of {', '.join(m for m in _SSL_MODES if m)}", "require")
    redis = Redis(
        host=read.required("redisHost", "redis"),
        port=read.integer("redisPort", 1, 65535),
        url=source.get_secret("redisUrl"),
    )
    settings = Settings(
        namespace=namespace,
        create_namespace=read.raw("createNamespace"),
        images=images,
        app_config_map=read.name("appConfigMap", allow_empty=True),
        app_secret=app_secret,
        postgres=postgres,
        redis=redis,
        backend=_app(read, "backend"),
        frontend=_app(read, "frontend"),
        migration=Migration(
            directory=read.required("migrationsDir", "migrations"),
            active_deadline_seconds=read.integer("migrationActiveDeadlineSeconds", 30, 86400),
            backoff_limit=read.integer("migrationBackoffLimit", 0, 20),
            ttl_seconds_after_finished=read.integer("migrationTtlSecondsAfterFinished", 60, 7 * 86400),
            command=tuple(read.raw("migrationCommand")),
            lock_timeout=read.matching("migrationLockTimeout", _DURATION, "a PostgreSQL duration", "5s"),
            statement_timeout=read.matching("migrationStatementTimeout", _DURATION, "a PostgreSQL duration", "5min"),
        ),
        readiness=Readiness(
            postgres_timeout_seconds=read.integer("postgresReadyTimeoutSeconds", 5, 3600),
            redis_timeout_seconds=read.integer("redisReadyTimeoutSeconds", 5, 3600),
            postgres_client_image=read.matching("postgresClientImage", _IMAGE, "an image reference", "postgres:17-alpine"),
            redis_client_image=read.matching("redisClientImage", _IMAGE, "an image reference", "redis:7-alpine"),
        ),
        run_as_non_root=read.raw("runAsNonRoot"),
        run_as_user=_optional_uid(read, source.get("runAsUser")),
        local_services=local_services,
    )
    if local_services:
        for key, host in (("postgresHost", postgres.host), ("redisHost", redis.host)):
            if not _DNS_LABEL.match(host):
                read.fail(key, f"{host!r} must be a Service name when localServices is true", "postgres")
    if read.errors:
        raise SettingsError(
            "the stack configuration has problems; nothing was changed:\n" + "\n".join(f"  - {e}" for e in read.errors)
        )
    return settings


def _app(read: _Reader, prefix: str) -> App:
    return App(
        replicas=read.integer(f"{prefix}Replicas", 0, 100),
        port=read.integer(f"{prefix}Port", 1, 65535),
        health_path=read.matching(f"{prefix}HealthPath", re.compile(r"^/\S*$"), "an absolute HTTP path", "/health"),
        resources=Resources(
            cpu_request=read.matching(f"{prefix}CpuRequest", _QUANTITY, "a CPU quantity", "250m"),
            memory_request=read.matching(f"{prefix}MemoryRequest", _QUANTITY, "a memory quantity", "512Mi"),
            cpu_limit=read.matching(f"{prefix}CpuLimit", _QUANTITY, "a CPU quantity", "1"),
            memory_limit=read.matching(f"{prefix}MemoryLimit", _QUANTITY, "a memory quantity", "1Gi"),
        ),
    )


def _optional_uid(read: _Reader, value: Optional[str]) -> Optional[int]:
    if value is None or value.strip() == "":
        return None
    if not value.strip().isdigit():
        read.fail("runAsUser", f"{value!r} is not a numeric user id", "10001")
        return None
    return int(value)


def from_stack() -> Settings:
    return load(pulumi.Config(PROJECT))
