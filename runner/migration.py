"""A migration file: its name, version, text, checksum and options."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from runner.errors import MigrationFileError

# `-- runner:no-transaction` in the comment block at the top of a file opts it out of
# the per-file transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...).
NO_TRANSACTION_MARKER = "runner:no-transaction"
_MARKER_LINE = re.compile(r"^--\s*runner:no-transaction\s*$")
_FILE_NAME = re.compile(r"^(?P<version>\d+)(?:_(?P<label>.*))?\.sql$")


@dataclass(frozen=True)
class Migration:
    name: str  # the file name, e.g. 20251124000002_user_api_keys.sql: the tracking key
    version: str
    path: Path
    text: str
    checksum: str
    transactional: bool

    @property
    def label(self) -> str:
        return self.name[: -len(".sql")]


def is_migration_candidate(file_name: str) -> bool:
    return file_name.endswith(".sql") and not file_name.startswith(".")


def parse_file_name(file_name: str) -> str:
    """Return the version of a migration file name, or raise naming the file."""
    match = _FILE_NAME.match(file_name)
    if not match:
        raise MigrationFileError(
            f"{file_name}: a migration file name must start with its version (digits), "
            "as in 20251124000002_user_api_keys.sql",
            hint=f"rename it, e.g. `python -m runner new {_slug_hint(file_name)}` makes a correctly named file",
        )
    return match.group("version")


def decode(file_name: str, raw: bytes) -> str:
    """UTF-8 text with a leading byte-order mark removed; invalid bytes are an error."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MigrationFileError(
            f"{file_name}: line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            hint="re-save the file as UTF-8",
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def checksum(text: str) -> str:
    # Line endings are normalised so a checkout with CRLF does not count as a changed file.
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def wants_transaction(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            return True
        if _MARKER_LINE.match(stripped):
            return False
    return True


def load(path: Path) -> Migration:
    version = parse_file_name(path.name)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MigrationFileError(f"{path}: cannot be read ({exc.strerror})") from None
    text = decode(path.name, raw)
    return Migration(
        name=path.name,
        version=version,
        path=path,
        text=text,
        checksum=checksum(text),
        transactional=wants_transaction(text),
    )


def _slug_hint(file_name: str) -> str:
    stem = file_name[: -len(".sql")] if file_name.endswith(".sql") else file_name
    return re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "name"
