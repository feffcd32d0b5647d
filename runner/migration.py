"""A migration file: its name, version, checksum and options.

A file is read in pieces (its checksum, its encoding, its no-transaction marker), so a
very large migration costs the same memory as a small one.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from runner import directives
from runner.errors import MigrationFileError

_FILE_NAME = re.compile(r"^(?P<version>\d+)(?:_(?P<label>.*))?\.sql$")
_READ_BYTES = 1024 * 1024
_HEAD_BYTES = 64 * 1024  # where the marker may stand: the comment lines at the top
# The bytes of files under _READ_BYTES are kept from the one read that lists them, up to this
# many bytes in all: a pending one runs from them, with the checksum computed from them.
KEPT_WHEN_LISTED = 32 * 1024 * 1024


class MemoryBudget:
    """How many bytes of files may still be kept in memory for the rest of a run."""

    def __init__(self, limit: int):
        self.left = limit

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True


@dataclass(frozen=True)
class Migration:
    name: str  # the file name, e.g. 20251124000002_user_api_keys.sql: the tracking key
    version: str
    location: str  # where the file is (`path` as a string: ten thousand Path objects cost a tenth of a second)
    checksum: str
    size: int  # bytes
    transactional: bool
    content: Optional[bytes] = field(default=None, compare=False, repr=False)  # the bytes listed, if kept

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def label(self) -> str:
        return self.name[: -len(".sql")]

    @property
    def order(self) -> tuple[int, str]:
        """Numeric version first: 2_x.sql runs before 10_x.sql; the name breaks ties."""
        return int(self.version), self.name

    @property
    def text(self) -> str:
        """The whole text (for small files and tests; the executor reads in segments)."""
        return decode(self.name, self.path.read_bytes())


def is_migration_candidate(file_name: str) -> bool:
    return file_name.endswith(".sql") and not file_name.startswith(".")


# Names that say SQL but would never run: `.SQL`, `.sql.txt`, `.sql.bak`, `.psql`, ...
_LOOKS_LIKE_SQL = re.compile(r"\.(?:sql(?=$|[.~_-])|p(?:g)?sql$)", re.I)


def misnamed_problem(file_name: str) -> str:
    """Why a file that looks like a migration is not one (so it would never run), or ""."""
    if file_name.startswith(".") or is_migration_candidate(file_name) or not _LOOKS_LIKE_SQL.search(file_name):
        return ""
    match = _LOOKS_LIKE_SQL.search(file_name)
    fixed = file_name[: match.start()] + ".sql"
    return (f"{file_name}: looks like a migration, but only names ending in .sql (lower case) run, so it never would; "
            f"rename it to {fixed}, or move it out of the migrations directory")


def parse_file_name(file_name: str) -> str:
    """Return the version of a migration file name, or raise naming the file."""
    match = _FILE_NAME.match(file_name)
    if not match:
        raise MigrationFileError(
            f"{file_name}: a migration file name must start with its version (digits), "
            "as in 20251124000002_user_api_keys.sql",
            hint=f"rename it, e.g. to {_renamed(file_name)} (a version orders the files: pick one that puts it "
            "where it belongs; `python -m runner new NAME` makes a name with the current time)",
        )
    return match.group("version")


def decode(file_name: str, raw: bytes) -> str:
    """UTF-8 text with a leading byte-order mark removed; invalid bytes are an error."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(file_name, raw[: exc.start].count(b"\n") + 1, raw[exc.start]) from None
    return text[1:] if text.startswith("\ufeff") else text


def checksum(text: str) -> str:
    # Line endings are normalised so a checkout with CRLF does not count as a changed file.
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


