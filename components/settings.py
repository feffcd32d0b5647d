"""Stack configuration, read and validated in one place before any resource is made.

Pulumi.yaml is the one source of keys, types and defaults: the defaults are read from it,
and an object key set a field at a time (`pulumi config set --path backend.replicas 3`)
is merged over its default. Every problem is collected and reported together, each with
the `pulumi config set` that fixes it, so a bad stack fails at `pulumi preview`. Keys of
the earlier flat layout fail with the commands that move them.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

import pulumi
import yaml

PROJECT = "ideaforge-ai"
PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
SECRET_KEYS = ("postgresPassword", "redisUrl")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REGISTRY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_IMAGE = re.compile(r"^[a-z0-9]+([._/:-][a-zA-Z0-9_.-]+)*(@sha256:[0-9a-f]{64})?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
# As the runner checks --lock-timeout (runner/run.py): a number and a unit with no space
# (the runner sends it in the startup packet, which the server splits at spaces), or 0.
_DURATION = re.compile(r"^(?:0|(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>us|ms|s|min|h|d))$")
_DURATION_WHAT = "a PostgreSQL duration: a number and a unit (us, ms, s, min, h, d) with no space, or 0"
_MS_PER_UNIT = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_ENV_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_CAPABILITY = re.compile(r"^[A-Z_]+$")
_SSL_MODES = ("", "disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_PATH = re.compile(r"^/\S*$")
ENV_SOURCES = ("configMap", "secret")
WAIT_SERVICES = ("postgres", "redis")
PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
INGRESS_SERVICES = ("backend", "frontend")
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
ALB_CERTIFICATE_ANNOTATION = "alb.ingress.kubernetes.io/certificate-arn"

# The flat keys of the earlier layout -> where each lives now.
MOVED_KEYS = {
    "appConfigMap": "app.configMap", "appSecret": "app.secret",
    "postgresHost": "database.host", "postgresPort": "database.port", "postgresUser": "database.user",
    "postgresDb": "database.name", "postgresPasswordKey": "database.passwordKey", "postgresSslMode": "database.sslMode",
    "redisHost": "redis.host", "redisPort": "redis.port",
    "backendReplicas": "backend.replicas", "backendPort": "backend.port", "backendHealthPath": "backend.healthPath",
    "backendCpuRequest": "backend.resources.requests.cpu", "backendMemoryRequest": "backend.resources.requests.memory",
    "backendCpuLimit": "backend.resources.limits.cpu", "backendMemoryLimit": "backend.resources.limits.memory",
    "frontendReplicas": "frontend.replicas", "frontendPort": "frontend.port", "frontendHealthPath": "frontend.healthPath",
    "frontendCpuRequest": "frontend.resources.requests.cpu", "frontendMemoryRequest": "frontend.resources.requests.memory",
    "frontendCpuLimit": "frontend.resources.limits.cpu", "frontendMemoryLimit": "frontend.resources.limits.memory",
    "runAsNonRoot": "backend.security.runAsNonRoot", "runAsUser": "backend.security.runAsUser",
    "migrationsDir": "migrations.dirs[0]", "migrationImage": "migrations.image", "migrationCommand": "migrations.command",
    "migrationActiveDeadlineSeconds": "migrations.activeDeadlineSeconds",
    "migrationBackoffLimit": "migrations.backoffLimit",
    "migrationTtlSecondsAfterFinished": "migrations.ttlSecondsAfterFinished",
    "migrationLockTimeout": "migrations.lockTimeout", "migrationStatementTimeout": "migrations.statementTimeout",
    "postgresReadyTimeoutSeconds": "readiness.postgresTimeoutSeconds",
    "redisReadyTimeoutSeconds": "readiness.redisTimeoutSeconds",
    "postgresClientImage": "readiness.postgresClientImage", "redisClientImage": "readiness.redisClientImage",
    "localServices": "local.enabled",
}

# Fields of an object key that an earlier layout had and this one replaced.
REPLACED_FIELDS = {
    "ingress.frontendHost": "ingress.rules (a host and its paths each)",
    "ingress.backendHost": "ingress.rules (a host and its paths each)",
}


class SettingsError(pulumi.RunError):
    """Raised at preview with every configuration problem of the stack."""


class ConfigSource(Protocol):
    def get(self, key: str) -> Optional[str]: ...

    def get_secret(self, key: str) -> Optional[pulumi.Output]: ...


# -- the settings the components take ------------------------------------------------------


@dataclass(frozen=True)
class Images:
    registry: str
    backend_tag: str
    frontend_tag: str
    pull_secret: str  # "" for none

    @property
    def backend(self) -> str:
        return f"{self.registry}/backend:{self.backend_tag}"

    @property
    def frontend(self) -> str:
        return f"{self.registry}/frontend:{self.frontend_tag}"


@dataclass(frozen=True)
class App:
    config_map: str  # the ConfigMap this program writes from config_data; "" for none
    config_data: dict[str, str]
    secret: str  # the app team's Secret, only read; "" for none


@dataclass(frozen=True)
class EnvVar:
    """One variable of a workload's container, from the app ConfigMap or Secret under its own name."""

    name: str
    source: str  # configMap | secret
    optional: bool


