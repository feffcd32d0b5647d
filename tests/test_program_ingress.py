"""The Ingress: the live nginx one of the dev stack (several paths per host), the ALB as an
option, and an await policy so that a controller that never reports an address does not stall
a deploy."""

import pytest

from tests import app_files
from tests.program import dev, run_program

NGINX = app_files.manifest("ingress-nginx.yaml", "Ingress", "ideaforge-ai-ingress-nginx")
ALB = app_files.manifest("ingress-alb.yaml", "Ingress", "ideaforge-ai-ingress-alb")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
CERTIFICATE = "alb.ingress.kubernetes.io/certificate-arn"


@pytest.fixture(scope="module")
def deployment():
    result = run_program(dev())
    assert result.error is None, result.error
    return result


def ingress_of(result, name="ideaforge-ai-ingress-nginx"):
    return result.find("Ingress", name)


def as_config(manifest: dict, **more) -> dict:
    """The `ingress` stack config that states this manifest."""
    return {
        "name": manifest["metadata"]["name"],
        "className": manifest["spec"]["ingressClassName"],
        "annotations": {k: v for k, v in manifest["metadata"]["annotations"].items() if k != CLASS_ANNOTATION},
        "rules": [{"host": rule["host"], "paths": [
            {"path": p["path"], "pathType": p["pathType"], "service": p["backend"]["service"]["name"]}
            for p in rule["http"]["paths"]]} for rule in manifest["spec"]["rules"]],
        **more,
    }


def test_the_dev_ingress_routes_every_host_and_path_as_the_live_nginx_ingress(deployment):
    spec = ingress_of(deployment).inputs["spec"]
    assert spec["rules"] == NGINX["spec"]["rules"]
    assert spec["ingressClassName"] == NGINX["spec"]["ingressClassName"]


def test_the_dev_ingress_carries_the_live_ingress_annotations_with_its_class_as_a_field(deployment):
    annotations = dict(ingress_of(deployment).inputs["metadata"]["annotations"])
    annotations.pop("pulumi.com/skipAwait")
    live = dict(NGINX["metadata"]["annotations"])
    assert live.pop(CLASS_ANNOTATION) == NGINX["spec"]["ingressClassName"]
    assert annotations == live


def test_the_dev_stack_manages_no_alb_ingress(deployment):
    assert [r.object_name for r in deployment.of_kind("Ingress")] == ["ideaforge-ai-ingress-nginx"]


def test_by_default_a_deploy_does_not_wait_for_the_ingress_address(deployment):
    ingress = ingress_of(deployment)
    assert ingress.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    assert ingress.custom_timeouts == {}


def test_an_await_setting_waits_that_long_for_the_address_and_no_longer():
    ingress = ingress_of(run_program(dev(**{"ingress.awaitAddressSeconds": 300})))
    assert "pulumi.com/skipAwait" not in ingress.inputs["metadata"]["annotations"]
    assert ingress.custom_timeouts == {"create": "300s", "update": "300s"}


def test_the_ingress_is_created_after_the_services_it_routes_to(deployment):
    ingress = ingress_of(deployment)
    for name in ("backend", "frontend"):
        assert deployment.depends_on(ingress, deployment.find("Service", name)), name


def test_the_alb_is_an_option_set_in_the_stack():
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d"
    result = run_program(dev(ingress=as_config(ALB, annotations={
        **as_config(ALB)["annotations"], CERTIFICATE: arn})))
    assert result.error is None, result.error
    ingress = ingress_of(result, "ideaforge-ai-ingress-alb").inputs
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["spec"]["rules"] == ALB["spec"]["rules"]
    assert ingress["metadata"]["annotations"][CERTIFICATE] == arn
    assert [r.object_name for r in result.of_kind("Ingress")] == ["ideaforge-ai-ingress-alb"]


def test_an_alb_with_the_manifests_placeholder_certificate_fails_at_preview():
    result = run_program(dev(ingress=as_config(ALB)))
    assert f"ingress.annotations: {CERTIFICATE} is the placeholder" in str(result.error)
    assert f"""pulumi config set --path 'ingress.annotations["{CERTIFICATE}"]' arn:aws:acm:""" in str(result.error)


def test_a_class_annotation_beside_a_class_name_fails_at_preview():
    result = run_program(dev(**{"ingress.annotations": {CLASS_ANNOTATION: "nginx"}}))
    assert f"""pulumi config rm --path 'ingress.annotations["{CLASS_ANNOTATION}"]'""" in str(result.error)


def test_tls_covers_every_host_of_the_rules():
    spec = ingress_of(run_program(dev(**{"ingress.tlsSecret": "ideaforge-ai-tls"}))).inputs["spec"]
    assert spec["tls"] == [{"hosts": [r["host"] for r in NGINX["spec"]["rules"]], "secretName": "ideaforge-ai-tls"}]


def test_a_path_to_a_service_the_stack_does_not_have_fails_at_preview():
    rules = as_config(NGINX)["rules"]
    rules[1]["paths"][0]["service"] = "api"
    result = run_program(dev(**{"ingress.rules": rules}))
    assert "ingress.rules[1].paths[0].service: 'api' is not backend or frontend" in str(result.error)


def test_the_earlier_host_fields_fail_with_what_replaced_them():
    result = run_program(dev(**{"ingress.frontendHost": "app.example.com"}))
    assert "ingress.frontendHost: replaced by ingress.rules" in str(result.error)
    assert "pulumi config rm --path ingress.frontendHost" in str(result.error)
