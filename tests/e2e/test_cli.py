"""The commands README and the workflows give, run as written through the real Pulumi CLI and
its Python language host (not deploy.py's in-process program).

- README: `pulumi preview --stack dev` and `pulumi up --stack dev`, on a checkout without
  `venv/` (Pulumi.yaml's `runtime.options.virtualenv`: the CLI builds it), `up` on a terminal
  where a person answers its prompt;
- the pull-request workflow: its virtualenv step, then the preview `pulumi/actions` runs for its
  `with:` (`pulumi preview --stack dev --diff`), whose output is the pull-request comment;
- the deploy workflow: its virtualenv step and its deploy step, as bash runs them.

`dev` becomes a stack of this module (Pulumi.e2e.yaml's settings in a namespace and database of
its own). README's preview, its `up`, the unchanged `up` and the pull request's preview share one
fresh checkout and stack, in that order, as a team's first deploys go (each still runs alone with
`-k`: the ones that need a deployed stack deploy it first); the deploy workflow has its own.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.e2e.conftest import ROOT

README = ROOT / "README.md"
WORKFLOWS = ROOT / ".github" / "workflows"
APP_MIGRATIONS = ["20251121000001_create_tenants.sql", "20251121000002_create_products.sql",
                  "20251124000003_api_keys.sql", "20251126000001_product_scores.sql"]
# What a reviewer must see a first deploy create: each link of the chain.
CHAIN = [("kubernetes:batch/v1:Job", "wait-for-postgres"), ("kubernetes:batch/v1:Job", "wait-for-redis"),
         ("kubernetes:batch/v1:Job", "db-migrations"), ("kubernetes:apps/v1:Deployment", "backend"),
         ("kubernetes:apps/v1:Deployment", "frontend")]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
_stacks = itertools.count(1)


def readme_command(start: str) -> list[str]:
    """The command line README gives that starts with `start` (its comment dropped)."""
    for line in README.read_text().splitlines():
        command = line.split("#", 1)[0].strip()
        if command.startswith(start):
            return shlex.split(command)
    raise AssertionError(f"README gives no command `{start}...`")


def workflow_step(workflow: str, name: str) -> dict:
    jobs = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"]
    return next(step for job in jobs.values() for step in job["steps"] if step.get("name") == name
                or str(step.get("uses", "")).startswith(name))


def pulumi_actions_command(step: dict) -> list[str]:
    """What `pulumi/actions` runs for this step: LocalWorkspace.selectStack(stack-name, work-dir)
    then stack.preview({diff}), the CLI's `pulumi preview --stack <stack-name> [--diff]`. Only the
    inputs this translation knows may be set, so a new one fails here instead of going untested."""
    inputs = step["with"]
    known = {"command", "stack-name", "work-dir", "diff", "comment-on-pr", "github-token"}
    assert set(inputs) <= known, f"pulumi/actions inputs this scenario does not run: {set(inputs) - known}"
    assert inputs["command"] == "preview" and inputs.get("work-dir", ".") == "."
    return ["pulumi", "preview", "--stack", inputs["stack-name"], *(["--diff"] if inputs.get("diff") else [])]


def on_stack(command: list[str], stack: str) -> list[str]:
    """The dev stack's command, for the scenario's stack."""
    at = command.index("--stack") + 1
    assert command[at] == "dev", command
    return [*command[:at], stack, *command[at + 1:]]


@dataclass
class Checkout:
    """A fresh checkout of the project (no venv/) with one stack of its own, initialised."""
    dir: Path
    stack: str
    env: dict

    def run(self, command: list[str], env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=self.dir, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout)

    def bash(self, script: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """A workflow's `run:`, as GitHub runs it (bash -e)."""
        return self.run(["bash", "-e", "-o", "pipefail", "-c", script], env=env)

    def on_terminal(self, command: list[str], answer: str, timeout: float = 900) -> tuple[int, str]:
        """Runs the command on a terminal, as a person does, and answers the CLI's confirmation
        prompt (`yes`/`no`/`details`, `no` preselected) with `answer`; returns exit code and screen."""
        keys = {"yes": b"\x1b[A\r", "no": b"\r"}[answer]  # up arrow to `yes`, Enter
        controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
        process = subprocess.Popen(command, cwd=self.dir, env={**self.env, "TERM": "xterm"}, stdin=terminal,
                                   stdout=terminal, stderr=terminal, start_new_session=True)
        os.close(terminal)
        screen, prompted_at = b"", None
        deadline = time.monotonic() + timeout
        try:
            while True:
                assert time.monotonic() < deadline, f"{' '.join(command)} did not finish:\n{clean(screen)[-4000:]}"
                if not select.select([controller], [], [], 0.2)[0]:
                    # The prompt reads keys once it has drawn its options and put the terminal in raw mode.
                    if prompted_at is not None and time.monotonic() - prompted_at > 1:
                        os.write(controller, keys)
                        prompted_at = -1.0
                    continue
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the CLI exited and closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
                if prompted_at is None and b"details" in screen.split(b"Do you want to perform this update?")[-1] \
                        and b"Do you want to perform this update?" in screen:
                    prompted_at = time.monotonic()
            return process.wait(timeout=60), clean(screen)
        finally:
            os.close(controller)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def clean(screen: bytes | str) -> str:
    text = screen.decode(errors="replace") if isinstance(screen, bytes) else screen
    return ANSI.sub("", text)