@dataclass(frozen=True)
class InitWait:
    service: str  # postgres | redis
    timeout_seconds: Optional[int]  # None: wait forever; else start the pod anyway after this long


@dataclass(frozen=True)
class Database:
    host: Optional[str]  # None: the app ConfigMap's POSTGRES_HOST
    port: Optional[int]
    user: Optional[str]
    name: Optional[str]
    password: Optional[pulumi.Output]  # a Pulumi secret, or None to use the app Secret
    password_secret: str  # the Secret holding the password (the app's, or the one created from `password`)
    password_key: str
    sslmode: str


@dataclass(frozen=True)
class Redis:
    host: str
    port: int
    url: Optional[pulumi.Output]  # a Pulumi secret with credentials, or None


@dataclass(frozen=True)
class Probe:
    initial_delay_seconds: int
    period_seconds: int
    timeout_seconds: int
    failure_threshold: int


@dataclass(frozen=True)
class Autoscaling:
    enabled: bool
    min: int
    max: int
    cpu_utilization: Optional[int]
    memory_utilization: Optional[int]
    behavior: Optional[dict]  # autoscaling/v2 behavior, as in the HPA manifest


@dataclass(frozen=True)
class Security:
    run_as_non_root: bool
    run_as_user: Optional[int]
    read_only_root_filesystem: bool
    drop: tuple[str, ...]
    add: tuple[str, ...]


@dataclass(frozen=True)
class Workload:
    name: str  # backend | frontend: Deployment, Service and selector `app=<name>`
    port: int
    replicas: int
    health_path: str
    progress_deadline_seconds: int
    rollout_timeout_seconds: int  # how long `up` waits for a rollout (Pulumi's wait)
    requests: dict[str, str]
    limits: dict[str, str]
    readiness: Probe
    liveness: Probe
    autoscaling: Autoscaling
    security: Security
    env: tuple[EnvVar, ...]
    init_waits: tuple[InitWait, ...]  # backend only


@dataclass(frozen=True)
class Migrations:
    source: str  # image | configmap
    image_dirs: tuple[str, ...]
    dirs: tuple[str, ...]
    image: Optional[str]  # a dedicated image; None: the backend image
    command: Optional[tuple[str, ...]]
    active_deadline_seconds: int
    backoff_limit: int
    ttl_seconds_after_finished: int
    lock_timeout: str
    statement_timeout: str
    allow_out_of_order: bool
    snapshot: Optional[str] = None  # a schema snapshot (path relative to the project) for an empty database


@dataclass(frozen=True)
class Readiness:
    postgres_timeout_seconds: int
    redis_timeout_seconds: int
    postgres_client_image: str
    redis_client_image: str


@dataclass(frozen=True)
class IngressPath:
    path: str
    path_type: str  # Exact | Prefix | ImplementationSpecific
    service: str  # backend | frontend


@dataclass(frozen=True)
class IngressRule:
    host: Optional[str]  # None: any host
    paths: tuple[IngressPath, ...]


@dataclass(frozen=True)
class Ingress:
    enabled: bool
    name: str
    class_name: str
    annotations: dict[str, str]
    rules: tuple[IngressRule, ...]
    tls_secret: Optional[str]
    await_address_seconds: int  # 0: do not wait for the controller's address

    @property
    def hosts(self) -> list[str]:
        return [rule.host for rule in self.rules if rule.host]


@dataclass(frozen=True)
class Seed:
    enabled: bool
    file: Optional[str]
    skip_if_query: str


@dataclass(frozen=True)
class Local:
    enabled: bool
    postgres_image: str
    redis_image: str
    storage: str


@dataclass(frozen=True)
class Settings:
    namespace: str
    create_namespace: bool
    take_over: bool
    read_secrets: bool  # read the app and pull Secrets at preview (their data then sits in the state)
    images: Images
    app: App
    database: Database
    redis: Redis
    backend: Workload
    frontend: Workload
    migrations: Migrations
    readiness: Readiness
    ingress: Ingress
    seed: Seed
    local: Local

    @property
    def migration_image(self) -> str:
        return self.migrations.image or self.images.backend


# The Secret the program creates when the password is given as a Pulumi secret.
CREATED_SECRET = "ideaforge-ai-credentials"
LOCAL_DEFAULT_PASSWORD = "ideaforge-local-only"


