"""Commands that describe or create files: `new` and the `status` table."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

from runner.errors import UsageError
from runner.status import Comparison


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def new_migration(directory: str, name: str, now: datetime | None = None, create: bool = False) -> Path:
    """<directory>/<UTC timestamp>_<name>.sql. The directory must exist unless `create` (the
    default `migrations` of a new project): a typo'd --dir must not become a new folder."""
    label = slug(name)
    if not label:
        raise UsageError(f"migration name {name!r} has no letters or digits", hint="e.g. `python -m runner new add_user_api_keys`")
    parts = [part for part in directory.split(os.pathsep) if part]
    if len(parts) != 1:
        raise UsageError(
            f"--dir / MIGRATIONS_DIR names {len(parts)} directories ({', '.join(parts) or 'none'}); "
            "a new migration goes into one of them",
            hint=f"say which: `python -m runner new {label} --dir {parts[-1] if parts else 'migrations'}`",
        )
    folder = Path(parts[0])
    if not folder.is_dir():
        if not create:
            raise UsageError(f"migrations directory {folder} does not exist",
                             hint=f"check --dir / MIGRATIONS_DIR, or create it first: mkdir -p {folder}")
        folder.mkdir(parents=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M%S")
    path = folder / f"{stamp}_{label}.sql"
    if path.exists():
        raise UsageError(f"{path} already exists", hint="wait a second or choose another name")
    path.write_text(
        f"-- {label}\n"
        "-- Runs in one transaction together with its schema_migrations row.\n"
        "-- For CREATE INDEX CONCURRENTLY and the like, add this line above the first statement:\n"
        "--   -- runner:no-transaction\n\n",
        encoding="utf-8",
    )
    return path


def status_rows(comparison: Comparison) -> list[tuple[str, str]]:
    """(migration, state) in name order; states: applied, changed, incomplete, missing, renamed, pending,
    out_of_order (pending, and older than a migration already applied)."""
    rows: list[tuple[str, str]] = []
    rows += [(m.name, "applied") for m in comparison.applied]
    rows += [(m.name, "changed") for m, _ in comparison.changed]
    rows += [(row.name, "incomplete") for _, row in comparison.incomplete]
    rows += [(row.name, "missing") for row in comparison.missing]
    rows += [(m.name, "renamed") for m, _ in comparison.renamed]
    late = {m.name for m in comparison.out_of_order}
    rows += [(m.name, "out_of_order" if m.name in late else "pending") for m in comparison.pending]
    return sorted(rows)


_STATE_TEXT = {
    "changed": "CHANGED since applied",
    "incomplete": "INCOMPLETE (no-transaction migration stopped part-way)",
    "missing": "missing (applied, file gone)",
    "renamed": "RENAMED: the content of an applied file that is gone (`python -m runner rename OLD NEW` records it)",
    "out_of_order": "OUT OF ORDER: pending, older than a migration already applied (apply refuses it unless "
                    "--allow-out-of-order)",
}


def status_lines(rows: list[tuple[str, str]]) -> list[str]:
    width = max((len(name) for name, _ in rows), default=0)
    return [f"{name.ljust(width)}  {_STATE_TEXT.get(state, state)}" for name, state in rows]


def status_counts(comparison: Comparison) -> dict[str, int]:
    return {
        "applied": len(comparison.applied),
        "pending": len(comparison.pending),
        "changed": len(comparison.changed),
        "missing": len(comparison.missing),
        "incomplete": len(comparison.incomplete),
        "renamed": len(comparison.renamed),
        "out_of_order": len(comparison.out_of_order),
    }


def status_summary(comparison: Comparison) -> str:
    return ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in status_counts(comparison).items())
