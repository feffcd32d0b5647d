"""Commands that describe or create files: `new` and the `status` table."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from runner.errors import UsageError
from runner.status import Comparison


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def new_migration(directory: str, name: str, now: datetime | None = None) -> Path:
    label = slug(name)
    if not label:
        raise UsageError(f"migration name {name!r} has no letters or digits", hint="e.g. `python -m runner new add_user_api_keys`")
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M%S")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}_{label}.sql"
    if path.exists():
        raise UsageError(f"{path} already exists", hint="wait a second or choose another name")
    path.write_text(
        f"-- {label}\n"
        "-- Runs in one transaction together with its schema_migrations row.\n"
        "-- For CREATE INDEX CONCURRENTLY and the like, make the first line: -- runner:no-transaction\n\n",
        encoding="utf-8",
    )
    return path


def status_lines(comparison: Comparison) -> list[str]:
    rows: list[tuple[str, str]] = []
    rows += [(m.name, "applied") for m in comparison.applied]
    rows += [(m.name, "CHANGED since applied") for m, _ in comparison.changed]
    rows += [(row.name, f"INCOMPLETE (stopped after {row.statements or 0} statements)") for _, row in comparison.incomplete]
    rows += [(row.name, "missing (applied, file gone)") for row in comparison.missing]
    rows += [(m.name, "pending") for m in comparison.pending]
    rows.sort()
    width = max((len(name) for name, _ in rows), default=0)
    return [f"{name.ljust(width)}  {state}" for name, state in rows]


def status_summary(comparison: Comparison) -> str:
    return (
        f"{len(comparison.applied)} applied, {len(comparison.pending)} pending, "
        f"{len(comparison.changed)} changed, {len(comparison.missing)} missing, "
        f"{len(comparison.incomplete)} incomplete"
    )