# -- reading ----------------------------------------------------------------------------------


def project_schema(path: Path = PROJECT_FILE) -> dict[str, dict]:
    """key -> {type, default, ...} as Pulumi.yaml declares them."""
    return yaml.safe_load(path.read_text())["config"]


class _Reader:
    def __init__(self, source: ConfigSource, schema: dict[str, dict]):
        self.source = source
        self.schema = schema
        self.errors: list[str] = []

    def fail(self, path: str, problem: str, example: Any = "<value>") -> None:
        shown = json.dumps(example) if not isinstance(example, str) else example
        flag = " --path" if "." in path or "[" in path else ""
        self.errors.append(f"{path}: {problem}; fix with `pulumi config set{flag} {path} {shown}`")

    def top(self, key: str) -> Any:
        """A top-level key: the stack's value (parsed to its declared type) or the default."""
        declared = self.schema[key]
        raw = self.source.get(key)
        if raw is None:
            return copy.deepcopy(declared.get("default"))
        kind = declared["type"]
        if kind == "object":
            try:
                value = json.loads(raw) if isinstance(raw, str) else raw
            except json.JSONDecodeError:
                value = None
            if not isinstance(value, dict):
                self.fail(key, "must be an object", "--path " + key + ".<field> <value>")
                return copy.deepcopy(declared.get("default"))
            return self._merge(key, copy.deepcopy(declared.get("default") or {}), value)
        if kind == "boolean":
            text = str(raw).strip().lower()
            if text not in ("true", "false"):
                self.fail(key, f"{raw!r} is not true or false", "true")
                return declared.get("default", False)
            return text == "true"
        if kind == "integer":
            try:
                return int(str(raw).strip())
            except ValueError:
                self.fail(key, f"{raw!r} is not a whole number")
                return declared.get("default")
        return str(raw).strip()

    def _merge(self, path: str, default: dict, given: dict) -> dict:
        """`given` over `default`, field by field; a field the default does not have is a typo."""
        for name, value in given.items():
            where = f"{path}.{name}"
            if where in REPLACED_FIELDS:
                self.errors.append(f"{where}: replaced by {REPLACED_FIELDS[where]}; README, \"Configuration\"; "
                                   f"remove it with `pulumi config rm --path {where}`")
                continue
            if name not in default:
                near = difflib.get_close_matches(name, list(default), n=1)
                hint = f" (did you mean {path}.{near[0]}?)" if near else f" (known: {', '.join(default)})"
                self.errors.append(f"{where}: is not a setting{hint}; remove it with `pulumi config rm --path {where}`")
                continue
            if isinstance(default[name], dict) and isinstance(value, dict) and where.endswith(".env"):
                default[name] = {**default[name], **value}  # a stack adds or changes variables
            elif isinstance(default[name], dict) and isinstance(value, dict) and not _is_free_form(where):
                default[name] = self._merge(where, default[name], value)
            else:
                default[name] = value
        return default


def _is_free_form(path: str) -> bool:
    """Objects whose keys are the user's own, not settings of ours."""
    return path.endswith((".annotations", ".behavior", ".configData"))


class _Section:
    """Typed access to the fields of one object key, with errors that name the field's path."""

    def __init__(self, read: _Reader, path: str, values: dict):
        self.read, self.path, self.values = read, path, values

    def sub(self, name: str) -> "_Section":
        value = self.values.get(name)
        return _Section(self.read, f"{self.path}.{name}", value if isinstance(value, dict) else {})

    def _get(self, name: str) -> Any:
        return self.values.get(name)

    def integer(self, name: str, minimum: int, maximum: int = 2**31 - 1, optional: bool = False) -> Optional[int]:
        value = self._get(name)
        if value is None and optional:
            return None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            self.read.fail(f"{self.path}.{name}", f"{value!r} is not a whole number", minimum)
            return minimum
        if not minimum <= value <= maximum:
            self.read.fail(f"{self.path}.{name}", f"{value} is outside {minimum}..{maximum}", minimum)
        return value

    def boolean(self, name: str) -> bool:
        value = self._get(name)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            self.read.fail(f"{self.path}.{name}", f"{value!r} is not true or false", True)
            return False
        return value

    def string(self, name: str, pattern: Optional[re.Pattern] = None, what: str = "", example: str = "<value>",
               optional: bool = False, allow_empty: bool = False) -> Optional[str]:
        value = self._get(name)
        if value is None and optional:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.read.fail(f"{self.path}.{name}", f"{value!r} is not a string", example)
            return ""
        value = value.strip()
        if value == "" and allow_empty:
            return value
        if pattern is not None and not pattern.match(value):
            self.read.fail(f"{self.path}.{name}", f"{value!r} is not {what}", example)
        return value

    def strings(self, name: str, pattern: Optional[re.Pattern] = None, what: str = "", example: Any = (),
                allow_empty_list: bool = True) -> tuple[str, ...]:
        value = self._get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or \
                (not value and not allow_empty_list):
            self.read.fail(f"{self.path}.{name}", "must be a list of non-empty strings", list(example))
            return tuple(example)
        for item in value:
            if pattern is not None and not pattern.match(item):
                self.read.fail(f"{self.path}.{name}", f"{item!r} is not {what}", list(example))
        return tuple(value)

    def mapping(self, name: str) -> dict[str, str]:
        value = self._get(name) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.read.fail(f"{self.path}.{name}", "must be an object of strings", {"key": "value"})
            return {}
        return dict(value)


