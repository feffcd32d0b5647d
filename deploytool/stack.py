"""The Pulumi side: open the stack through the Automation API, run it, read its state."""

from __future__ import annotations

import json
import runpy
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from deploytool.errors import DeployError, TransientError, UsageError

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "ideaforge-ai"
ROOT_TYPE = "pulumi:pulumi:Stack"
# How Pulumi's state marks a secret value (sdk/go/common/resource/sig).
SECRET_SIGNATURE, SECRET_KIND = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
INSTALL_HINT = (
    "the Pulumi CLI is not installed or not on PATH; install it with "
    "`curl -fsSL https://get.pulumi.com | sh` (or `brew install pulumi`), then `pulumi login`"
)


@dataclass
class Outcome:
    changes: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    previous_outputs: dict = field(default_factory=dict)


def require_cli(which: Callable[[str], Optional[str]] = shutil.which) -> None:
    if which("pulumi") is None:
        raise UsageError(INSTALL_HINT)


def open_stack(name: str, work_dir: Path = PROJECT_DIR):
    """The stack, with the program run in this process (the Automation API's inline program):
    __main__.py of `work_dir`, its Pulumi.yaml and Pulumi.<stack>.yaml, as `pulumi up` there
    would use them. In process, the program needs no language plugin besides this Python."""
    from pulumi import automation as auto

    def program() -> None:
        runpy.run_path(str(work_dir / "__main__.py"), run_name="__main__")

    try:
        return auto.select_stack(stack_name=name, project_name=PROJECT, program=program,
                                 opts=auto.LocalWorkspaceOptions(work_dir=str(work_dir)))
    except auto.StackNotFoundError:
        raise UsageError(
            f"stack {name!r} does not exist in this backend; create it with `pulumi stack init {name}` "
            "(or check `pulumi whoami` and the backend you are logged in to)"
        ) from None


def run(stack, action: str, refresh: bool, on_output: Callable[[str], None], config_file: Optional[Path] = None,
        targets: Optional[list[str]] = None, replace: Optional[list[str]] = None,
        on_event: Optional[Callable] = None, before: Optional[State] = None) -> Outcome:
    """`pulumi preview` or `pulumi up`; `config_file`: a copy of the stack file to use instead
    of it (stack_file.changed_copy); `targets`/`replace`: URNs (globs allowed in targets);
    `before`: the state as read just before, when the caller has it (one CLI call less)."""
    from pulumi import automation as auto

    extra = {"config_file": str(config_file)} if config_file else {}
    try:
        if action == "up" and before is None:
            before = state(stack)
        previous = before.outputs if action == "up" else {}
        if action == "preview":
            # `refresh` as part of the preview (`pulumi preview --refresh`): the state is not written.
            result = stack.preview(on_output=on_output, color="never", diff=True, on_event=on_event,
                                   **({"refresh": True} if refresh else {}), **extra)
            return Outcome(changes=dict(result.change_summary or {}))
        if refresh:
            stack.refresh(on_output=on_output, color="never", **extra)
        if targets:
            extra.update(target=targets, replace=replace or None)
        result = stack.up(on_output=on_output, color="never", show_secrets=False, **extra)
        return Outcome(changes=dict(result.summary.resource_changes or {}), outputs=_plain(result.outputs),
                       previous_outputs=previous)
    except auto.ConcurrentUpdateError:
        raise TransientError(
            f"stack {stack.name} is locked by another update; wait for it to finish. If no update is running "
            "(a killed CI job), release the lock with `pulumi cancel`"
        ) from None
    except auto.CommandError as exc:
        raise DeployError(f"pulumi {action} failed:\n{_tail(str(exc))}") from None


def destroy(stack, on_output: Callable[[str], None]) -> None:
    from pulumi import automation as auto

    try:
        stack.destroy(on_output=on_output, color="never")
    except auto.ConcurrentUpdateError:
        raise TransientError(f"stack {stack.name} is locked by another update; wait for it to finish") from None
    except auto.CommandError as exc:
        raise DeployError(f"pulumi destroy failed:\n{_tail(str(exc))}") from None


@dataclass
class State:
    """The stack's state as exported: its resources (type, urn, id, inputs, retainOnDelete, ...)
    and the outputs its last update recorded."""

    resources: list[dict]
    outputs: dict


def state(stack) -> State:
    """The Automation API exports with `--show-secrets`: a secret in it is an envelope holding
    its value as JSON text."""
    from pulumi import automation as auto

    try:
        deployment = stack.export_stack().deployment or {}
    except auto.CommandError as exc:
        raise DeployError(f"pulumi stack export (reading the stack's state) failed:\n{_tail(str(exc))}") from None
    everything = deployment.get("resources") or []
    root = next((r for r in everything if r.get("type") == ROOT_TYPE), {})
    outputs = {key: _revealed(value) for key, value in (root.get("outputs") or {}).items()}
    return State([r for r in everything if r.get("type") != ROOT_TYPE], outputs)


def _revealed(value):
    if isinstance(value, dict) and value.get(SECRET_SIGNATURE) == SECRET_KIND and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


def job_template_from_events(events: list) -> Optional[dict]:
    """The migration Job's inputs as a preview computed them, from its engine events."""
    for event in events:
        pre = getattr(event, "resource_pre_event", None)
        new = pre.metadata.new if pre is not None and pre.metadata is not None else None
        inputs = (new.inputs or {}) if new is not None else {}
        if new is not None and new.type == "kubernetes:batch/v1:Job" and \
                (inputs.get("metadata") or {}).get("name") == "db-migrations":
            return dict(inputs)
    return None


def _plain(outputs) -> dict:
    return {key: getattr(value, "value", value) for key, value in (outputs or {}).items()}


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
