"""The contract between the program and the runner, run for real: the Job's own command,
environment and volumes, on what the app's backend image has (Python with psycopg2 2.9.10
only, no code of this project), against a real PostgreSQL."""

import base64
import io
import json
import shutil
import subprocess
import zipfile

import pytest
from psycopg2.extensions import parse_dsn

from deploytool import expected_objects, preflight, runner_job
from tests import backend_image
from tests.e2e import sandbox
from tests.program import dev, run_program

OLD_TABLE = ("CREATE TABLE schema_migrations (id SERIAL PRIMARY KEY, migration_name VARCHAR(255) UNIQUE NOT NULL, "
             "applied_at TIMESTAMP WITH TIME ZONE DEFAULT NOW())")


@pytest.fixture(scope="module")
def job_pod():
    deployment = run_program(dev())
    assert deployment.error is None, deployment.error
    job = deployment.find("Job", "db-migrations").inputs
    runner = deployment.find("ConfigMap", "db-migrations-runner").inputs
    return job["spec"]["template"]["spec"], runner


@pytest.fixture(scope="module")
def image_python():
    return backend_image.python_bin_dir()


def run_job(db, job_pod, image_python, tmp_path, image_dirs=None, runner=None, config_maps=None):
    """The Job's container as the kubelet would start it, in the backend image; `runner`: the
    runner ConfigMap as the namespace holds it, if not the one the program made; `config_maps`:
    more ConfigMaps of the namespace."""
    pod, made = job_pod
    runner = runner or made
    container = pod["containers"][0]
    server = parse_dsn(db.dsn)
    app_config = {"data": {"POSTGRES_HOST": "postgres-ha-primary", "POSTGRES_PORT": server.get("port", "5432"),
                           "POSTGRES_USER": server.get("user", "postgres"), "POSTGRES_DB": server["dbname"],
                           "REDIS_URL": "redis://redis:6379/0"}}
    lookup = sandbox.config_map_lookup(
        {"db-migrations-runner": runner, "ideaforge-ai-config": app_config, **(config_maps or {})},
        {"ideaforge-ai-secrets": {"stringData": {"POSTGRES_PASSWORD": server.get("password", "")}}})
    env = dict(sandbox.standard_env("db-migrations-x"), **sandbox.resolve_env(container, lookup, {}))
    env["PATH"] = f"{image_python}:/usr/bin:/bin"
    binds = sandbox.materialize_volumes(pod, container, lookup, tmp_path)
    binds += [sandbox.Bind(path, target) for target, path in (image_dirs or backend_image.IMAGE_DIRS).items()]
    log, termination = tmp_path / "log", tmp_path / "termination-log"
    process = sandbox.start(sandbox.Launch(container["command"], env, binds), log,
                            {"postgres-ha-primary": "127.0.0.1"}, termination)
    code = process.wait(timeout=120)
    return code, log.read_text(), termination.read_text()


