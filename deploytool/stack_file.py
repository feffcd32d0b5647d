"""The stack file, Pulumi.<stack>.yaml: read its values, set one, or make a copy with changes.

What runs must be what the repository says, so every setting a deploy uses ends in this file
(and from there in a commit), and a preview that tries a setting leaves it untouched: it runs
on a copy (`pulumi preview --config-file`). Values are set by editing their line, so the
file's comments and layout stay as they are; secrets (`secure:` values) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Optional

import yaml

from deploytool.errors import UsageError

PROJECT = "ideaforge-ai"
CONTEXT_KEY = "kubernetes:context"
_TOP_KEY = re.compile(r"^  (?P<key>[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+):(?P<rest>.*)$")


def path_of(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def values(path: Path) -> dict:
    """The stack's config as written: key (with its namespace, `ideaforge-ai:namespace`) -> value."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return dict(data.get("config") or {})


def project_values(path: Path) -> dict:
    """This project's keys without their prefix, as the program's settings read them."""
    prefix = f"{PROJECT}:"
    return {key[len(prefix):]: value for key, value in values(path).items() if key.startswith(prefix)}


def context(path: Path) -> Optional[str]:
    """The kubeconfig context the stack deploys to (`kubernetes:context`), if it names one."""
    value = values(path).get(CONTEXT_KEY)
    return str(value) if value else None


def set_values(path: Path, changes: Mapping[str, Optional[str]]) -> None:
    """Set (or, with None, remove) top-level scalar keys of `config:`, line by line."""
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    if not any(line.rstrip() == "config:" for line in lines):
        lines.append("config:\n")
    for key, value in changes.items():
        lines = _set(lines, key, value)
    text = "".join(lines)
    written = (yaml.safe_load(text) or {}).get("config") or {}
    for key, value in changes.items():  # the file still parses, and says what was asked
        if written.get(key) != value:
            raise UsageError(f"{path.name}: could not set {key} by editing its line (an object or multi-line "
                             f"value?); set it with `pulumi config set {key} <value>`")
    path.write_text(text)


def _set(lines: list[str], key: str, value: Optional[str]) -> list[str]:
    rendered = None if value is None else f"  {key}: {_scalar(value)}\n"
    for index, line in enumerate(lines):
        match = _TOP_KEY.match(line.rstrip("\n"))
        if match and match.group("key") == key:
            if not match.group("rest").strip():  # an object, or a secret (`secure:` on the next line)
                raise UsageError(f"{key} is not a plain value in the stack file; change it with `pulumi config set`")
            return lines[:index] + ([rendered] if rendered else []) + lines[index + 1:]
    if rendered is None:
        return lines
    start = next(i for i, line in enumerate(lines) if line.rstrip() == "config:")
    return lines[:start + 1] + [rendered] + lines[start + 1:]


def _scalar(value: str) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


@contextlib.contextmanager
def changed_copy(path: Path, changes: Mapping[str, Optional[str]]) -> Iterator[Optional[Path]]:
    """A temporary copy of the stack file with these changes (None when there are none), for
    `--config-file`: the stack file itself is not written."""
    if not changes:
        yield None
        return
    handle, name = tempfile.mkstemp(prefix=f"{path.stem}.", suffix=".yaml")
    os.close(handle)
    copy = Path(name)
    try:
        copy.write_text(path.read_text() if path.exists() else "")
        set_values(copy, changes)
        yield copy
    finally:
        copy.unlink(missing_ok=True)