def planned(output: str) -> dict[tuple[str, str], str]:
    """(type, name) -> the operation the `--diff` display shows for each resource: its
    `<op> <type>: (<operation>)` line, then the resource's `[id=...]` (when it exists already)
    and `[urn=...]`."""
    steps, lines = {}, output.splitlines()
    for at, line in enumerate(lines):
        step = re.match(r"\s*(?:\+-|[-+~=<>])?\s*([\w:/.-]+): \(([\w-]+)\)$", line)
        if not step:
            continue
        for following in lines[at + 1:at + 3]:
            # A child's type is prefixed by its parents' types up to the last `$`.
            urn = re.match(r"\s*\[urn=urn:pulumi:[^:]+::[^:]+::(?:.*\$)?([\w:/.-]+)::([^\]]+)\]$", following)
            if urn and urn.group(1) == step.group(1):
                steps[(urn.group(1), urn.group(2))] = step.group(2)
    return steps


def shown_rows(output: str) -> dict[tuple[str, str], str]:
    """(type, name) -> the plan column of the table the plain display prints."""
    rows = {}
    for line in output.splitlines():
        row = re.match(r"\s*(?:\+-|[-+~])?\s+(?:[│├└─ ]*\s*)?([\w]+:[\w/.-]+:[\w.]+)\s+(\S+)\s+(create|update|replace|"
                       r"delete|create-replacement|delete-replaced|same)\b", line)
        if row:
            rows[(row.group(1), row.group(2))] = row.group(3)
    return rows


def pinned(requirements: Path) -> set[str]:
    """name==version of every pin in a requirements file and those it includes (-r)."""
    pins = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= pinned(requirements.parent / line[3:].strip())
        elif "==" in line:
            pins.add(normalized(line))
    return pins


def installed(checkout: Checkout) -> set[str]:
    freeze = checkout.run(["venv/bin/python", "-m", "pip", "freeze"])
    assert freeze.returncode == 0, freeze.stderr
    return {normalized(line) for line in freeze.stdout.split()}


