"""The Pulumi side: open the stack through the Automation API, write the tags, run it."""

from __future__ import annotations

import runpy
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from deploytool.errors import DeployError, TransientError, UsageError

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "ideaforge-ai"
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


def write_tags(stack, backend_tag: Optional[str], frontend_tag: Optional[str]) -> dict[str, str]:
    """Write the image tags to the stack config, as `pulumi config set` would."""
    from pulumi.automation import ConfigValue

    written = {}
    for key, value in (("backendImageTag", backend_tag), ("frontendImageTag", frontend_tag)):
        if value:
            stack.set_config(key, ConfigValue(value=value))
            written[key] = value
    return written


def run(stack, action: str, refresh: bool, on_output: Callable[[str], None]) -> Outcome:
    from pulumi import automation as auto

    try:
        previous = _plain(stack.outputs()) if action == "up" else {}
        if refresh:
            stack.refresh(on_output=on_output, color="never")
        if action == "preview":
            result = stack.preview(on_output=on_output, color="never", diff=True)
            return Outcome(changes=dict(result.change_summary or {}))
        result = stack.up(on_output=on_output, color="never", show_secrets=False)
        return Outcome(changes=dict(result.summary.resource_changes or {}), outputs=_plain(result.outputs),
                       previous_outputs=previous)
    except auto.ConcurrentUpdateError:
        raise TransientError(
            f"stack {stack.name} is locked by another update; wait for it to finish. If no update is running "
            "(a killed CI job), release the lock with `pulumi cancel`"
        ) from None
    except auto.CommandError as exc:
        raise DeployError(f"pulumi {action} failed:\n{_tail(str(exc))}") from None


def manages_resources(stack) -> bool:
    """Whether the stack's state holds anything but itself: False before its first `up`."""
    deployment = stack.export_stack().deployment or {}
    return any(r.get("type") != "pulumi:pulumi:Stack" for r in deployment.get("resources") or [])


def set_take_over(stack, on: bool) -> None:
    from pulumi.automation import ConfigValue

    if on:
        stack.set_config("takeOver", ConfigValue(value="true"))
    else:
        stack.remove_config("takeOver")


def _plain(outputs) -> dict:
    return {key: getattr(value, "value", value) for key, value in (outputs or {}).items()}


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