def _name(section: _Section, field: str, label: bool = False, allow_empty: bool = False) -> str:
    pattern = _DNS_LABEL if label else _DNS_SUBDOMAIN
    value = section.string(field, allow_empty=allow_empty)
    if value and (not pattern.match(value) or len(value) > (63 if label else 253)):
        section.read.fail(f"{section.path}.{field}", f"{value!r} is not a valid Kubernetes name (lower-case "
                          "letters, digits and '-')", "my-name")
    return value or ""


def load(source: ConfigSource, schema: Optional[dict[str, dict]] = None) -> Settings:
    schema = schema if schema is not None else project_schema()
    read = _Reader(source, schema)
    _refuse_moved_keys(read, source)

    namespace = read.top("namespace") or ""
    if not namespace:
        read.fail("namespace", "is not set", "20890-ideaforge-ai-dev-58a50")
    elif not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        read.fail("namespace", f"{namespace!r} is not a valid namespace name (DNS-1123 label: lower-case "
                  "letters, digits and '-', at most 63 characters)", "my-namespace")
    tags = {}
    for key in ("backendImageTag", "frontendImageTag"):
        tag = read.top(key) or ""
        if not tag:
            read.fail(key, "is not set", "672425b")
        elif not _IMAGE_TAG.match(tag):
            read.fail(key, f"{tag!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128)", "672425b")
        tags[key] = tag
    registry = read.top("imageRegistry")
    if not _REGISTRY.match(registry or ""):
        read.fail("imageRegistry", f"{registry!r} is not a registry path", "ghcr.io/org/app")
    pull_secret = read.top("imagePullSecret")
    if pull_secret and not _DNS_SUBDOMAIN.match(pull_secret):
        read.fail("imagePullSecret", f"{pull_secret!r} is not a valid Secret name", "ghcr-secret")
    images = Images(registry, tags["backendImageTag"], tags["frontendImageTag"], pull_secret)

    app_section = _Section(read, "app", read.top("app"))
    app = App(config_map=_name(app_section, "configMap", allow_empty=True),
              config_data=_config_data(app_section),
              secret=_name(app_section, "secret", allow_empty=True))
    local = _local(_Section(read, "local", read.top("local")))
    database = _database(read, source, _Section(read, "database", read.top("database")), app, local)
    redis_section = _Section(read, "redis", read.top("redis"))
    redis = Redis(redis_section.string("host", _DNS_SUBDOMAIN, "a host name", "redis"),
                  redis_section.integer("port", 1, 65535), source.get_secret("redisUrl"))

    settings = Settings(
        namespace=namespace,
        create_namespace=read.top("createNamespace"),
        take_over=read.top("takeOver"),
        read_secrets=read.top("readSecrets"),
        images=images,
        app=app,
        database=database,
        redis=redis,
        backend=_workload(_Section(read, "backend", read.top("backend")), "backend"),
        frontend=_workload(_Section(read, "frontend", read.top("frontend")), "frontend"),
        migrations=_migrations(_Section(read, "migrations", read.top("migrations"))),
        readiness=_readiness(_Section(read, "readiness", read.top("readiness"))),
        ingress=_ingress(_Section(read, "ingress", read.top("ingress"))),
        seed=_seed(_Section(read, "seed", read.top("seed"))),
        local=local,
    )
    if settings.seed.enabled and settings.database.password is None and not app.secret:
        read.fail("seed.enabled", "needs the database password: set app.secret or postgresPassword", False)
    _check_app_config(read, settings)
    if read.errors:
        raise SettingsError(
            "the stack configuration has problems; nothing was changed:\n" + "\n".join(f"  - {e}" for e in read.errors)
        )
    return settings


def _refuse_moved_keys(read: _Reader, source: ConfigSource) -> None:
    for old, new in MOVED_KEYS.items():
        value = source.get(old)
        if value is None:
            continue
        commands = [f"pulumi config rm {old}", f"pulumi config set --path {new} {_shell(value)}"]
        if old == "migrationsDir":
            commands.append("pulumi config set --path migrations.source configmap")
        if old in ("runAsNonRoot", "runAsUser"):
            commands.append(f"pulumi config set --path {new.replace('backend', 'frontend')} {_shell(value)}")
        read.errors.append(f"{old}: this key moved to {new.replace('[0]', '')}; run `{' && '.join(commands)}`")