def test_the_jobs_command_applies_the_images_migrations_with_only_psycopg2_installed(db, job_pod, image_python,
                                                                                     tmp_path):
    code, log, termination = run_job(db, job_pod, image_python, tmp_path)
    assert code == 0, log
    assert db.applied() == ["20251121000001_create_tenants.sql", "20251121000002_create_products.sql",
                            "20251124000003_api_keys.sql", "20251126000001_product_scores.sql"]
    # the supabase copy of the file both folders hold is the one that ran
    assert "provider" in {r[0] for r in db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'api_keys'")}
    assert "WARNING: 20251124000003_api_keys.sql differs between" in log
    assert termination.startswith("applied 4 migrations")


def test_the_image_python_has_no_project_code_and_no_sqlparse(image_python):
    probe = subprocess.run([str(image_python / "python"), "-c",
                            "import importlib.util as u; print([m for m in ('runner', 'sqlparse', 'pulumi', 'psycopg2')"
                            " if u.find_spec(m)])"], capture_output=True, text=True, cwd="/", env={"PATH": "/usr/bin"})
    assert probe.stdout.strip() == "['psycopg2']"


def test_the_first_deploy_on_a_database_the_old_script_kept_applies_nothing_then_a_new_one(db, job_pod, image_python,
                                                                                           tmp_path):
    # What `make eks-deploy` left: the schema of every file of the old ConfigMap (init-db
    # and supabase, supabase winning), and the old script's rows, with and without `.sql`.
    for path in sorted(backend_image.IMAGE_DIRS["/app/migrations"].glob("*.sql")) + \
            [backend_image.IMAGE_DIRS["/app/migrations-local"] / "20251126000001_product_scores.sql"]:
        db.execute(path.read_text())
    db.execute(OLD_TABLE)
    for name in ("20251121000001_create_tenants.sql", "20251121000002_create_products",
                 "20251124000003_api_keys.sql", "20251126000001_product_scores.sql"):
        db.execute("INSERT INTO schema_migrations (migration_name) VALUES (%s)", (name,))
    before = db.dump()

    code, log, _ = run_job(db, job_pod, image_python, tmp_path / "first")

    assert code == 0, log
    assert "nothing to apply; 4 migrations already applied" in log
    assert db.dump() == before
    assert db.query("SELECT count(*) FROM schema_migrations WHERE checksum IS NULL") == [(0,)]

    newer = tmp_path / "newer-image"
    shutil.copytree(backend_image.IMAGE_DIRS["/app/migrations"], newer)
    (newer / "20251202000000_add_sso_fields.sql").write_text("ALTER TABLE tenants ADD COLUMN sso_domain text;\n")
    code, log, _ = run_job(db, job_pod, image_python, tmp_path / "second",
                           {**backend_image.IMAGE_DIRS, "/app/migrations": newer})
    assert code == 0, log
    assert "applied 20251202000000_add_sso_fields.sql" in log and "applied 1 migration;" in log


def test_the_job_refuses_a_runner_whose_checksum_is_not_the_one_in_its_pod_template(db, job_pod, image_python,
                                                                                    tmp_path):
    # Someone who may update ConfigMaps in the namespace swaps the runner for their own code.
    marker = tmp_path / "swapped-runner-ran"
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("__main__.py", f"open({str(marker)!r}, 'w').close()\n")
    swapped = {"binaryData": {"runner.pyz": base64.b64encode(payload.getvalue()).decode()}}
    before = db.dump()

    code, log, termination = run_job(db, job_pod, image_python, tmp_path, runner=swapped)

    assert code == 2, log
    assert "refusing to run the migration runner /opt/db-migrations-runner/runner.pyz: its sha256 is" in log
    assert "changed outside Pulumi" in termination
    assert db.dump() == before
    assert not marker.exists()


def one_off(job_pod, args, env=None, files_config_map=None):
    """deploy.py's one-off runner Job (status, the pre-flight), made from the migration Job."""
    pod, runner = job_pod
    manifest = runner_job.job_manifest({"spec": {"template": {"spec": pod}}}, "db-migrations-status-1", args,
                                       env or {}, files_config_map=files_config_map)
    return manifest["spec"]["template"]["spec"], runner


def test_deploy_pys_status_job_reports_the_history_against_the_images_files_without_writing(db, job_pod, image_python,
                                                                                            tmp_path):
    db.execute(OLD_TABLE)  # the old script's table, one file recorded without `.sql`, the rest pending
    db.execute("CREATE TABLE tenants (id int)")
    db.execute("INSERT INTO schema_migrations (migration_name) VALUES ('20251121000001_create_tenants')")
    before = db.dump()

    code, log, _ = run_job(db, one_off(job_pod, ["status"]), image_python, tmp_path)

    assert code == 0, log
    assert "20251121000001_create_tenants.sql" in log and "20251126000001_product_scores.sql" in log
    assert "pending" in log
    assert db.dump() == before


def test_deploy_pys_one_off_runner_jobs_cannot_write_whatever_they_run(db, job_pod, image_python, tmp_path):
    before = db.dump()

    code, log, _ = run_job(db, one_off(job_pod, ["apply"]), image_python, tmp_path)

    assert code != 0, log
    assert "read-only" in log  # the runner refuses a read-only session, and PostgreSQL would
    assert db.dump() == before


def test_the_pre_flight_lists_recorded_migrations_whose_objects_are_missing_file_by_file(db, job_pod, image_python,
                                                                                       tmp_path):
    # The old script recorded both files; the second one's index never ran.
    db.execute((backend_image.IMAGE_DIRS["/app/migrations"] / "20251121000001_create_tenants.sql").read_text())
    db.execute("CREATE TABLE products (id bigserial PRIMARY KEY, tenant_id bigint NOT NULL, name text NOT NULL)")
    db.execute(OLD_TABLE)
    for name in ("20251121000001_create_tenants.sql", "20251121000002_create_products.sql"):
        db.execute("INSERT INTO schema_migrations (migration_name) VALUES (%s)", (name,))
    expected = json.dumps(expected_objects.expected(expected_objects.read_directories(
        [backend_image.IMAGE_DIRS["/app/migrations-local"], backend_image.IMAGE_DIRS["/app/migrations"]])))
    before = db.dump()
    runs = []

    def run_runner(*args, env=None, files=None):
        pod = one_off(job_pod, list(args), env, files_config_map="check-files")
        code, log, _ = run_job(db, pod, image_python, tmp_path, config_maps={"check-files": {"data": files}})
        runs.append(log)
        return runner_job.RunnerRun("db-migrations-preflight-1", code, log)

    findings = preflight.recorded_objects(preflight.Context(None, None, run_runner, expected))

    assert [f.level for f in findings] == ["warn", "warn"], runs
    assert findings[0].message.startswith("20251121000002_create_products.sql is recorded, and 1 of its objects")
    assert "products_tenant_idx" in findings[0].message
    assert "runner reapply" in findings[1].message
    assert db.dump() == before


def test_a_late_file_stops_the_job_with_exit_3_unless_the_stack_allows_out_of_order(db, job_pod, image_python,
                                                                                  tmp_path):
    # A branch merged after a newer migration shipped: its file sorts before an applied one.
    local, image = tmp_path / "local", tmp_path / "image"
    local.mkdir()
    image.mkdir()
    (local / "20251130000000_base.sql").write_text("CREATE TABLE base (id int);\n")
    (image / "20251202000000_newer.sql").write_text("CREATE TABLE newer (id int);\n")
    dirs = {"/app/migrations-local": local, "/app/migrations": image}
    code, log, _ = run_job(db, job_pod, image_python, tmp_path / "first", dirs)
    assert code == 0, log
    (image / "20251201000000_late.sql").write_text("CREATE TABLE late (id int);\n")

    code, log, _ = run_job(db, job_pod, image_python, tmp_path / "refused", dirs)
    assert code == 3, log
    assert "20251201000000_late.sql" in log and db.query("SELECT to_regclass('late')") == [(None,)]

    allowed = run_program(dev(**{"migrations.allowOutOfOrder": "true"}))
    pod = allowed.find("Job", "db-migrations").inputs["spec"]["template"]["spec"]
    code, log, _ = run_job(db, (pod, job_pod[1]), image_python, tmp_path / "allowed", dirs)
    assert code == 0, log
    assert db.query("SELECT to_regclass('late')::text") == [("late",)]
