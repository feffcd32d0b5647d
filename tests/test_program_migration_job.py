"""The migration Job: its fields, what it runs, and exactly which changes make it run again."""

import base64
import hashlib
import io
import zipfile

import pytest

from tests.program import ROOT, dev, run_program

FIXTURES = ROOT / "tests" / "fixtures" / "program_migrations"


def container(job):
    return job.inputs["spec"]["template"]["spec"]["containers"][0]


def env_of(c):
    return {e["name"]: e for e in c["env"]}


def shipped(**more):
    """The configmap source, from this repository's test fixtures."""
    return dev(**{"migrations.source": "configmap", "migrations.dirs": [str(FIXTURES)], **more})


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def job(deployment):
    return deployment.find("Job", "db-migrations")


def test_job_spec_keeps_the_old_limits(job):
    spec = job.inputs["spec"]
    assert (spec["ttlSecondsAfterFinished"], spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (3600, 3, 600)
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_retries_and_ttl_set_in_the_stack_reach_the_job():
    spec = run_program(dev(**{"migrations.backoffLimit": 1, "migrations.ttlSecondsAfterFinished": 120})).find(
        "Job", "db-migrations").inputs["spec"]
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (1, 120)


def test_job_labels_keep_the_old_selectors(job):
    for labels in (job.inputs["metadata"]["labels"], job.inputs["spec"]["template"]["metadata"]["labels"]):
        assert (labels["app"], labels["component"]) == ("db-migration", "database")


def test_job_runs_the_shipped_runner_on_the_backend_images_own_python(job, deployment):
    backend = deployment.find("Deployment", "backend").inputs["spec"]["template"]["spec"]["containers"][0]
    assert container(job)["image"] == backend["image"] == "ghcr.io/soumantrivedi/ideaforge-ai/backend:24f45fd"
    command = container(job)["command"]
    assert command[:2] == ["python", "-c"] and command[3] == "/opt/db-migrations-runner/runner.pyz"
    assert {"name": "runner", "mountPath": "/opt/db-migrations-runner", "readOnly": True} in container(job)["volumeMounts"]


def test_the_jobs_command_carries_the_checksum_of_the_zipapp_it_ships(job, deployment):
    data = base64.b64decode(deployment.find("ConfigMap", "db-migrations-runner").inputs["binaryData"]["runner.pyz"])
    checksum = hashlib.sha256(data).hexdigest()
    assert container(job)["command"][4] == checksum
    assert job.inputs["spec"]["template"]["metadata"]["annotations"]["ideaforge.ai/runner-sha256"] == checksum


def test_a_command_without_a_dedicated_image_fails_the_preview():
    result = run_program(dev(**{"migrations.command": ["python", "/opt/db-migrations-runner/runner.pyz"]}))
    assert "migrations.command: is the command of a dedicated migrations.image" in str(result.error)


def test_the_runner_configmap_holds_a_zipapp_of_the_runner_and_nothing_else(deployment):
    data = deployment.find("ConfigMap", "db-migrations-runner").inputs["binaryData"]["runner.pyz"]
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(data)))
    names = archive.namelist()
    assert names[0] == "__main__.py"
    assert sorted(names[1:]) == sorted(f"runner/{p.name}" for p in (ROOT / "runner").glob("*.py"))


def test_the_job_reads_the_migrations_of_the_image_both_copies_later_winning(job):
    env = env_of(container(job))
    assert env["MIGRATIONS_DIR"]["value"] == "/app/migrations-local:/app/migrations"
    assert [v["name"] for v in job.inputs["spec"]["template"]["spec"]["volumes"]] == ["runner"]


def test_the_database_identity_comes_from_the_app_configmap_not_from_the_stack(job):
    env = env_of(container(job))
    for variable in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_DB"):
        assert env[variable] == {"name": variable, "valueFrom": {
            "configMapKeyRef": {"name": "ideaforge-ai-config", "key": variable}}}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "ideaforge-ai-secrets",
                                                                      "key": "POSTGRES_PASSWORD"}
    assert "REDIS_URL" not in env


