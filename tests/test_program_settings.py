"""Stack configuration: Pulumi.yaml's defaults, per-workload objects, and errors at preview."""

import json

import pytest
import yaml

from components import settings as stack_settings
from tests.program import ROOT, dev, run_program


class Source:
    """What pulumi.Config gives the program: strings, objects as JSON."""

    def __init__(self, values: dict, secrets: dict | None = None):
        self.values, self.secrets = values, secrets or {}

    def get(self, key):
        value = self.values.get(key)
        return value if value is None or isinstance(value, str) else json.dumps(value)

    def get_secret(self, key):
        return self.secrets.get(key)


def load(**overrides):
    return stack_settings.load(Source(dev(**overrides)))


def problems(**overrides) -> str:
    with pytest.raises(stack_settings.SettingsError) as raised:
        load(**overrides)
    return str(raised.value)


def test_the_dev_stack_gets_the_app_manifests_capacity_from_pulumi_yaml_defaults():
    s = load()
    assert (s.backend.autoscaling.min, s.backend.autoscaling.max) == (5, 20)
    assert (s.backend.autoscaling.cpu_utilization, s.backend.autoscaling.memory_utilization) == (60, 75)
    assert s.backend.requests == {"cpu": "2", "memory": "2Gi"} and s.backend.limits == {"cpu": "4", "memory": "4Gi"}
    assert (s.backend.readiness.timeout_seconds, s.backend.liveness.initial_delay_seconds,
            s.backend.liveness.period_seconds, s.backend.liveness.timeout_seconds) == (5, 40, 30, 10)
    assert (s.frontend.autoscaling.min, s.frontend.autoscaling.max) == (3, 10)
    assert s.frontend.requests == {"cpu": "100m", "memory": "256Mi"}
    assert s.frontend.limits == {"cpu": "500m", "memory": "512Mi"}


def test_defaults_are_read_from_pulumi_yaml_and_nowhere_else():
    schema = stack_settings.project_schema()
    schema["backend"]["default"]["autoscaling"]["max"] = 33
    assert stack_settings.load(Source(dev()), schema).backend.autoscaling.max == 33


def test_one_field_set_with_path_keeps_the_other_defaults():
    s = load(**{"backend.autoscaling.max": 30})
    assert (s.backend.autoscaling.min, s.backend.autoscaling.max) == (5, 30)
    assert s.backend.requests == {"cpu": "2", "memory": "2Gi"}


def test_the_database_identity_is_left_to_the_app_configmap_unless_set():
    assert (load().database.host, load().database.user, load().database.name) == (None, None, None)
    assert load(**{"database.host": "db.internal"}).database.host == "db.internal"


def test_a_misspelt_field_is_an_error_with_the_likely_name():
    text = problems(**{"backend.autoscalling.max": 3})
    assert "backend.autoscalling: is not a setting (did you mean backend.autoscaling?)" in text
    assert "pulumi config rm --path backend.autoscalling" in text


def test_a_key_of_the_flat_layout_fails_with_the_commands_that_move_it():
    text = problems(backendReplicas="4", migrationsDir="db/migrations")
    assert "backendReplicas: this key moved to backend.replicas; run `pulumi config rm backendReplicas && " \
           "pulumi config set --path backend.replicas 4`" in text
    assert "pulumi config set --path migrations.dirs[0] db/migrations && " \
           "pulumi config set --path migrations.source configmap" in text


def test_every_problem_is_reported_at_once_with_the_command_that_fixes_it():
    text = problems(namespace="Bad_NS", backendImageTag="", **{"backend.autoscaling.max": 2,
                                                                "migrations.lockTimeout": "soon"})
    assert "nothing was changed" in text
    assert "namespace: 'Bad_NS' is not a valid namespace name" in text
    assert "backendImageTag: is not set; fix with `pulumi config set backendImageTag 672425b`" in text
    assert "backend.autoscaling.max: 2 is below backend.autoscaling.min (5)" in text
    assert "migrations.lockTimeout: 'soon' is not a PostgreSQL duration" in text


@pytest.mark.parametrize("field, value, message", [
    ("backend.port", "http", "'http' is not a whole number"),
    ("backend.autoscaling.enabled", "maybe", "is not true or false"),
    ("frontend.resources.limits.memory", "lots", "is not a memory quantity"),
    ("migrations.source", "git", "is not image or configmap"),
    ("backend.security.capabilities.add", ["net_admin"], "is not a capability name"),
    ("ingress.awaitAddressSeconds", "soon", "is not a whole number"),
    ("backend.initWaits.redis", "a while", "is not forever, off or a number of seconds"),
])
def test_a_wrong_value_in_a_workload_object_is_named_by_its_path(field, value, message):
    text = problems(**{field: value})
    assert f"{field}: " in text and message in text and f"pulumi config set --path {field}" in text


def test_without_an_app_configmap_the_database_must_be_set_in_full():
    text = problems(**{"app.configMap": ""})
    for field in ("host", "port", "user", "name"):
        assert f"database.{field}: is not set, and there is no app ConfigMap" in text


def test_a_bad_stack_fails_at_preview_before_anything_is_registered():
    result = run_program(dev(**{"backend.replicas": -1}), preview=True)
    assert isinstance(result.error, stack_settings.SettingsError)
    assert result.resources == []


def test_pulumi_yaml_declares_every_top_level_key_the_program_reads():
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    objects = {k for k, v in schema.items() if v["type"] == "object"}
    assert objects == {"app", "database", "redis", "backend", "frontend", "migrations", "readiness", "ingress",
                       "seed", "local"}
    assert all(isinstance(schema[k]["default"], dict) for k in objects)
    assert {k for k, v in schema.items() if "default" not in v} == {"namespace", "backendImageTag", "frontendImageTag"}