def _shell(value: str) -> str:
    return value if re.match(r"^[-\w.:/@]+$", value) else "'" + value.replace("'", "'\\''") + "'"


def _local(s: _Section) -> Local:
    return Local(
        enabled=s.boolean("enabled"),
        postgres_image=s.string("postgresImage", _IMAGE, "an image reference", "pgvector/pgvector:pg17"),
        redis_image=s.string("redisImage", _IMAGE, "an image reference", "redis:7-alpine"),
        storage=s.string("storage", _QUANTITY, "a storage quantity", "1Gi"),
    )


def _database(read: _Reader, source: ConfigSource, s: _Section, app: App, local: Local) -> Database:
    host = s.string("host", _DNS_SUBDOMAIN, "a host name", "postgres-ha-primary", optional=True)
    user = s.string("user", optional=True)
    name = s.string("name", optional=True)
    port = s.integer("port", 1, 65535, optional=True)
    if not app.config_map:
        for field, value, example in (("host", host, "postgres"), ("port", port, 5432), ("user", user, "postgres"),
                                      ("name", name, "ideaforge")):
            if value is None:
                read.fail(f"database.{field}", "is not set, and there is no app ConfigMap (app.configMap) to read "
                          "it from", example)
    password = source.get_secret("postgresPassword")
    if password is None and local.enabled:
        # The in-namespace Postgres of a laptop cluster is created with this password;
        # it stays a Pulumi secret. Real stacks keep it in the app Secret or set postgresPassword.
        password = pulumi.Output.secret(LOCAL_DEFAULT_PASSWORD)
    if password is None and not app.secret:
        read.fail("app.secret", "is empty and postgresPassword is not set, so there is no database password",
                  "ideaforge-ai-secrets` or `pulumi config set --secret postgresPassword <password>")
    sslmode = s.string("sslMode", allow_empty=True) or ""
    if sslmode not in _SSL_MODES:
        read.fail("database.sslMode", f"{sslmode!r} is not one of {', '.join(m for m in _SSL_MODES if m)}", "require")
    return Database(
        host=host, port=port, user=user, name=name, password=password,
        password_secret=CREATED_SECRET if password is not None else app.secret,
        password_key=s.string("passwordKey", _ENV_KEY, "a valid Secret key", "POSTGRES_PASSWORD"),
        sslmode=sslmode,
    )


def _probe(s: _Section) -> Probe:
    return Probe(
        initial_delay_seconds=s.integer("initialDelaySeconds", 0, 3600),
        period_seconds=s.integer("periodSeconds", 1, 3600),
        timeout_seconds=s.integer("timeoutSeconds", 1, 3600),
        failure_threshold=s.integer("failureThreshold", 1, 100),
    )


def _config_data(s: _Section) -> dict[str, str]:
    """The app ConfigMap's data. `pulumi config set --path` stores numbers and true/false as
    such; the ConfigMap holds their text."""
    values = s.values.get("configData") or {}
    if not isinstance(values, dict):
        s.read.fail("app.configData", "must be an object of the ConfigMap's keys and values",
                    "--path app.configData.LOG_LEVEL info")
        return {}
    data = {}
    for key, value in values.items():
        where = f'app.configData.{key}'
        if not _ENV_KEY.match(key) or len(key) > 253:
            s.read.errors.append(f"{where}: {key!r} is not a valid ConfigMap key (letters, digits, '-', '_', '.'); "
                                 f"remove it with `pulumi config rm --path {where}`")
        elif isinstance(value, bool):
            data[key] = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            data[key] = str(value)
        else:
            s.read.fail(where, f"{value!r} is not a single value", "<value>")
    return data


def _env(s: _Section, name: str) -> tuple[EnvVar, ...]:
    values = s.values.get("env") or {}
    if not isinstance(values, dict):
        s.read.fail(f"{name}.env", "must be an object of variable names", f"--path {name}.env.NAME configMap")
        return ()
    env = []
    for variable, spec in values.items():
        where = f"{name}.env.{variable}"
        words = spec.split() if isinstance(spec, str) else []
        if not _ENV_NAME.match(variable):
            s.read.errors.append(f"{where}: {variable!r} is not a valid variable name; remove it with "
                                 f"`pulumi config rm --path {where}`")
        elif not words or words[0] not in ENV_SOURCES or words[1:] not in ([], ["optional"]):
            s.read.fail(where, f"{spec!r} is not configMap or secret, with ' optional' when the pod may start "
                        "without it", '"secret optional"')
        else:
            env.append(EnvVar(variable, words[0], words[1:] == ["optional"]))
    return tuple(env)