def test_a_database_value_set_in_the_stack_replaces_the_configmaps():
    env = env_of(container(run_program(dev(**{"database.host": "db.internal"})).find("Job", "db-migrations")))
    assert env["POSTGRES_HOST"] == {"name": "POSTGRES_HOST", "value": "db.internal"}
    assert "configMapKeyRef" in env["POSTGRES_USER"]["valueFrom"]


def test_waiting_for_another_runs_lock_follows_the_deadline():
    env = env_of(container(run_program(dev(**{"migrations.activeDeadlineSeconds": 1800})).find("Job", "db-migrations")))
    assert env["MIGRATION_WAIT_FOR_LOCK"]["value"] == "900"


def test_the_job_refuses_out_of_order_files_unless_the_stack_allows_them(job):
    assert "MIGRATION_ALLOW_OUT_OF_ORDER" not in env_of(container(job))
    allowed = run_program(dev(**{"migrations.allowOutOfOrder": "true"})).find("Job", "db-migrations")
    assert env_of(container(allowed))["MIGRATION_ALLOW_OUT_OF_ORDER"] == {"name": "MIGRATION_ALLOW_OUT_OF_ORDER",
                                                                          "value": "true"}


def test_allow_out_of_order_must_be_true_or_false():
    result = run_program(dev(**{"migrations.allowOutOfOrder": "sometimes"}))
    assert "migrations.allowOutOfOrder: 'sometimes' is not true or false" in str(result.error)


