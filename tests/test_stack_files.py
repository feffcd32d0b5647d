"""The checked-in stack files say what runs: the dev stack's tags are the ones the live namespace
runs (the app's own k8s/eks manifests), and it names its cluster."""

import re

import yaml

from tests.program import ROOT

APP = ROOT.parent / "shared" / "ideaforge-ai"


def live_tag(manifest: str, image: str) -> str:
    """The tag of `image` in one of the app's k8s/eks manifests, as `make eks-deploy` applied it."""
    for document in yaml.safe_load_all((APP / "k8s" / "eks" / manifest).read_text()):
        if document and document.get("kind") == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                match = re.fullmatch(rf"ghcr\.io/soumantrivedi/ideaforge-ai/{image}:(\S+)", container["image"])
                if match:
                    return match.group(1)
    raise AssertionError(f"no {image} image in {manifest}")


def dev_config() -> dict:
    return yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]


def test_the_dev_stack_deploys_the_tags_the_live_namespace_runs():
    config = dev_config()
    assert config["ideaforge-ai:backendImageTag"] == live_tag("backend.yaml", "backend")
    assert config["ideaforge-ai:frontendImageTag"] == live_tag("frontend.yaml", "frontend")


def test_the_dev_stack_names_the_cluster_it_deploys_to():
    assert dev_config()["kubernetes:context"]