def _init_waits(s: _Section, name: str) -> tuple[InitWait, ...]:
    if "initWaits" not in s.values:  # the frontend has none
        return ()
    waits = s.sub("initWaits")
    found = []
    for service in WAIT_SERVICES:
        value = waits.values.get(service)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if value is False or value == "off":  # YAML 1.1 (PyYAML) reads a bare off as false
            continue
        if value == "forever":
            found.append(InitWait(service, None))
        elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3600:
            found.append(InitWait(service, value))
        else:
            s.read.fail(f"{name}.initWaits.{service}", f"{value!r} is not forever, off or a number of seconds "
                        "(1..3600)", "off")
    return tuple(found)


def _workload(s: _Section, name: str) -> Workload:
    scaling = s.sub("autoscaling")
    autoscaling = Autoscaling(
        enabled=scaling.boolean("enabled"),
        min=scaling.integer("min", 1, 1000),
        max=scaling.integer("max", 1, 1000),
        cpu_utilization=scaling.integer("cpuUtilization", 1, 1000, optional=True),
        memory_utilization=scaling.integer("memoryUtilization", 1, 1000, optional=True),
        behavior=scaling.values.get("behavior") or None,
    )
    if autoscaling.max < autoscaling.min:
        s.read.fail(f"{s.path}.autoscaling.max", f"{autoscaling.max} is below {s.path}.autoscaling.min "
                    f"({autoscaling.min})", autoscaling.min)
    if autoscaling.enabled and autoscaling.cpu_utilization is None and autoscaling.memory_utilization is None:
        s.read.fail(f"{s.path}.autoscaling.cpuUtilization", "an autoscaler needs a CPU or memory target", 60)
    security = s.sub("security")
    capabilities = security.sub("capabilities")
    resources = s.sub("resources")
    return Workload(
        name=name,
        port=s.integer("port", 1, 65535),
        replicas=s.integer("replicas", 0, 1000),
        health_path=s.string("healthPath", re.compile(r"^/\S*$"), "an absolute HTTP path", "/health"),
        progress_deadline_seconds=s.integer("progressDeadlineSeconds", 10, 86400),
        rollout_timeout_seconds=s.integer("rolloutTimeoutSeconds", 30, 86400),
        requests=_quantities(resources.sub("requests")),
        limits=_quantities(resources.sub("limits")),
        readiness=_probe(s.sub("readinessProbe")),
        liveness=_probe(s.sub("livenessProbe")),
        autoscaling=autoscaling,
        security=Security(
            run_as_non_root=security.boolean("runAsNonRoot"),
            run_as_user=security.integer("runAsUser", 0, 2**31 - 1, optional=True),
            read_only_root_filesystem=security.boolean("readOnlyRootFilesystem"),
            drop=capabilities.strings("drop", _CAPABILITY, "a capability name", ["ALL"]),
            add=capabilities.strings("add", _CAPABILITY, "a capability name", []),
        ),
        env=_env(s, name),
        init_waits=_init_waits(s, name),
    )


def _quantities(s: _Section) -> dict[str, str]:
    return {key: s.string(key, _QUANTITY, f"a {key} quantity", "1") for key in ("cpu", "memory")}


def _migrations(s: _Section) -> Migrations:
    source = s.string("source")
    if source not in ("image", "configmap"):
        s.read.fail("migrations.source", f"{source!r} is not image or configmap", "image")
    image = s.string("image", _IMAGE, "an image reference", "registry/migrations:tag", optional=True)
    command = s.values.get("command")
    if command is not None:
        command = s.strings("command", example=["python", "-m", "runner"], allow_empty_list=False)
        if image is None:
            # Without an image, the Job runs the shipped runner through the launcher that checks it.
            s.read.errors.append("migrations.command: is the command of a dedicated migrations.image, and no image "
                                 "is set; remove it with `pulumi config rm --path migrations.command`, or set "
                                 "`pulumi config set --path migrations.image <registry/migrations:tag>`")
    return Migrations(
        source=source,
        image_dirs=s.strings("imageDirs", re.compile(r"^/"), "an absolute path", ["/app/migrations"],
                             allow_empty_list=False),
        dirs=s.strings("dirs", example=["migrations"], allow_empty_list=False),
        image=image,
        command=tuple(command) if command is not None else None,
        active_deadline_seconds=s.integer("activeDeadlineSeconds", 30, 86400),
        backoff_limit=s.integer("backoffLimit", 0, 20),
        ttl_seconds_after_finished=s.integer("ttlSecondsAfterFinished", 60, 7 * 86400),
        lock_timeout=_duration(s, "lockTimeout", "5s"),
        statement_timeout=_duration(s, "statementTimeout", "5min"),
        allow_out_of_order=s.boolean("allowOutOfOrder"),
        snapshot=s.string("snapshot", optional=True),
    )


