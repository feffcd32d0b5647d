"""The contract between the program and the runner: the Job's own command, environment and
ConfigMap, run against a real PostgreSQL, apply the project's migrations."""

import os
import subprocess
import sys

from psycopg2.extensions import parse_dsn

from tests.pg import ROOT
from tests.program import dev, run_program
from tests.test_runner_discovery import configmap_mount


def test_the_jobs_command_and_environment_apply_the_shipped_configmap(db, tmp_path):
    deployment = run_program(dev())
    assert deployment.error is None, deployment.error
    job = deployment.find("Job", "db-migrations").inputs["spec"]["template"]["spec"]
    container = job["containers"][0]
    data = deployment.find("ConfigMap", "db-migrations").inputs["data"]
    mount = configmap_mount(tmp_path / "migrations", data)

    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert container["volumeMounts"][0]["mountPath"] == env["MIGRATIONS_DIR"]
    # What the kubelet and the cluster provide: the mount, the Service's address (here the
    # test server), the Secret's password and the termination log. User and options are the Job's.
    server = parse_dsn(db.dsn)
    env.update(MIGRATIONS_DIR=str(mount), POSTGRES_HOST=server.get("host", "127.0.0.1"),
               POSTGRES_PORT=server.get("port", "5432"), POSTGRES_DB=server["dbname"],
               POSTGRES_PASSWORD=server.get("password", ""), TERMINATION_LOG=str(tmp_path / "termination-log"))
    if server.get("user") != env["POSTGRES_USER"]:
        env["POSTGRES_USER"] = server["user"]
    (tmp_path / "termination-log").write_text("")
    command = [sys.executable if part == "python" else part for part in container["command"]]
    result = subprocess.run(command, env=dict(os.environ, **env, PYTHONPATH=str(ROOT)), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert db.applied() == sorted(data)
    assert (tmp_path / "termination-log").read_text().startswith(f"applied {len(data)} migrations")
