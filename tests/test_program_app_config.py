"""The app ConfigMap, owned by the program: its values are stack data, a change rolls the pods
that read a changed key, and a new database runs the readiness checks and migrations first."""

import pytest

from tests import app_files
from tests.program import dev, run_program


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


def template_annotations(result, name):
    return result.find("Deployment", name).inputs["spec"]["template"]["metadata"]["annotations"]


def job_template(result, name):
    return result.find("Job", name).inputs["spec"]["template"]


def test_the_dev_stack_writes_the_configmap_the_apps_manifest_held(deployment):
    config_map = deployment.find("ConfigMap", "ideaforge-ai-config").inputs
    assert config_map["metadata"]["namespace"] == "20890-ideaforge-ai-dev-58a50"
    assert config_map["data"] == app_files.config_map_data()


def test_a_changed_value_rolls_the_backend_that_reads_it_and_not_the_frontend(deployment):
    changed = run_program(dev(**{"app.configData.LOG_LEVEL": "debug"}))
    assert template_annotations(changed, "backend") != template_annotations(deployment, "backend")
    assert template_annotations(changed, "frontend") == template_annotations(deployment, "frontend")


def test_a_changed_value_rolls_the_frontend_that_reads_it_and_not_the_backend(deployment):
    changed = run_program(dev(**{"app.configData.JOB_POLL_INTERVAL_MS": "5000"}))
    assert template_annotations(changed, "frontend") != template_annotations(deployment, "frontend")
    assert template_annotations(changed, "backend") == template_annotations(deployment, "backend")


def test_a_value_no_workload_reads_changes_the_configmap_and_rolls_nothing(deployment):
    changed = run_program(dev(**{"app.configData.AGENT_MAX_CONCURRENT": "20"}))
    assert changed.find("ConfigMap", "ideaforge-ai-config").inputs["data"]["AGENT_MAX_CONCURRENT"] == "20"
    for name in ("backend", "frontend"):
        assert template_annotations(changed, name) == template_annotations(deployment, name)


def test_a_new_database_runs_the_migrations_again_before_the_backend_rolls_to_it(deployment):
    changed = run_program(dev(**{"app.configData.POSTGRES_HOST": "postgres-rds"}))
    assert job_template(changed, "db-migrations") != job_template(deployment, "db-migrations")
    assert job_template(changed, "wait-for-postgres") != job_template(deployment, "wait-for-postgres")


def test_an_app_setting_does_not_run_the_migrations_again(deployment):
    changed = run_program(dev(**{"app.configData.LOG_LEVEL": "debug"}))
    for name in ("db-migrations", "wait-for-postgres", "wait-for-redis"):
        assert job_template(changed, name) == job_template(deployment, name)


def test_the_configmap_exists_before_the_jobs_and_workloads_that_read_it(deployment):
    config_map = deployment.find("ConfigMap", "ideaforge-ai-config")
    for kind, name in (("Job", "wait-for-postgres"), ("Job", "wait-for-redis"), ("Job", "db-migrations"),
                       ("Deployment", "backend"), ("Deployment", "frontend")):
        assert deployment.depends_on(deployment.find(kind, name), config_map), name


def test_a_key_a_workload_cannot_start_without_fails_at_preview_with_the_config_set():
    result = run_program(dev(**{"app.configData": {k: v for k, v in app_files.config_map_data().items()
                                                   if k != "SESSION_EXPIRES_IN"}}))
    assert "app.configData.SESSION_EXPIRES_IN: is not set, and backend cannot start without it (ConfigMap " \
           "ideaforge-ai-config); fix with `pulumi config set --path app.configData.SESSION_EXPIRES_IN <value>`" \
           in str(result.error)
    assert result.resources == []


def test_a_key_the_jobs_read_is_named_with_them():
    result = run_program(dev(**{"app.configData": {k: v for k, v in app_files.config_map_data().items()
                                                   if k != "POSTGRES_PORT"}}))
    assert "app.configData.POSTGRES_PORT: is not set, and backend and the Jobs cannot start without it" \
           in str(result.error)


def test_a_secret_put_in_the_configmap_data_is_refused():
    result = run_program(dev(**{"app.configData.SESSION_SECRET": "s3cret"}))
    assert "app.configData.SESSION_SECRET: is a secret" in str(result.error)
    assert "pulumi config rm --path app.configData.SESSION_SECRET" in str(result.error)
    assert "s3cret" not in str(result.error)


def test_numbers_and_booleans_set_with_path_are_written_as_text():
    result = run_program(dev(**{"app.configData.V0_POLL_INTERVAL": 15, "app.configData.AI_GATEWAY_ENABLED": True}))
    data = result.find("ConfigMap", "ideaforge-ai-config").inputs["data"]
    assert (data["V0_POLL_INTERVAL"], data["AI_GATEWAY_ENABLED"]) == ("15", "true")


def test_the_take_over_adopts_the_configmap_make_eks_deploy_applied():
    result = run_program(dev(takeOver="true"))
    annotations = result.find("ConfigMap", "ideaforge-ai-config").inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/patchForce"] == "true"