def _duration(s: _Section, name: str, example: str) -> str:
    value = s.string(name, _DURATION, _DURATION_WHAT, example)
    match = _DURATION.match(value or "")
    if match and match.group("number") is not None:
        milliseconds = float(match.group("number")) * _MS_PER_UNIT[match.group("unit")]
        if milliseconds > 2**31 - 1:
            s.read.fail(f"{s.path}.{name}", f"{value!r} is longer than PostgreSQL allows (about 24 days)", example)
        elif round(milliseconds) == 0 and milliseconds > 0:
            s.read.fail(f"{s.path}.{name}", f"{value!r} is shorter than 1ms, which PostgreSQL rounds to 0 "
                        "(0 disables the timeout)", example)
    return value


def _readiness(s: _Section) -> Readiness:
    return Readiness(
        postgres_timeout_seconds=s.integer("postgresTimeoutSeconds", 5, 3600),
        redis_timeout_seconds=s.integer("redisTimeoutSeconds", 5, 3600),
        postgres_client_image=s.string("postgresClientImage", _IMAGE, "an image reference", "postgres:17-alpine"),
        redis_client_image=s.string("redisClientImage", _IMAGE, "an image reference", "redis:7-alpine"),
    )


def _ingress(s: _Section) -> Ingress:
    ingress = Ingress(
        enabled=s.boolean("enabled"),
        name=_name(s, "name"),
        class_name=_name(s, "className", allow_empty=True),
        annotations=s.mapping("annotations"),
        rules=_ingress_rules(s),
        tls_secret=s.string("tlsSecret", _DNS_SUBDOMAIN, "a Secret name", "ideaforge-ai-tls", optional=True),
        await_address_seconds=s.integer("awaitAddressSeconds", 0, 3600),
    )
    if ingress.class_name and INGRESS_CLASS_ANNOTATION in ingress.annotations:
        # The API server refuses to create an Ingress that has both.
        s.read.errors.append(
            f"ingress.annotations: {INGRESS_CLASS_ANNOTATION} can not be set together with ingress.className "
            f"({ingress.class_name!r}; the API server refuses an Ingress with both); remove it with "
            f"`pulumi config rm --path 'ingress.annotations[\"{INGRESS_CLASS_ANNOTATION}\"]'`")
    certificate = ingress.annotations.get(ALB_CERTIFICATE_ANNOTATION, "")
    if any(placeholder in certificate for placeholder in ("ACCOUNT_ID", "CERT_ID", "REGION")):
        # What kept the app's ALB Ingress from ever getting a load balancer.
        s.read.errors.append(
            f"ingress.annotations: {ALB_CERTIFICATE_ANNOTATION} is the placeholder {certificate!r}, so the ALB "
            "controller cannot create the load balancer; fix with `pulumi config set --path "
            f"'ingress.annotations[\"{ALB_CERTIFICATE_ANNOTATION}\"]' arn:aws:acm:<region>:<account>:certificate/<id>`")
    return ingress


def _ingress_rules(s: _Section) -> tuple[IngressRule, ...]:
    rules = s.values.get("rules")
    example = '[{"host": "app.example.com", "paths": [{"path": "/", "pathType": "Prefix", "service": "frontend"}]}]'
    if not isinstance(rules, list) or not rules or not all(isinstance(r, dict) for r in rules):
        s.read.fail("ingress.rules", "must be a list of rules, each a host and its paths", f"'{example}'")
        return ()
    parsed, hosts = [], set()
    for i, rule in enumerate(rules):
        where = f"ingress.rules[{i}]"
        host = rule.get("host")
        if host is not None and (not isinstance(host, str) or not _DNS_SUBDOMAIN.match(host)):
            s.read.fail(f"{where}.host", f"{host!r} is not a host name", "app.example.com")
        elif host in hosts:
            s.read.fail(f"{where}.host", f"{host or 'any host'} has a rule already; put its paths in one rule",
                        "app.example.com")
        hosts.add(host)
        paths = rule.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, dict) for p in paths):
            s.read.fail(f"{where}.paths", "must be a list of paths", '\'[{"path": "/", "pathType": "Prefix", '
                        '"service": "frontend"}]\'')
            continue
        found = []
        for j, item in enumerate(paths):
            path, path_type, service = item.get("path"), item.get("pathType"), item.get("service")
            if not isinstance(path, str) or not _PATH.match(path):
                s.read.fail(f"{where}.paths[{j}].path", f"{path!r} is not an absolute path", "/api")
            if path_type not in PATH_TYPES:
                s.read.fail(f"{where}.paths[{j}].pathType", f"{path_type!r} is not one of {', '.join(PATH_TYPES)}",
                            "Prefix")
            if service not in INGRESS_SERVICES:
                s.read.fail(f"{where}.paths[{j}].service", f"{service!r} is not backend or frontend", "backend")
            found.append(IngressPath(str(path), str(path_type), str(service)))
        parsed.append(IngressRule(host, tuple(found)))
    return tuple(parsed)


