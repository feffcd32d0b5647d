"""Stack configuration: the schema in Pulumi.yaml, validation at preview, secrets."""

import json

import pytest
import yaml

from components.settings import KEYS, OPTIONAL_KEYS
from tests.program import ROOT, dev, run_program


def test_pulumi_yaml_declares_exactly_the_keys_types_and_defaults_the_program_uses():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(KEYS)
    for key, (kind, default) in KEYS.items():
        assert declared[key]["type"] == kind, key
        assert declared[key].get("default") == default, key
        assert declared[key]["description"], key
    assert not set(OPTIONAL_KEYS) & set(declared)


def test_old_makefile_variables_map_to_config_keys():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert "EKS_NAMESPACE" in declared["namespace"]["description"]
    assert "BACKEND_IMAGE_TAG" in declared["backendImageTag"]["description"]
    assert "FRONTEND_IMAGE_TAG" in declared["frontendImageTag"]["description"]


def test_pulumi_yaml_builds_a_virtualenv_from_the_pinned_requirements():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    pins = [line for f in ("requirements.txt", "requirements-runner.txt") for line in (ROOT / f).read_text().splitlines() if line and not line.startswith(("#", "-r"))]
    assert pins and all("==" in line for line in pins)


def failure(config, **secrets):
    result = run_program(config, secrets=secrets or None)
    assert result.error is not None, "expected the program to refuse this configuration"
    assert [r for r in result.resources if r.custom] == [], "no resource may be registered"
    return str(result.error)


def test_missing_backend_tag_fails_with_the_command_that_fixes_it():
    message = failure(dev(backendImageTag=None))
    assert "backendImageTag: is not set; fix with `pulumi config set backendImageTag 672425b`" in message


def test_malformed_image_tag_is_refused():
    message = failure(dev(frontendImageTag="latest:oops"))
    assert "frontendImageTag: 'latest:oops' is not a valid image tag" in message


def test_namespace_must_be_a_dns_label():
    message = failure(dev(namespace="Team_Dev"))
    assert "namespace: 'Team_Dev' is not a valid namespace name (DNS-1123 label" in message


def test_kubernetes_names_are_checked_before_any_resource_is_made():
    message = failure(dev(imagePullSecret="GHCR Secret"))
    assert "imagePullSecret: 'GHCR Secret' is not a valid Kubernetes name" in message


def test_bad_numbers_quantities_and_booleans_are_refused():
    message = failure(dev(backendReplicas="two", frontendCpuLimit="lots", createNamespace="yes", postgresPort="70000"))
    assert "backendReplicas: 'two' is not a whole number" in message
    assert "frontendCpuLimit: 'lots' is not a CPU quantity" in message
    assert "createNamespace: 'yes' is not true or false" in message
    assert "postgresPort: 70000 is outside 1..65535" in message


def test_every_problem_is_reported_at_once():
    message = failure(dev(backendImageTag=None, frontendImageTag=None, namespace="BAD"))
    assert message.count("\n  - ") == 3


def test_no_password_source_at_all_is_refused():
    message = failure(dev(appSecret=""))
    assert "appSecret: is empty and postgresPassword is not set" in message


def test_broken_migration_file_fails_at_preview_naming_the_file(tmp_path):
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE a (id int);\n")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (id int);\nCOMMIT;\n")
    message = failure(dev(migrationsDir=str(tmp_path)))
    assert "would fail in the cluster" in message
    assert "002_bad.sql:2: COMMIT is transaction control" in message


PASSWORD = "Sup3r-S3cret!pw"


@pytest.fixture(scope="module")
def with_password():
    result = run_program(dev(), secrets={"postgresPassword": PASSWORD})
    assert result.error is None, result.error
    return result


def test_password_given_as_pulumi_secret_lands_only_in_a_secret_marked_secret(with_password):
    secret = with_password.find("Secret", "ideaforge-ai-credentials")
    wire = secret.raw_inputs["stringData"]
    assert wire["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    holders = [r.name for r in with_password.resources if PASSWORD in json.dumps(r.inputs)]
    assert holders == ["ideaforge-ai-credentials"]
    assert PASSWORD not in json.dumps(with_password.outputs)


def test_workloads_read_the_password_from_the_created_secret(with_password):
    for kind, name in (("Job", "db-migrations"), ("Deployment", "backend")):
        c = with_password.find(kind, name).inputs["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in c["env"]}
        assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "ideaforge-ai-credentials", "key": "POSTGRES_PASSWORD"}


def test_existing_secret_mode_creates_no_secret():
    result = run_program(dev())
    assert result.of_kind("Secret") == []


def test_redis_url_with_credentials_is_kept_in_the_secret():
    url = "redis://:r3dis-pw@redis:6379/0"
    result = run_program(dev(), secrets={"redisUrl": url})
    assert result.error is None, result.error
    holders = [r.name for r in result.resources if "r3dis-pw" in json.dumps(r.inputs)]
    assert holders == ["ideaforge-ai-credentials"]
    job_env = {e["name"]: e for e in result.find("Job", "db-migrations").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert job_env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "REDIS_URL"


def test_namespace_is_created_only_when_asked():
    assert run_program(dev()).of_kind("Namespace") == []
    created = run_program(dev(createNamespace="true"))
    namespace = created.find("Namespace", "20890-ideaforge-ai-dev-58a50")
    assert created.depends_on(created.find("Job", "db-migrations"), namespace)
