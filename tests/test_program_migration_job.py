"""The migration Job: its fields, and exactly which changes make it run again."""

import pytest

from tests.program import ROOT, dev, run_program


def container(job):
    return job.inputs["spec"]["template"]["spec"]["containers"][0]


def env_of(c):
    return {e["name"]: e for e in c["env"]}


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


def test_job_labels_keep_the_old_selectors(job):
    for labels in (job.inputs["metadata"]["labels"], job.inputs["spec"]["template"]["metadata"]["labels"]):
        assert (labels["app"], labels["component"]) == ("db-migration", "database")


def test_job_resources(job):
    assert container(job)["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}


def test_job_runs_the_runner_in_the_backend_image_with_the_backends_tag(job, deployment):
    backend = deployment.find("Deployment", "backend").inputs["spec"]["template"]["spec"]["containers"][0]
    assert container(job)["image"] == backend["image"] == "ghcr.io/soumantrivedi/ideaforge-ai/backend:672425b"
    assert container(job)["command"] == ["python", "-m", "runner"]


def test_job_gets_the_backends_database_environment_with_the_password_from_a_secret(job):
    env = env_of(container(job))
    assert {k: env[k]["value"] for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_DB")} == {
        "POSTGRES_HOST": "postgres-ha-primary", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres", "POSTGRES_DB": "ideaforge_ai"}
    assert env["POSTGRES_PASSWORD"] == {
        "name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "ideaforge-ai-secrets", "key": "POSTGRES_PASSWORD"}}}
    assert env["REDIS_URL"]["value"] == "redis://redis:6379/0"


def test_migrations_are_mounted_read_only_where_the_runner_looks_first(job):
    mounts = container(job)["volumeMounts"]
    assert mounts == [{"name": "migrations", "mountPath": "/migrations", "readOnly": True}]
    assert env_of(container(job))["MIGRATIONS_DIR"]["value"] == "/migrations"
    volume = job.inputs["spec"]["template"]["spec"]["volumes"][0]
    assert volume["projected"]["sources"] == [{"configMap": {"name": "db-migrations"}}]


def test_configmap_carries_every_migration_file_verbatim(deployment):
    data = deployment.find("ConfigMap", "db-migrations").inputs["data"]
    files = sorted((ROOT / "migrations").glob("*.sql"))
    assert data == {p.name: p.read_text() for p in files}


def test_job_pulls_with_the_pull_secret_and_surfaces_its_logs_on_failure(job):
    assert job.inputs["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "ghcr-secret"}]
    assert container(job)["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_job_is_replaced_never_updated_and_frees_its_name_first(job):
    assert job.replace_on_changes == ["*"]
    assert job.delete_before_replace is True
    assert job.inputs["metadata"]["name"] == "db-migrations"


def test_a_failed_job_is_replaced_on_the_next_up(job):
    assert job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"


def test_pulumi_waits_longer_than_the_jobs_own_deadline(job):
    assert job.custom_timeouts == {"create": "720s", "update": "720s"}


def test_deadline_setting_moves_the_await_timeout_with_it():
    result = run_program(dev(migrationActiveDeadlineSeconds="1800"))
    job = result.find("Job", "db-migrations")
    assert job.inputs["spec"]["activeDeadlineSeconds"] == 1800
    assert job.custom_timeouts["create"] == "1920s"


def test_dedicated_migrations_image_and_command_can_be_configured():
    result = run_program(dev(migrationImage="ghcr.io/acme/migrations:9", migrationCommand=["db-migrate", "apply"]))
    c = container(result.find("Job", "db-migrations"))
    assert (c["image"], c["command"]) == ("ghcr.io/acme/migrations:9", ["db-migrate", "apply"])


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


def test_changed_migration_file_changes_the_job(baseline, tmp_path):
    for path in (ROOT / "migrations").glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    assert job_inputs(dev(migrationsDir=str(tmp_path))) == baseline
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- a comment is a change too\n")
    assert job_inputs(dev(migrationsDir=str(tmp_path))) != baseline


def test_added_migration_file_changes_the_job(baseline, tmp_path):
    for path in (ROOT / "migrations").glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "20260101000000_more.sql").write_text("CREATE TABLE more (id int);\n")
    assert job_inputs(dev(migrationsDir=str(tmp_path))) != baseline


@pytest.mark.parametrize("change", [
    {"frontendImageTag": "def5678"},
    {"backendReplicas": "5"},
    {"frontendReplicas": "1"},
    {"backendMemoryLimit": "2Gi"},
])
def test_changes_that_do_not_concern_migrations_leave_the_job_alone(baseline, change):
    assert job_inputs(dev(**change)) == baseline
