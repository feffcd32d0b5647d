"""migrations.snapshot: the local stack's Job builds its empty database from the committed snapshot."""

import pytest
from psycopg2.extensions import parse_dsn

from tests import backend_image, old_flow
from tests.e2e import sandbox
from tests.pg import ROOT
from tests.program import LOCAL_CONFIG, dev, run_program, with_settings

SNAPSHOT = ROOT / "snapshots" / "ideaforge-old-flow.sql"
APP_IMAGE_DIRS = {"/app/migrations-local": old_flow.FOLDERS[0], "/app/migrations": old_flow.FOLDERS[1]}


@pytest.fixture(scope="module")
def local():
    result = run_program(LOCAL_CONFIG, stack="local")
    assert result.error is None, result.error
    return result


def test_the_local_job_ships_the_snapshot_and_names_it_to_the_runner(local):
    assert local.find("ConfigMap", "db-migrations-snapshot").inputs["data"] == {"snapshot.sql": SNAPSHOT.read_text()}
    pod = local.find("Job", "db-migrations").inputs["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MIGRATION_SNAPSHOT"] == "/opt/db-migrations-snapshot/snapshot.sql"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/opt/db-migrations-snapshot"]]["configMap"]["name"] == "db-migrations-snapshot"


def test_the_dev_stack_ships_no_snapshot():
    deployment = run_program(dev())
    assert deployment.error is None, deployment.error
    assert "MIGRATION_SNAPSHOT" not in {e["name"] for e in deployment.find("Job", "db-migrations").inputs["spec"]
                                        ["template"]["spec"]["containers"][0]["env"]}
    assert [c for c in deployment.of_kind("ConfigMap") if c.object_name == "db-migrations-snapshot"] == []


def test_a_missing_snapshot_file_fails_the_preview():
    result = run_program(with_settings(LOCAL_CONFIG, **{"migrations.snapshot": "snapshots/nope.sql"}), stack="local")
    assert result.error is not None and "migrations.snapshot snapshots/nope.sql does not exist" in str(result.error)


@pytest.fixture
def empty_db(pg_server):
    database = pg_server.create_database()
    database.execute(f'ALTER DATABASE "{database.name}" SET extension_control_path = %s',
                     (f"{old_flow.STANDIN_SHARE}:$system",))
    yield database
    pg_server.drop_database(database.name)


def run_local_job(local, db, tmp_path):
    """The local stack's migration Job as the kubelet would start it, in the backend image
    (Python with psycopg2 only) holding the app's two migration folders."""
    pod = local.find("Job", "db-migrations").inputs["spec"]["template"]["spec"]
    container = pod["containers"][0]
    config_maps = {name: local.find("ConfigMap", name).inputs for name in ("db-migrations-runner", "db-migrations-snapshot")}
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    server = parse_dsn(db.dsn)
    lookup = sandbox.config_map_lookup(config_maps, {"ideaforge-ai-credentials": {"stringData": {k: "" for k in keys}}})
    env = dict(sandbox.standard_env("db-migrations-x"), **sandbox.resolve_env(container, lookup, {}))
    # The Service's port and the database: the test server's.
    env.update(PATH=f"{backend_image.python_bin_dir()}:/usr/bin:/bin", POSTGRES_PORT=server["port"],
               POSTGRES_USER=server.get("user", "postgres"), POSTGRES_DB=server["dbname"])
    binds = sandbox.materialize_volumes(pod, container, lookup, tmp_path)
    binds += [sandbox.Bind(path, target) for target, path in APP_IMAGE_DIRS.items()]
    log = tmp_path / "log"
    process = sandbox.start(sandbox.Launch(container["command"], env, binds), log, {"postgres": "127.0.0.1"},
                            tmp_path / "termination-log")
    return process.wait(timeout=180), log.read_text()


def test_the_local_stacks_first_migration_job_passes_on_an_empty_database(local, empty_db, tmp_path):
    code, log = run_local_job(local, empty_db, tmp_path / "first")
    assert code == 0, log
    assert "loaded snapshot snapshot.sql into the empty database" in log
    assert "nothing to apply; 18 migrations already applied" in log

    code, log = run_local_job(local, empty_db, tmp_path / "next")  # the next `up` that runs the Job
    assert code == 0, log
    assert "not used: the database has a migration history" in log


def test_a_snapshot_too_large_for_a_configmap_in_bytes_fails_the_preview(tmp_path):
    big = tmp_path / "big.sql"
    big.write_text("-- runner:snapshot\n-- " + "é" * 470_000 + "\nSELECT 1;\n", encoding="utf-8")  # 918 KiB, 459 Ki characters
    result = run_program(with_settings(LOCAL_CONFIG, **{"migrations.snapshot": str(big)}), stack="local", preview=True)
    assert result.error is not None and "is 918 KiB; a ConfigMap holds at most 900 KiB" in str(result.error)


def test_a_snapshot_that_is_not_utf8_fails_the_preview_with_its_name(tmp_path):
    latin1 = tmp_path / "latin1.sql"
    latin1.write_bytes("-- runner:snapshot\nCOMMENT ON TABLE t IS 'café';\n".encode("latin-1"))
    result = run_program(with_settings(LOCAL_CONFIG, **{"migrations.snapshot": str(latin1)}), stack="local", preview=True)
    assert result.error is not None
    assert f"migrations.snapshot {latin1} is not UTF-8 text (byte 45)" in str(result.error)