def test_job_pulls_with_the_pull_secret_and_surfaces_its_logs_on_failure(job):
    assert job.inputs["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "ghcr-secret"}]
    assert container(job)["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_job_runs_as_the_backend_image_allows(job):
    pod = job.inputs["spec"]["template"]["spec"]
    assert "runAsNonRoot" not in pod["securityContext"]
    assert container(job)["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_job_is_replaced_never_updated_and_frees_its_name_first(job):
    assert job.replace_on_changes == ["*"]
    assert job.delete_before_replace is True
    assert job.inputs["metadata"]["name"] == "db-migrations"


def test_a_failed_job_is_replaced_on_the_next_up(job):
    assert job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"


def test_pulumi_waits_longer_than_the_jobs_own_deadline(job):
    assert job.custom_timeouts == {"create": "720s", "update": "720s"}


def test_deadline_setting_moves_the_await_timeout_with_it():
    job = run_program(dev(**{"migrations.activeDeadlineSeconds": 1800})).find("Job", "db-migrations")
    assert job.inputs["spec"]["activeDeadlineSeconds"] == 1800
    assert job.custom_timeouts["create"] == "1920s"


def test_the_configmap_source_ships_every_file_verbatim_where_the_runner_looks():
    result = run_program(shipped())
    assert result.error is None, result.error
    data = result.find("ConfigMap", "db-migrations-files").inputs["data"]
    assert data == {p.name: p.read_text() for p in FIXTURES.glob("*.sql")}
    c = container(result.find("Job", "db-migrations"))
    assert env_of(c)["MIGRATIONS_DIR"]["value"] == "/migrations"
    assert {"name": "migrations", "mountPath": "/migrations", "readOnly": True} in c["volumeMounts"]
    assert [m["name"] for m in result.outputs["migrations"]] == sorted(data)


def test_files_of_several_dirs_are_one_set_and_differing_copies_are_reported(tmp_path, capfd):
    first, second = tmp_path / "init-db", tmp_path / "supabase"
    first.mkdir(), second.mkdir()
    (first / "001_a.sql").write_text("CREATE TABLE a (id int);\n")
    (first / "002_b.sql").write_text("CREATE TABLE b (id int);\n")
    (second / "002_b.sql").write_text("CREATE TABLE b (id int, v text);\n")
    result = run_program(dev(**{"migrations.source": "configmap", "migrations.dirs": [str(first), str(second)]}))
    assert result.error is None, result.error
    data = result.find("ConfigMap", "db-migrations-files").inputs["data"]
    assert data == {"001_a.sql": "CREATE TABLE a (id int);\n", "002_b.sql": "CREATE TABLE b (id int, v text);\n"}


def test_a_dedicated_migrations_image_runs_its_own_command_and_ships_nothing():
    result = run_program(dev(**{"migrations.image": "ghcr.io/acme/migrations:9"}))
    assert result.error is None, result.error
    c = container(result.find("Job", "db-migrations"))
    assert (c["image"], c["command"]) == ("ghcr.io/acme/migrations:9", ["python", "-m", "runner"])
    assert [r.object_name for r in result.of_kind("ConfigMap") if r.object_name.startswith("db-migrations")] == []


def test_a_dedicated_image_does_not_read_the_checkout_dirs(tmp_path):
    (tmp_path / "001_huge.sql").write_text("SELECT 1;\n" + "-- padding\n" * 200_000)  # over a ConfigMap's limit
    result = run_program(dev(**{"migrations.image": "ghcr.io/acme/migrations:9", "migrations.dirs": [str(tmp_path)]}))
    assert result.error is None, result.error


def test_a_file_that_cannot_ship_stops_the_preview_with_what_to_do(tmp_path):
    (tmp_path / "001_huge.sql").write_text("SELECT 1;\n" + "-- padding\n" * 200_000)
    result = run_program(dev(**{"migrations.source": "configmap", "migrations.dirs": [str(tmp_path)]}))
    assert "a ConfigMap holds at most 900 KiB" in str(result.error)
    assert "migrations.image" in str(result.error)


def test_a_bad_migration_stops_the_preview_with_the_runners_message(tmp_path):
    (tmp_path / "001_a.sql").write_text("SELECT 1;\nCOMMIT;\n")
    result = run_program(dev(**{"migrations.source": "configmap", "migrations.dirs": [str(tmp_path)]}))
    assert "001_a.sql:2: COMMIT is transaction control" in str(result.error)


def job_inputs(config):
    result = run_program(config)
    assert result.error is None, result.error
    return result.find("Job", "db-migrations").inputs


@pytest.fixture(scope="module")
def baseline():
    return job_inputs(dev())


def test_unchanged_stack_gives_an_identical_job(baseline):
    assert job_inputs(dev()) == baseline


def test_new_backend_image_changes_the_job(baseline):
    assert job_inputs(dev(backendImageTag="abc1234")) != baseline


def test_new_backend_image_changes_the_job_even_with_a_dedicated_migrations_image():
    dedicated = dev(**{"migrations.image": "ghcr.io/acme/migrations:9"})
    assert job_inputs(dedicated) != job_inputs(dev(backendImageTag="abc1234", **{"migrations.image":
                                                                                  "ghcr.io/acme/migrations:9"}))


def test_a_changed_runner_changes_the_job(baseline, monkeypatch):
    from components import runner_bundle

    built = runner_bundle.build()
    monkeypatch.setattr(runner_bundle, "build", lambda: runner_bundle.RunnerBundle(built.data + b"\n"))
    assert job_inputs(dev()) != baseline


def test_changed_or_added_migration_file_changes_the_job(tmp_path):
    for path in FIXTURES.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    config = dev(**{"migrations.source": "configmap", "migrations.dirs": [str(tmp_path)]})
    before = job_inputs(config)
    assert job_inputs(config) == before
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- a comment is a change too\n")
    changed = job_inputs(config)
    assert changed != before
    (tmp_path / "20990101000000_more.sql").write_text("CREATE TABLE more (id int);\n")
    assert job_inputs(config) != changed


@pytest.mark.parametrize("change", [
    {"frontendImageTag": "def5678"},
    {"backend.autoscaling.max": 30},
    {"frontend.replicas": 1},
    {"backend.resources.limits.memory": "8Gi"},
    {"ingress.awaitAddressSeconds": 120},
    {"app.configData.LOG_LEVEL": "debug"},
])
def test_changes_that_do_not_concern_migrations_leave_the_job_alone(baseline, change):
    assert job_inputs(dev(**change)) == baseline