def normalized(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def new_checkout(e2e, tmp_path: Path) -> Checkout:
    number = next(_stacks)
    stack = f"cli-{number}"
    e2e.use_stack(stack, namespace=f"ideaforge-cli-{number}", database=f"agentic_pm_cli_{number}")
    e2e.prepare_namespace()
    directory = tmp_path / "checkout"
    shutil.copytree(e2e.project, directory, ignore=shutil.ignore_patterns("venv", "Pulumi.cli-*.yaml"))
    shutil.copy(e2e.project / f"Pulumi.{stack}.yaml", directory)
    # The workflows' `python` (actions/setup-python's): the Python 3 this machine runs.
    python = tmp_path / "python-bin"
    python.mkdir()
    (python / "python").symlink_to(shutil.which("python3"))
    env = {**e2e.env, "PATH": f"{e2e.env['PATH']}:{python}"}
    env.pop("VIRTUAL_ENV", None)
    project = Checkout(directory, stack, env)
    init = project.run(["pulumi", "stack", "init", stack, "--secrets-provider", "passphrase"])
    assert init.returncode == 0, init.stderr
    return project


@pytest.fixture(scope="module")
def shared(e2e, tmp_path_factory) -> Checkout:
    """The checkout README's and the pull request's commands share."""
    project = new_checkout(e2e, tmp_path_factory.mktemp("cli"))
    yield project
    e2e.remove_namespaces()  # the node has room for one stack at the dev stack's requests


@pytest.fixture
def checkout(e2e, shared) -> Checkout:
    number = shared.stack.rsplit("-", 1)[1]  # back on the shared stack after one of its own
    e2e.stack, e2e.namespace, e2e.database_name = shared.stack, f"ideaforge-cli-{number}", f"agentic_pm_cli_{number}"
    return shared


def deployed(checkout: Checkout) -> None:
    """The stack deployed once, by the CLI (setup for scenarios that start from a deployed stack)."""
    up = checkout.run(["pulumi", "up", "--stack", checkout.stack, "--yes"])
    assert up.returncode == 0, (up.stdout + up.stderr)[-6000:]


def test_readme_preview_builds_the_virtualenv_and_lists_the_chain_it_would_create(e2e, checkout):
    assert not (checkout.dir / "venv").exists()  # the first command on this checkout

    preview = checkout.run(on_stack(readme_command("pulumi preview --stack dev"), checkout.stack))

    assert preview.returncode == 0, (preview.stdout + preview.stderr)[-6000:]
    assert installed(checkout) >= pinned(ROOT / "requirements.txt")
    rows = shown_rows(preview.stdout)
    assert {resource: rows.get(resource) for resource in CHAIN} == {resource: "create" for resource in CHAIN}, \
        preview.stdout
    assert e2e.batch.list_namespaced_job(e2e.namespace).items == []


def test_readme_up_asks_then_runs_the_chain_once_answered_yes(e2e, checkout):
    assert e2e.job("db-migrations") is None  # nothing deployed yet
    code, screen = checkout.on_terminal(on_stack(readme_command("pulumi up --stack dev"), checkout.stack), "yes")

    assert code == 0, screen[-6000:]
    assert "Do you want to perform this update?" in screen
    assert all(e2e.job(name).status.succeeded == 1 for name in ("wait-for-postgres", "wait-for-redis", "db-migrations"))
    assert e2e.applied() == APP_MIGRATIONS
    assert e2e.apps.read_namespaced_deployment("frontend", e2e.namespace).status.ready_replicas


def settled_pods(e2e, seconds: float = 180) -> set[str]:
    """The namespace's pods once every autoscaler has brought its Deployment to its minimum and
    those pods are ready: `pulumi up` returns when a Deployment's first pod is ready (with
    autoscaling on, the program leaves `replicas` to the autoscaler), and the scale-up that
    follows is not the unchanged `up`'s doing."""
    deadline = time.monotonic() + seconds
    while True:
        scalers = client.AutoscalingV2Api(e2e.apps.api_client).list_namespaced_horizontal_pod_autoscaler(
            e2e.namespace).items
        ready = {d.metadata.name: d.status.ready_replicas or 0
                 for d in e2e.apps.list_namespaced_deployment(e2e.namespace).items}
        short = {h.spec.scale_target_ref.name: ready.get(h.spec.scale_target_ref.name, 0) for h in scalers
                 if ready.get(h.spec.scale_target_ref.name, 0) < (h.spec.min_replicas or 1)}
        if not short:
            return {p.metadata.uid for p in e2e.core.list_namespaced_pod(e2e.namespace).items}
        assert time.monotonic() < deadline, f"Deployments below their autoscaler's minimum after {seconds:.0f}s: {short}"
        time.sleep(1)


def test_an_unchanged_cli_up_changes_nothing_and_runs_no_new_pod(e2e, checkout):
    deployed(checkout)
    pods = settled_pods(e2e)

    code, screen = checkout.on_terminal(on_stack(readme_command("pulumi up --stack dev"), checkout.stack), "yes")

    assert code == 0, screen[-6000:]
    summary = screen.split("Resources:")[-1]
    assert re.search(r"\d+ unchanged", summary) and not re.search(r"to create|created|updated|replaced", summary), \
        screen[-3000:]
    assert {p.metadata.uid for p in e2e.core.list_namespaced_pod(e2e.namespace).items} == pods


def test_pull_request_preview_of_a_new_backend_tag_shows_the_migration_job_replaced_and_the_backend_image(
        e2e, checkout):
    venv = workflow_step("pull-request.yml", "Build the program's virtualenv (pulumi/actions does not install dependencies)")
    built = checkout.bash(venv["run"])
    assert built.returncode == 0, built.stderr[-4000:]
    deployed(checkout)
    job = e2e.job("db-migrations").metadata.uid
    checkout.run(["pulumi", "config", "set", "--stack", checkout.stack, "backendImageTag", "e2e-2"])

    preview = checkout.run(on_stack(pulumi_actions_command(workflow_step("pull-request.yml", "pulumi/actions")),
                                    checkout.stack))

    assert preview.returncode == 0, (preview.stdout + preview.stderr)[-6000:]
    steps = planned(preview.stdout)
    assert steps.get(("kubernetes:batch/v1:Job", "db-migrations")) == "replace", preview.stdout
    assert steps.get(("kubernetes:apps/v1:Deployment", "backend")) == "update", preview.stdout
    assert ("kubernetes:apps/v1:Deployment", "frontend") not in steps, preview.stdout
    assert re.search(r'~ image\s*: "[^"]*/backend:e2e-1" => "[^"]*/backend:e2e-2"', preview.stdout), preview.stdout
    assert e2e.job("db-migrations").metadata.uid == job


def test_deploy_workflow_builds_its_virtualenv_and_deploys_with_deploy_py(e2e, tmp_path):
    checkout = new_checkout(e2e, tmp_path)
    for name in ("Build the program's virtualenv",):
        built = checkout.bash(workflow_step("deploy.yml", name)["run"])
        assert built.returncode == 0, built.stderr[-4000:]
    deploy = workflow_step("deploy.yml", "Deploy (readiness -> migrations -> backend -> frontend)")

    up = checkout.bash(deploy["run"], env={"STACK": checkout.stack, "BACKEND_TAG": "", "FRONTEND_TAG": ""})

    assert up.returncode == 0, (up.stdout + up.stderr)[-6000:]
    assert f"the migration Job ran and applied 4: {APP_MIGRATIONS[0]}" in up.stdout
    assert e2e.applied() == APP_MIGRATIONS
