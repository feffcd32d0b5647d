"""Each workload's environment: exactly the variables the app's manifests gave it, from the same
ConfigMap or Secret, with the same optional flags, checked at preview against the live Secret."""

import pytest

from tests import app_files
from tests.program import dev, live_app_secret, run_program

NS = "20890-ideaforge-ai-dev-58a50"
SECRET = f"{NS}/ideaforge-ai-secrets"


def reading(**overrides):
    """The dev stack with readSecrets on: the program reads the live Secret at preview (dev as
    shipped does not; deploy.py checks the keys there: tests/test_deploy_preflight.py)."""
    return dev(readSecrets="true", **overrides)


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def reading_deployment():
    result = run_program(reading())
    assert result.error is None, result.error
    return result


def container(result, name):
    return result.find("Deployment", name).inputs["spec"]["template"]["spec"]["containers"][0]


def env_of(result, name):
    return {e["name"]: e for e in container(result, name)["env"]}


def secret_without(*keys, version="1"):
    state = live_app_secret(reading(), version)
    for key in keys:
        del state[SECRET]["data"][key]
    return state


@pytest.mark.parametrize("name", ["backend", "frontend"])
def test_each_workload_gets_exactly_the_variables_of_its_app_manifest(deployment, name):
    assert container(deployment, name)["env"] == app_files.container_env(name)


@pytest.mark.parametrize("name", ["backend", "frontend"])
def test_no_workload_takes_the_whole_configmap_or_secret(deployment, name):
    assert "envFrom" not in container(deployment, name)


def test_a_required_key_missing_from_the_live_secret_stops_the_preview():
    result = run_program(reading(), existing=secret_without("SESSION_SECRET"))
    assert f"Secret {SECRET} has no SESSION_SECRET (backend)" in str(result.error)
    # Nothing that reads the Secret or the app's settings is registered after a failed check.
    assert [(r.kind, r.object_name) for r in result.resources if r.kind in ("Job", "Deployment", "Ingress")
            or r.object_name == "ideaforge-ai-config"] == []


def test_an_optional_key_missing_from_the_live_secret_does_not_stop_the_preview():
    result = run_program(reading(), existing=secret_without("GITHUB_TOKEN", "VITE_OKTA_ISSUER"))
    assert result.error is None, result.error


def test_the_secret_check_names_keys_and_never_their_values():
    existing = secret_without("API_KEY_ENCRYPTION_KEY")
    existing[SECRET]["data"]["SESSION_SECRET"] = "c2Vzc2lvbi1zZWNyZXQtdmFsdWU="  # session-secret-value
    text = str(run_program(reading(), existing=existing).error)
    assert "API_KEY_ENCRYPTION_KEY" in text
    assert "c2Vzc2lvbi1zZWNyZXQtdmFsdWU=" not in text and "session-secret-value" not in text


def test_a_stack_adds_a_variable_to_a_workloads_list_and_keeps_the_others():
    result = run_program(dev(**{"backend.env.OPENAI_API_KEYS": "secret optional"}))
    env = container(result, "backend")["env"]
    assert env[:-1] == app_files.container_env("backend")
    assert env[-1] == {"name": "OPENAI_API_KEYS", "valueFrom": {"secretKeyRef": {
        "name": "ideaforge-ai-secrets", "key": "OPENAI_API_KEYS", "optional": True}}}


def test_a_variable_with_an_unknown_source_fails_at_preview_with_the_fix():
    result = run_program(dev(**{"frontend.env.VITE_OKTA_ISSUER": "vault"}))
    assert "frontend.env.VITE_OKTA_ISSUER: 'vault' is not configMap or secret" in str(result.error)
    assert 'pulumi config set --path frontend.env.VITE_OKTA_ISSUER "secret optional"' in str(result.error)


def test_a_non_default_password_key_is_what_the_backend_reads_as_postgres_password():
    existing = live_app_secret(dev())
    existing[SECRET]["data"]["DB_PASSWORD"] = "eA=="
    result = run_program(dev(**{"database.passwordKey": "DB_PASSWORD"}), existing=existing)
    assert env_of(result, "backend")["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "ideaforge-ai-secrets", "key": "DB_PASSWORD"}


def test_a_non_default_password_key_is_what_the_migration_job_reads():
    existing = live_app_secret(dev())
    existing[SECRET]["data"]["DB_PASSWORD"] = "eA=="
    result = run_program(dev(**{"database.passwordKey": "DB_PASSWORD"}), existing=existing)
    job = result.find("Job", "db-migrations").inputs["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e for e in job["env"]}["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "ideaforge-ai-secrets", "key": "DB_PASSWORD"}


def test_a_non_default_password_key_must_be_in_the_live_secret():
    result = run_program(reading(**{"database.passwordKey": "DB_PASSWORD"}))
    assert "has no DB_PASSWORD (backend and the Jobs)" in str(result.error)


def test_a_database_value_set_in_the_stack_reaches_the_backend_in_place_of_the_configmaps():
    result = run_program(dev(**{"database.host": "db.internal"}))
    assert env_of(result, "backend")["POSTGRES_HOST"] == {"name": "POSTGRES_HOST", "value": "db.internal"}


def test_a_change_of_the_live_secret_rolls_the_workloads_that_read_it_at_the_next_up(reading_deployment):
    deployment = reading_deployment
    changed = run_program(reading(), existing=live_app_secret(reading(), resource_version="2"))
    for name in ("backend", "frontend"):
        before = deployment.find("Deployment", name).inputs["spec"]["template"]["metadata"]["annotations"]
        after = changed.find("Deployment", name).inputs["spec"]["template"]["metadata"]["annotations"]
        assert (before["ideaforge.ai/secret-version"], after["ideaforge.ai/secret-version"]) == ("1", "2")


def test_a_change_of_the_live_secret_does_not_run_the_jobs_again(reading_deployment):
    deployment = reading_deployment
    changed = run_program(reading(), existing=live_app_secret(reading(), resource_version="2"))
    for name in ("db-migrations", "wait-for-postgres", "wait-for-redis"):
        assert changed.find("Job", name).inputs == deployment.find("Job", name).inputs
