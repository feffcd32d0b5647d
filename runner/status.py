"""Compare the migration files with the tracking table. Pure: no database access."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from runner import history
from runner.history import AppliedRow
from runner.migration import Migration


@dataclass
class Comparison:
    applied: list[Migration] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)
    changed: list[tuple[Migration, AppliedRow]] = field(default_factory=list)
    incomplete: list[tuple[Optional[Migration], AppliedRow]] = field(default_factory=list)
    missing: list[AppliedRow] = field(default_factory=list)  # rows whose file is gone
    # pending files with the checksum of a missing row: the same SQL under a new name
    renamed: list[tuple[Migration, AppliedRow]] = field(default_factory=list)
    unchecked: dict[str, str] = field(default_factory=dict)  # adopted row name -> checksum to record
    out_of_order: list[Migration] = field(default_factory=list)  # pending, older than the newest applied
    newest_applied: Optional[str] = None  # the newest applied migration's row name, its file present or not
    files: set[str] = field(default_factory=set)  # row names that have a file here


def compare(migrations: list[Migration], rows: dict[str, AppliedRow]) -> Comparison:
    result = Comparison()
    matched: set[str] = set()
    for migration in migrations:
        row = history.lookup(rows, migration.name)
        if row is None:
            result.pending.append(migration)
            continue
        matched.add(row.name)
        if row.status == history.INCOMPLETE:
            result.incomplete.append((migration, row))
        elif row.checksum is None:
            result.unchecked[row.name] = migration.checksum
            result.applied.append(migration)
        elif row.checksum != migration.checksum:
            result.changed.append((migration, row))
        else:
            result.applied.append(migration)
    result.files = set(matched)
    for name, row in rows.items():
        if name in matched:
            continue
        if row.status == history.INCOMPLETE:
            result.incomplete.append((None, row))
        else:
            result.missing.append(row)
    gone = {row.checksum: row for row in result.missing if row.checksum}
    result.renamed = [(m, gone[m.checksum]) for m in result.pending if m.checksum in gone]
    if result.renamed:
        renamed = {id(m) for m, _ in result.renamed}
        old = {row.name for _, row in result.renamed}
        result.pending = [m for m in result.pending if id(m) not in renamed]
        result.missing = [row for row in result.missing if row.name not in old]
    # Every applied row counts, its file here or not: a runner holding an older set of files
    # (an older release) must not slip its pending file in under a newer applied one.
    ordered = [(order, row.name) for row in rows.values() if row.status != history.INCOMPLETE
               for order in (_order(row.name),) if order is not None]
    if ordered:
        newest, result.newest_applied = max(ordered)
        result.out_of_order = [m for m in result.pending if m.order < newest]
    return result


_VERSION = re.compile(r"\d+")


def _order(row_name: str) -> Optional[tuple[int, str]]:
    """A row's place in version order, as Migration.order gives a file's (rows of the old script
    may lack `.sql`); None for a name without a version."""
    match = _VERSION.match(row_name)
    if match is None:
        return None
    name = row_name if row_name.endswith(".sql") else row_name + ".sql"
    return int(match.group()), name