class ContentDigest:
    """`checksum()` of a file's text computed from its bytes (without a byte-order mark), fed
    in pieces: a `\r` at the end of a piece may start a `\r\n` that the next one ends."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._carry = b""

    def update(self, raw: bytes) -> None:
        data = self._carry + raw if self._carry else raw
        self._carry = b"\r" if data.endswith(b"\r") else b""
        self._sha.update((data[:-1] if self._carry else data).replace(b"\r\n", b"\n"))

    def hexdigest(self) -> str:
        final = self._sha.copy()
        final.update(self._carry)
        return final.hexdigest()


def load(path: Union[str, Path], budget: Optional[MemoryBudget] = None) -> Migration:
    """Read the file once, in pieces: checksum (as `checksum()` computes it), UTF-8, marker.

    A file under _READ_BYTES is read whole, and its bytes are kept if `budget` allows: if it is
    pending, it runs from them (runner.statements), so what runs is what was listed."""
    location = os.fspath(path)
    name = os.path.basename(location)
    version = parse_file_name(name)
    try:
        raw = _read_small(location)
        if raw is not None:
            return _small(location, name, version, raw, budget is not None and budget.take(len(raw)))
        with open(location, "rb", buffering=0) as handle:
            raw = handle.read(_READ_BYTES)
            digest = ContentDigest()
            decoder = codecs.getincrementaldecoder("utf-8")()
            head = b""
            size = lines = 0
            while True:
                if size == 0 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                    size = len(codecs.BOM_UTF8)
                try:
                    decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as exc:
                    line = lines + exc.object[: exc.start].count(b"\n") + 1
                    raise not_utf8(name, line, exc.object[exc.start]) from None
                if len(head) < _HEAD_BYTES:
                    head += raw[: _HEAD_BYTES - len(head)]
                digest.update(raw)
                if not raw:
                    break
                size += len(raw)
                lines += raw.count(b"\n")
                raw = handle.read(_READ_BYTES)
    except OSError as exc:
        raise MigrationFileError(f"{name}: cannot be read ({exc.strerror})") from None
    return Migration(name, version, location, digest.hexdigest(), size,
                     directives.wants_transaction(head.decode("utf-8", errors="ignore").lstrip("\ufeff"), name))


def _read_small(path: str) -> Optional[bytes]:
    """The whole file if it is under _READ_BYTES (most are), else None. In one read of its size:
    a read allocates what it asks for, and a megabyte for each of ten thousand one-line files
    costs more than reading them."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if size >= _READ_BYTES:
            return None
        raw = os.read(fd, size + 1)
        return raw if len(raw) <= size else None
    finally:
        os.close(fd)


def _small(location: str, name: str, version: str, whole: bytes, keep: bool) -> Migration:
    raw = whole[len(codecs.BOM_UTF8):] if whole.startswith(codecs.BOM_UTF8) else whole
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(name, raw[: exc.start].count(b"\n") + 1, raw[exc.start]) from None
    digest = hashlib.sha256(raw.replace(b"\r\n", b"\n") if b"\r" in raw else raw).hexdigest()
    return Migration(name, version, location, digest, len(whole),
                     directives.wants_transaction(text[:_HEAD_BYTES], name), whole if keep else None)


def not_utf8(file_name: str, line: int, byte: int) -> MigrationFileError:
    return MigrationFileError(
        f"{file_name}: line {line} is not valid UTF-8 (byte 0x{byte:02x})",
        hint="re-save the file as UTF-8",
    )


def _renamed(file_name: str) -> str:
    """The name with a version: the date or number it already starts with when it has one
    (2025-01-15_add_users.sql -> 20250115_add_users.sql, V3__x.sql -> 3_x.sql), else the time now."""
    from datetime import datetime, timezone

    stem = file_name[: -len(".sql")] if file_name.lower().endswith(".sql") else file_name
    prefix = re.match(r"^[vV]?(\d[\d.:_T-]*)", stem)
    digits = re.sub(r"\D", "", prefix.group(1)) if prefix else ""
    label = re.sub(r"[^a-z0-9]+", "_", stem[prefix.end():].lower() if prefix else stem.lower()).strip("_") or "migration"
    version = digits or datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"{version}_{label}.sql"
