"""The two cluster credentials (.github/access): the deploy one manages what the dev stack deploys;
the preview one reads it, except Secrets, and may write only as dry runs. Validated against the
Kubernetes schema, and against the kinds the program really makes."""

import kubernetes_validate
import pytest
import yaml

from tests.program import DEV_CONFIG, KUBERNETES_VERSION, ROOT, dev, run_program

ACCESS = ROOT / ".github" / "access"


def documents(name):
    return [d for d in yaml.safe_load_all((ACCESS / name).read_text()) if d]


def role(name):
    return next(d for d in documents(name) if d["kind"] == "Role")


def allowed(rules, verb):
    return {(group, resource) for rule in rules if verb in rule["verbs"]
            for group in rule["apiGroups"] for resource in rule["resources"]}


@pytest.fixture(scope="module")
def managed():
    """(apiGroup, resource) of every object the dev stack makes."""
    result = run_program(dev())
    assert result.error is None, result.error
    kinds = {(m["apiVersion"].rpartition("/")[0], m["kind"]) for m in result.manifests()}
    plural = {"Deployment": "deployments", "Service": "services", "HorizontalPodAutoscaler": "horizontalpodautoscalers",
              "Ingress": "ingresses", "ConfigMap": "configmaps", "Job": "jobs", "Secret": "secrets"}
    return {(group, plural[kind]) for group, kind in kinds}


@pytest.mark.parametrize("name", ["preview.yaml", "deploy.yaml"])
def test_the_access_manifests_are_valid_kubernetes_objects_in_the_dev_namespace(name):
    for document in documents(name):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        if document["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            assert document["metadata"]["namespace"] == DEV_CONFIG["namespace"]


def test_the_deploy_credential_can_manage_everything_the_dev_stack_makes(managed):
    rules = role("deploy.yaml")["rules"]
    for verb in ("get", "create", "patch", "delete"):
        assert managed <= allowed(rules, verb), verb


def test_the_preview_credential_reads_and_dry_runs_what_the_dev_stack_makes(managed):
    rules = role("preview.yaml")["rules"]
    assert managed <= allowed(rules, "get") and managed <= allowed(rules, "patch")


def test_the_preview_credential_never_reads_secrets_nor_deletes():
    rules = role("preview.yaml")["rules"]
    assert not any("secrets" in rule["resources"] for rule in rules)
    assert not any(verb in rule["verbs"] for rule in rules for verb in ("delete", "deletecollection", "update", "*"))


def test_every_write_of_the_preview_credential_must_be_a_dry_run():
    policy = next(d for d in documents("preview.yaml") if d["kind"] == "ValidatingAdmissionPolicy")
    binding = next(d for d in documents("preview.yaml") if d["kind"] == "ValidatingAdmissionPolicyBinding")
    account = next(d for d in documents("preview.yaml") if d["kind"] == "ServiceAccount")["metadata"]["name"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] and binding["spec"]["validationActions"] == ["Deny"]
    assert [v["expression"] for v in policy["spec"]["validations"]] == ["request.dryRun == true"]
    assert f"':{account}'" in policy["spec"]["matchConditions"][0]["expression"]
    rule, = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["*"] and set(rule["operations"]) >= {"CREATE", "UPDATE", "DELETE"}
