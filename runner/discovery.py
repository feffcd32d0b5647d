"""Find the directory that holds the migrations and load them in order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

from runner.errors import UsageError
from runner.migration import Migration, is_migration_candidate, load

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
        return any(is_migration_candidate(entry.name) and entry.is_file() for entry in os.scandir(directory))
    except OSError:
        return False


def find_directory(override: Optional[str], search_path: Iterable[str] = SEARCH_PATH) -> Path:
    """The --dir / MIGRATIONS_DIR directory, else the first on the search path that holds .sql files.

    Only one directory is ever used, so a ConfigMap mounted at two paths cannot be applied twice.
    """
    if override:
        directory = Path(override)
        if not directory.is_dir():
            raise UsageError(
                f"migrations directory {override} does not exist or is not a directory",
                hint="check --dir / MIGRATIONS_DIR",
            )
        return directory
    searched = list(search_path)
    for candidate in searched:
        directory = Path(candidate)
        if holds_migrations(directory):
            return directory
    raise UsageError(
        "no migrations found; searched " + ", ".join(searched),
        hint="mount the migrations ConfigMap at /migrations, or pass --dir / set MIGRATIONS_DIR",
    )


def load_directory(directory: Path) -> list[Migration]:
    """Every migration in the directory, ordered by file name.

    Dot-entries are skipped: a ConfigMap volume holds `..data` and timestamped `..2025_...`
    folders next to symlinks named after its keys.
    """
    names = sorted(
        entry.name
        for entry in os.scandir(directory)
        if is_migration_candidate(entry.name) and entry.is_file()
    )
    return [load(directory / name) for name in names]
