"""What serves the app outlives the stack's hold on it (destroy, a dropped or renamed resource),
in stacks that deploy into a namespace they do not create; the take-over's field manager."""

import pytest

from components.security import TAKE_OVER_MANAGER
from tests.program import LOCAL_CONFIG, dev, run_program

LIVE_APP = (("Deployment", "backend"), ("Deployment", "frontend"), ("Service", "backend"), ("Service", "frontend"),
            ("HorizontalPodAutoscaler", "backend-hpa"), ("HorizontalPodAutoscaler", "frontend-hpa"),
            ("Ingress", "ideaforge-ai-ingress-nginx"))


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


def test_the_dev_stack_keeps_its_workloads_services_autoscalers_and_ingress_on_delete(deployment):
    assert {(kind, name): deployment.find(kind, name).retain_on_delete for kind, name in LIVE_APP} == \
        {ref: True for ref in LIVE_APP}
    assert deployment.find("ConfigMap", "ideaforge-ai-config").retain_on_delete  # the app's, written by the stack


def test_the_dev_stack_deletes_what_is_its_own_jobs_and_the_runner(deployment):
    owned = [r for r in deployment.resources if r.custom and r.kind in ("Job", "ConfigMap")
             and r.object_name != "ideaforge-ai-config"]
    assert {r.object_name for r in owned} >= {"db-migrations", "wait-for-postgres", "db-migrations-runner"}
    assert [r.object_name for r in owned if r.retain_on_delete] == []


def test_an_app_configmap_the_stack_makes_is_kept_too():
    # Any ConfigMap named as the app's (app.configMap), whichever component makes it.
    from components import retention

    settings = type("S", (), {"app": type("A", (), {"config_map": "ideaforge-ai-config"})()})()
    assert retention._serves_the_app("kubernetes:core/v1:ConfigMap", {"metadata": {"name": "ideaforge-ai-config"}},
                                     settings)
    assert not retention._serves_the_app("kubernetes:core/v1:ConfigMap", {"metadata": {"name": "db-migrations-runner"}},
                                         settings)


def test_a_local_stack_deletes_everything_on_destroy():
    result = run_program(LOCAL_CONFIG, stack="local")
    assert result.error is None, result.error
    assert [r.object_name for r in result.resources if r.custom and r.retain_on_delete] == ["ideaforge-local"]


def test_the_take_over_applies_as_the_manager_deploy_py_hands_kubectls_fields_to():
    result = run_program(dev(takeOver="true"))
    for kind, name in LIVE_APP:
        annotations = result.find(kind, name).inputs["metadata"]["annotations"]
        assert annotations["pulumi.com/patchFieldManager"] == TAKE_OVER_MANAGER
        assert annotations["pulumi.com/patchForce"] == "true"
