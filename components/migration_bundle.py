"""The migration files that ship to the cluster, packed into ConfigMaps.

A ConfigMap holds at most 1 MiB. Files are packed in name order into as many
ConfigMaps as needed, all projected into one directory in the Job's pod. Anything
that cannot ship (a file over the limit, too many files, a bad file) stops the
deploy at preview with what to do. The files are checked by the runner's own
`validate` command: the program knows the runner only through its command line.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pulumi

# Room for metadata under the API server's 1 MiB limit on a ConfigMap's data.
CONFIGMAP_BUDGET = 900 * 1024
# Past this, a dedicated migrations image (config migrations.image) is the better carrier.
MAX_CONFIGMAPS = 40
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


class BundleError(pulumi.RunError):
    pass


@dataclass(frozen=True)
class MigrationFile:
    name: str
    text: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Bundle:
    files: tuple[MigrationFile, ...]
    chunks: tuple[tuple[MigrationFile, ...], ...]

    @property
    def checksum(self) -> str:
        """One hash over every file's name and content: changes when any migration changes."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.name}\0{f.sha256}\n".encode())
        return digest.hexdigest()

    def manifest(self) -> list[dict[str, str]]:
        return [{"name": f.name, "sha256": f.sha256} for f in self.files]


def read_all(directories: list[Path]) -> tuple[list[MigrationFile], list[str]]:
    """The files of several directories as one set: a later directory's file replaces an
    earlier one's of the same name (as the old `cp init-db/* supabase/* dest/` did). Returns
    the files and a note for every name whose copies differ."""
    chosen: dict[str, MigrationFile] = {}
    origin: dict[str, Path] = {}
    conflicts = []
    for directory in directories:
        for f in read(directory):
            earlier = chosen.get(f.name)
            if earlier is not None and earlier.sha256 != f.sha256:
                conflicts.append(f"{f.name} differs between {origin[f.name]} and {directory}; {directory}'s is shipped")
            chosen[f.name] = f
            origin[f.name] = directory
    return [chosen[name] for name in sorted(chosen, key=_order)], conflicts


def _order(name: str) -> tuple[int, str]:
    digits = re.match(r"^\d+", name)
    return (int(digits.group()) if digits else -1), name


def read(directory: Path) -> list[MigrationFile]:
    if not directory.is_dir():
        raise BundleError(f"migrations directory {directory} does not exist; fix it with "
                          "`pulumi config set --path 'migrations.dirs[0]' <dir>`")
    files = []
    for path in sorted(p for p in directory.iterdir() if p.suffix == ".sql" and not p.name.startswith(".")):
        raw = path.read_bytes()
        if not _KEY.match(path.name):
            raise BundleError(f"{path.name}: a ConfigMap key may only hold letters, digits, '-', '_' and '.'; rename the file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(f"{path.name}: not valid UTF-8; re-save it as UTF-8") from None
        files.append(MigrationFile(path.name, text, hashlib.sha256(raw).hexdigest(), len(raw)))
    return files


def pack(files: list[MigrationFile], budget: int = CONFIGMAP_BUDGET, max_configmaps: int = MAX_CONFIGMAPS) -> Bundle:
    chunks: list[list[MigrationFile]] = [[]]
    used = 0
    for f in files:
        if f.size > budget:
            raise BundleError(
                f"{f.name} is {f.size / 1024:.0f} KiB; a ConfigMap holds at most {budget // 1024} KiB of migrations. "
                "Split the file, or build a migrations image that contains the files and set "
                "`pulumi config set --path migrations.image <image>` and `--path migrations.source image`"
            )
        if used + f.size > budget and chunks[-1]:
            chunks.append([])
            used = 0
        chunks[-1].append(f)
        used += f.size
    if len(chunks) > max_configmaps:
        total = sum(f.size for f in files)
        raise BundleError(
            f"{len(files)} migrations ({total / 1048576:.1f} MiB) need {len(chunks)} ConfigMaps, more than the "
            f"{max_configmaps} this program ships. Build a migrations image that contains the files and set "
            "`pulumi config set --path migrations.image <image>` and `--path migrations.source image`, or squash "
            "old migrations"
        )
    return Bundle(tuple(files), tuple(tuple(c) for c in chunks if c))


def validate_with_runner(directories: list[Path]) -> None:
    """`python -m runner validate`: names, encoding, statements, transaction control, syntax."""
    result = subprocess.run(
        [sys.executable, "-m", "runner", "--log-format", "json", "validate",
         "--dir", ":".join(str(d) for d in directories)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode != 0:
        problem = _runner_message(result.stderr) or result.stderr.strip() or f"exit code {result.returncode}"
        raise BundleError(f"the migrations in {', '.join(map(str, directories))} would fail in the cluster:\n{problem}")


def _runner_message(stderr: str) -> str:
    for line in reversed(stderr.strip().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "message" in record:
            return record["message"]
    return ""


def load(directories: list[Path]) -> tuple[Bundle, list[str]]:
    """The bundle to ship, and notes on same-named files that differ between directories."""
    for directory in directories:
        read(directory)  # a missing directory is named before the runner is asked
    validate_with_runner(directories)
    files, conflicts = read_all(directories)
    return pack(files), conflicts
