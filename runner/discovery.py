"""Find the directory that holds the migrations and load them in order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

from runner.errors import MigrationFileError, UsageError
from runner.migration import KEPT_WHEN_LISTED, MemoryBudget, Migration, is_migration_candidate, load, misnamed_problem

# In order: the Kubernetes ConfigMap mount, a Docker volume, then local development
# paths relative to the working directory (this repository's own `migrations/` last).
SEARCH_PATH: tuple[str, ...] = (
    "/migrations",
    "/app/migrations",
    "supabase/migrations",
    "init-db/migrations",
    "migrations",
)


def holds_migrations(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(is_migration_candidate(entry.name) for entry in entries)
    except OSError:
        return False


def find_directories(override: Optional[str], search_path: Iterable[str] = SEARCH_PATH) -> list[Path]:
    """The --dir / MIGRATIONS_DIR directories (several separated by `:`), else the first on the
    search path that holds .sql files.

    Without --dir only one directory is used, so a ConfigMap mounted at two paths cannot be
    applied twice. With several, they are one set of files: see `merge`.
    """
    if override:
        directories = [Path(part) for part in override.split(os.pathsep) if part]
        for directory in directories:
            if not directory.is_dir():
                raise UsageError(
                    f"migrations directory {directory} does not exist or is not a directory",
                    hint="check --dir / MIGRATIONS_DIR",
                )
            if not _holds_anything_like_migrations(directory):
                # A typo'd or wrong directory that exists (`supabase` for `supabase/migrations`)
                # must not pass as "nothing to apply".
                below = _subdirectories_with_migrations(directory)
                raise UsageError(
                    f"migrations directory {directory} holds no migration files (*.sql)",
                    hint=(f"did you mean {' or '.join(str(d) for d in below)}? " if below else "")
                    + "check --dir / MIGRATIONS_DIR",
                )
        return directories
    searched = list(search_path)
    for candidate in searched:
        directory = Path(candidate)
        if holds_migrations(directory):
            return [directory]
    raise UsageError(
        "no migrations found; searched " + ", ".join(searched),
        hint="mount the migrations ConfigMap at /migrations, or pass --dir / set MIGRATIONS_DIR",
    )


def _holds_anything_like_migrations(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(is_migration_candidate(e.name) or misnamed_problem(e.name) for e in entries)
    except OSError:
        return True  # reading it fails later with the reason


def _subdirectories_with_migrations(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as entries:
            return sorted(Path(e.path) for e in entries
                          if e.is_dir() and not e.name.startswith(".") and holds_migrations(Path(e.path)))[:3]
    except OSError:
        return []


def load_directories(directories: list[Path], on_conflict=None) -> list[Migration]:
    """The migrations of several directories as one set: a file name in a later directory
    replaces the same name in an earlier one (as `cp a/* b/* dest/` would). When the two
    files differ, `on_conflict(name, replaced_path, kept_path)` is told."""
    chosen: dict[str, Migration] = {}
    budget = MemoryBudget(KEPT_WHEN_LISTED)
    for directory in directories:
        for migration in load_directory(directory, budget):
            earlier = chosen.get(migration.name)
            if earlier is not None and earlier.checksum != migration.checksum and on_conflict:
                on_conflict(migration.name, earlier.path, migration.path)
            chosen[migration.name] = migration
    if len(directories) == 1:
        return list(chosen.values())  # already in order
    return sorted(chosen.values(), key=lambda m: m.order)


def load_directory(directory: Path, budget: Optional[MemoryBudget] = None) -> list[Migration]:
    """Every migration in the directory, in version order (numeric), then by name; small files'
    bytes kept as `budget` allows (see runner.migration).

    Every file is checked before anything runs, and every problem is named at once. A file
    named like SQL that would not run (`.SQL`, `.sql.txt`) is a problem, not skipped.
    Dot-entries are skipped: a ConfigMap volume holds `..data` and timestamped `..2025_...`
    folders next to symlinks named after its keys.
    """
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise UsageError(
            f"cannot read migrations directory {directory}: {exc.strerror}",
            hint="check that it exists and that this user may list it",
        ) from None
    migrations: list[Migration] = []
    problems: list[str] = []
    for entry in entries:
        if not is_migration_candidate(entry.name):
            misnamed = misnamed_problem(entry.name)
            if misnamed:
                problems.append(misnamed)
            continue
        problem = _entry_problem(entry)
        if problem:
            problems.append(problem)
            continue
        try:
            migrations.append(load(entry.path, budget))
        except MigrationFileError as exc:
            problems.append(str(exc))
    if problems:
        raise MigrationFileError(
            f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {directory}; nothing was applied:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return sorted(migrations, key=lambda m: m.order)


def _entry_problem(entry: os.DirEntry) -> Optional[str]:
    name = entry.name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = ascii(os.fsencode(name))[2:-1]
        return f"{shown}: the file name is not valid UTF-8; rename it (a migration's name is its key in schema_migrations)"
    try:
        if entry.is_file():
            return None
        if entry.is_dir():
            return f"{name}: is a directory, not a migration file; rename or move it"
        if entry.is_symlink():
            return f"{name}: is a symbolic link to a file that does not exist; fix or remove the link"
    except OSError as exc:
        return f"{name}: cannot be inspected ({exc.strerror})"
    return f"{name}: is not a regular file; remove it"