def stack_sets(settings: Settings, variable: str) -> bool:
    """Whether the stack gives this app variable from its own settings (database.*, postgresPassword,
    a password key other than POSTGRES_PASSWORD, redisUrl) rather than from the app ConfigMap or
    Secret under its own name."""
    db, app = settings.database, settings.app
    fields = {"POSTGRES_HOST": db.host, "POSTGRES_PORT": db.port, "POSTGRES_USER": db.user, "POSTGRES_DB": db.name}
    if variable in fields:
        return fields[variable] is not None
    if variable == "POSTGRES_PASSWORD":
        return db.password_secret != app.secret or db.password_key != "POSTGRES_PASSWORD"
    if variable == "REDIS_URL":
        return settings.redis.url is not None or not app.config_map
    return False


def config_map_keys_read(settings: Settings) -> dict[str, list[str]]:
    """Key of the app ConfigMap -> who reads it and cannot start without it."""
    needed: dict[str, list[str]] = {}
    if not settings.app.config_map:
        return needed
    for workload in (settings.backend, settings.frontend):
        for var in workload.env:
            if var.source == "configMap" and not var.optional and not stack_sets(settings, var.name):
                needed.setdefault(var.name, []).append(workload.name)
    for key in jobs_config_keys(settings):
        needed.setdefault(key, []).append("the Jobs")
    return needed


def jobs_config_keys(settings: Settings) -> list[str]:
    """The app ConfigMap keys the readiness and migration Jobs read: the database's address and
    identity, and REDIS_URL, unless the stack sets them."""
    if not settings.app.config_map:
        return []
    keys = [key for field, key in (("host", "POSTGRES_HOST"), ("port", "POSTGRES_PORT"), ("user", "POSTGRES_USER"),
                                   ("name", "POSTGRES_DB")) if getattr(settings.database, field) is None]
    return keys + (["REDIS_URL"] if settings.redis.url is None else [])


def secret_keys_read(settings: Settings) -> dict[str, list[str]]:
    """Key of the app Secret -> who reads it and cannot start without it."""
    db, app = settings.database, settings.app
    needed: dict[str, list[str]] = {}
    if not app.secret:
        return needed
    password_from_app_secret = db.password_secret == app.secret
    for workload in (settings.backend, settings.frontend):
        for var in workload.env:
            if var.source != "secret" or var.optional:
                continue
            if not stack_sets(settings, var.name):
                needed.setdefault(var.name, []).append(workload.name)
            elif var.name == "POSTGRES_PASSWORD" and password_from_app_secret:
                needed.setdefault(db.password_key, []).append(workload.name)
    if password_from_app_secret:
        needed.setdefault(db.password_key, []).append("the Jobs")
    return needed


def _check_app_config(read: _Reader, settings: Settings) -> None:
    app = settings.app
    if app.config_data and not app.config_map:
        read.fail("app.configMap", "is empty, but app.configData is set: name the ConfigMap to write it to",
                  "ideaforge-ai-config")
        return
    for key, readers in config_map_keys_read(settings).items():
        if key not in app.config_data:
            read.fail(f"app.configData.{key}", f"is not set, and {' and '.join(dict.fromkeys(readers))} cannot start "
                      f"without it (ConfigMap {app.config_map})", "<value>")
    secret_names = {var.name for w in (settings.backend, settings.frontend) for var in w.env if var.source == "secret"}
    secret_names.add(settings.database.password_key)
    for key in sorted(secret_names & set(app.config_data)):
        read.errors.append(f"app.configData.{key}: is a secret (the workloads take it from the app Secret), and a "
                           f"ConfigMap is readable by anyone who can read the namespace; remove it with "
                           f"`pulumi config rm --path app.configData.{key}` and keep it in Secret "
                           f"{app.secret or '<app.secret>'}")


def _seed(s: _Section) -> Seed:
    seed = Seed(enabled=s.boolean("enabled"), file=s.string("file", optional=True),
                skip_if_query=s.string("skipIfQuery", allow_empty=True) or "")
    if seed.enabled and not seed.file:
        s.read.fail("seed.file", "is not set, and seed.enabled is true", "../ideaforge-ai/init-db/seed_sample_data.sql")
    return seed


def from_stack() -> Settings:
    return load(pulumi.Config(PROJECT))
