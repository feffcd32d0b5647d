"""A migration's statements, read once, and the checks that refuse what must not run.

The file is cut into statements by runner.scanner (PostgreSQL's lexical rules). For a
transactional migration the cut decides nothing about what runs: the executor sends the
file's bytes in large pieces and PostgreSQL's own parser splits them; the cut gives
statement numbers and lines for errors, and the checks below. For a `-- runner:no-
transaction` migration every statement is sent on its own, so the cut must be exact.

What runs is what was read and checked, and the checksum recorded is the checksum of
those bytes. A run reads each file once, when it lists the directory (runner.migration):
a file under 1 MB runs from the bytes read then (kept in memory, 32 MB for all files).
A larger file is read again here to be checked, and must still have the checksum it was
listed with, or nothing is applied (exit 75). It is not kept in memory (memory does not
grow with the size of a file): it stays open, is read again from that same open file
when it runs, and each segment must have the digest it had when it was checked (a file
rewritten in place is stopped, not run; one replaced by a new file is still read from
the old one). A file of one segment (a single huge statement) is kept until it runs,
within KEEP_BYTES for the whole run.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from array import array
from typing import BinaryIO, Iterator, Optional, Sequence, Union

from runner import directives, scanner
from runner.errors import FileChanged, MigrationFileError
from runner.migration import ContentDigest, MemoryBudget, Migration, not_utf8

# A file is read in segments of whole statements of about this many characters.
SEGMENT_CHARS = 4 * 1024 * 1024
_READ_BYTES = 1024 * 1024
# Files of one segment are kept in memory between the checks and the run, up to this many
# bytes for all pending files together; the others are read again (and verified) when they run.
KEEP_BYTES = 64 * 1024 * 1024

_TRANSACTION_WORDS = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE"}
# Statements PostgreSQL refuses inside a transaction block ("cannot run inside a transaction
# block"), told by their first words; found at `validate`, not only when the file runs.
_OUTSIDE_TRANSACTION = re.compile(
    r"(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX)\s+CONCURRENTLY\b"
    r"|REINDEX\s+(?:\([^)]*\)\s*)?(?:(?:INDEX|TABLE)\s+CONCURRENTLY\b|(?:SCHEMA|DATABASE|SYSTEM)\b)"
    r"|VACUUM\b|(?:CREATE|DROP)\s+(?:DATABASE|TABLESPACE)\b|ALTER\s+SYSTEM\b|CLUSTER\s*(?:;|$)"
    r"|ALTER\s+DATABASE\s+\S+\s+SET\s+TABLESPACE\b",
    re.I,
)
_OUTSIDE_WORDS = {"CREATE", "DROP", "REINDEX", "VACUUM", "ALTER", "CLUSTER"}
_BEGIN_OPTIONS = {"TRANSACTION", "WORK", "ISOLATION", "READ", "DEFERRABLE", "NOT"}

# Settings that change how the server reads the text of the statements after them. PostgreSQL
# reads one query's text whole with the values the query started with, and psql sends each
# statement on its own; the runner sends large pieces, so a change part-way would make the
# result depend on where the pieces are cut, and differ from psql. Refused (README).
READING_SETTINGS = ("standard_conforming_strings", "client_encoding")
# (setting, value): SET [SESSION|LOCAL] x {=|TO} v, RESET x, SET NAMES v, set_config('x', 'v', ...).
# Compiled when a file first mentions one of them (rare; re.I costs time to compile).
_READING_CHANGE = (
    r"\b(?:(?:set|reset)\s+(?:(?:session|local)\s+)?\"?(standard_conforming_strings|client_encoding)\"?"
    r"(?:\s*(?:=|\bto\b)\s*('[^']*'|[\w-]+))?"
    r"|set\s+(?:(?:session|local)\s+)?(names)\s+('[^']*'|[\w-]+)"
    r"|set_config\s*\(\s*'(standard_conforming_strings|client_encoding)'\s*,\s*('[^']*'))"
)
# What a migration may set them to: what the runner reads and sends with anyway (pg_dump's
# header sets both; `default` and RESET go back to the session's value, checked at its start).
_UNCHANGED = {"standard_conforming_strings": {"on", "true", "yes", "1", "default", ""},
              "client_encoding": {"utf8", "utf-8", "unicode", "default", ""}}


@dataclass(frozen=True)
class Statement:
    number: int  # 1-based, in the file
    offset: int  # where its first token is, in its segment's text
    end: int  # just past its `;` (or the end of the segment), in its segment's text
    line: int  # 1-based line of its first token, in the file
    words: tuple[str, ...]  # its first two words, upper-cased

    def text(self, segment: "Segment") -> str:
        return segment.text[self.offset : self.end]


class Segment:
    """Whole statements of a file, as they stand in it (comments between them included): its
    bytes as read, and their text, each made from the other when first needed.

    A segment read again for the run (a large file) knows only its bytes; its statements are
    cut only if something needs them (an error to locate, a no-transaction file)."""

    def __init__(self, text: Optional[str], line: int, statements: Optional[tuple[Statement, ...]] = None,
                 first_number: int = 1, start_byte: int = 0, name: str = "", count: Optional[int] = None,
                 raw: Optional[bytes] = None, ends: Optional[Sequence[int]] = None):
        self._text = text
        self._raw = raw
        self._ends = ends
        self.line = line  # the file line where `text` starts
        self.first_number = first_number
        self.count = len(statements) if statements is not None else count
        self.start_byte = start_byte  # where `text` starts in the file
        self._statements = statements
        self._name = name

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._raw.decode("utf-8")
        return self._text

    @property
    def raw(self) -> bytes:
        """The segment's bytes, as the file holds them: what is sent to the server."""
        if self._raw is None:
            self._raw = self._text.encode("utf-8")
        return self._raw

    @property
    def ends(self) -> Sequence[int]:
        """Where each statement ends in `raw` (just past its `;`), in bytes: where the executor
        puts its statement markers. Kept from the checks, so a segment read again is not cut again."""
        if self._ends is None:
            self._ends = _byte_ends(self)
        return self._ends

    def forget_text(self) -> None:
        """Keep only the bytes (half the memory of a large statement); the text comes back when needed."""
        self.raw  # noqa: B018 (made before the text goes)
        self._text = None

    @property
    def statements(self) -> tuple[Statement, ...]:
        if self._statements is None:
            self._statements = _segment(self._name, self.text, self.line, self.first_number - 1, True)[0].statements
        return self._statements

    def line_at(self, offset: int) -> int:
        return self.line + self.text.count("\n", 0, max(0, offset))

    def statement_at(self, offset: int) -> Statement:
        chosen = self.statements[0]
        for statement in self.statements:
            if statement.offset <= offset:
                chosen = statement
            else:
                break
        return chosen


@dataclass(frozen=True)
class SegmentSpan:
    """Where a segment is in the file and the digest of its bytes, remembered from the checks so
    that the run reads it again without cutting it again, and runs only what was checked."""

    start_byte: int
    end_byte: int
    line: int
    first_number: int
    count: int
    digest: bytes
    ends: Sequence[int] = ()  # where each statement ends, in bytes from start_byte (files of several statements)


class Script:
    """What the executor runs for one file, from the one read of it."""

    def __init__(self, path: Union[str, Path], name: str, count: int, opener: Optional[str], wraps_itself: bool,
                 checksum: str, transactional: bool, kept: Optional[Segment] = None,
                 spans: tuple[SegmentSpan, ...] = (), handle: Optional[BinaryIO] = None):
        self.path = path
        self.name = name
        self.count = count  # statements in the body (without the file's own BEGIN/COMMIT)
        self.opener = opener  # the file's own `BEGIN ...` when it wraps itself, else None
        self.wraps_itself = wraps_itself
        self.checksum = checksum  # of the bytes read, the ones that run
        self.transactional = transactional  # no `-- runner:no-transaction` marker in what was read
        self.kept = kept  # the whole file, when it is kept in memory
        self.spans = spans  # the segments of a file read again when it runs
        self._handle = handle

    def segments(self) -> Iterator[Segment]:
        """The body's statements, numbered from 1 without the file's own wrapper. Raises
        FileChanged before yielding a segment whose bytes are not the ones checked."""
        source = (self.kept,) if self.kept is not None else self._read_again()
        for segment in source:
            yield _unwrapped(segment, self.count + 2) if self.wraps_itself else segment

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _read_again(self) -> Iterator[Segment]:
        for span in self.spans:
            self._handle.seek(span.start_byte)
            raw = self._handle.read(span.end_byte - span.start_byte)
            if hashlib.sha256(raw).digest() != span.digest:
                raise FileChanged(self.name, span.line)
            yield Segment(None, span.line, None, span.first_number, span.start_byte, self.name, span.count, raw,
                          span.ends or None)


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, offset)) + 1


@dataclass(frozen=True)
class SplitStatement:
    number: int
    line: int
    words: tuple[str, ...]
    text: str


def split(file_name: str, text: str) -> list[SplitStatement]:
    """Every statement of `text` with its text; raises for psql meta-commands and the like."""
    segment = _segment(file_name, text, 1, 0, final=True)[0]
    return [SplitStatement(s.number, s.line, s.words, s.text(segment)) for s in segment.statements]


def plan_listed(migration: Migration, budget: MemoryBudget) -> Script:
    """What runs for a listed file: the bytes kept when it was listed, or (a file too large to
    keep) the file read again, which must still hold what was listed."""
    if migration.content is not None:
        return _plan(migration.name, migration.location, _Reader(None, migration.name, migration.content), budget)
    script = plan(migration.name, migration.location, budget)
    if script.checksum != migration.checksum:
        script.close()
        raise FileChanged(migration.name, 1, "it changed after the runner listed it and compared it with the "
                          "history; nothing was applied")
    return script


def plan(name: str, path: Union[str, Path], budget: Optional[MemoryBudget] = None) -> Script:
    """Read the file: its checksum, its marker, its statements; refuse what must not run.

    A file that is not kept in memory stays open until the Script is closed."""
    try:
        handle = open(path, "rb", buffering=0)
    except OSError as exc:
        raise MigrationFileError(f"{name}: cannot be read ({exc.strerror})") from None
    try:
        script = _plan(name, path, _Reader(handle, name), budget or MemoryBudget(KEEP_BYTES))
    except BaseException:
        handle.close()
        raise
    if script.kept is not None:
        handle.close()
    return script


def _plan(name: str, path: Union[str, Path], reader: "_Reader", budget: MemoryBudget) -> Script:
    count = 0
    first = last = None
    opener: Optional[str] = None  # the text of statement 1 if it is a BEGIN (the file may wrap itself)
    control: list[Statement] = []
    whole: Optional[Segment] = None  # the file's one segment, while it has only one
    spans: list[SegmentSpan] = []
    outside: list[Statement] = []  # statements PostgreSQL refuses in a transaction block
    for segment in reader.segments():
        if whole is not None:  # a second segment: the file is read again when it runs
            spans.append(_span(whole))
            whole = None
        if not spans:
            whole = segment
        else:
            spans.append(_span(segment))
        gap_start = 0
        for statement in segment.statements:
            if first is not None:  # the comments above the first statement are its header
                _no_directive_between(name, segment, gap_start, statement.offset, statement.number - 1)
            gap_start = statement.end
            if first is None:
                first = statement
                opener = statement.text(segment) if _is_begin(statement.words) else None
            last = statement
            if _is_transaction_control(statement.words):
                control.append(statement)
            if statement.words[:1] and statement.words[0] in _OUTSIDE_WORDS and \
                    _OUTSIDE_TRANSACTION.match(segment.text, statement.offset, min(statement.end, statement.offset + 400)):
                outside.append(statement)
        if last is not None:
            _no_directive_between(name, segment, gap_start, len(segment.text), last.number)
        count += len(segment.statements)
    if count == 0:
        raise MigrationFileError(
            f"{name}: holds no SQL statement (empty or comments only)",
            hint="add the migration's SQL, or delete the file if it was created by mistake",
        )
    transactional = directives.wants_transaction(reader.head, name)
    if not transactional:
        _check_blocks(name, control)
    if transactional and outside:
        statement = outside[0]
        raise MigrationFileError(
            f"{name}:{statement.line}: {' '.join(statement.words)} ... cannot run inside a transaction, and this file "
            "runs in one" + (f" ({len(outside)} such statements)" if len(outside) > 1 else ""),
            hint=f"make `-- {directives.MARKER}` a comment line above the first statement (then its statements "
            "run one by one, uncommitted work is not rolled back, and a failure needs `python -m runner resolve`), "
            "or move the statement to a file of its own with that marker",
        )
    wraps = transactional and count >= 2 and _is_begin(first.words) and _is_commit(last.words)
    if transactional:
        refused = [s for s in control if not (wraps and s.number in (1, count))]
        if refused:
            raise MigrationFileError(
                "; ".join(f"{name}:{s.line}: {' '.join(s.words)} is transaction control" for s in refused)
                + "; the runner runs each file in one transaction, and this would end it part-way "
                "through the migration",
                hint="remove it: a file may only be wrapped whole in BEGIN; ... COMMIT;. "
                "Statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, "
                "VACUUM) need the `-- runner:no-transaction` marker at the top of the file",
            )
    opener = opener if wraps else None
    body = count - 2 if wraps else count
    if whole is not None and (reader.handle is None or budget.take(len(whole.raw))):
        whole.forget_text()
        return Script(path, name, body, opener, wraps, reader.checksum(), transactional, kept=whole)
    return Script(path, name, body, opener, wraps, reader.checksum(), transactional,
                  spans=tuple(spans or [_span(whole)]), handle=reader.handle)


def _no_directive_between(name: str, segment: Segment, start: int, end: int, after_statement: int) -> None:
    # The line is counted only when there may be a directive: counting from the segment's start
    # for every statement would cost time quadratic in the statements of a segment.
    gap = segment.text[start:end]
    if directives.MAY_HOLD.search(gap):
        directives.misplaced(name, gap, segment.line_at(start), after_statement)


def _span(segment: Segment) -> SegmentSpan:
    raw = segment.raw
    ends = array("L", segment.ends) if segment.count > 1 else ()
    return SegmentSpan(segment.start_byte, segment.start_byte + len(raw), segment.line, segment.first_number,
                       segment.count, hashlib.sha256(raw).digest(), ends)


def _byte_ends(segment: Segment) -> array:
    """The statements' ends as byte offsets in the segment's bytes (their character offsets in
    an ASCII text), counted in one pass."""
    text = segment.text
    ends = array("L")
    if text.isascii():
        ends.extend(s.end for s in segment.statements)
        return ends
    position = at = 0
    for statement in segment.statements:
        at += len(text[position:statement.end].encode("utf-8"))
        position = statement.end
        ends.append(at)
    return ends


def _check_blocks(name: str, control: list[Statement]) -> None:
    """A no-transaction file may hold transaction blocks (psql runs them as written); refused
    are a block the file never closes (psql rolls it back when it exits: the work would be
    lost silently) and PREPARE TRANSACTION (it would outlive the run, holding its locks)."""
    problems = [f"{name}:{s.line}: PREPARE TRANSACTION leaves a prepared transaction holding its locks after the "
                "run; the runner does not do two-phase commits" for s in control if s.words[:2] == ("PREPARE", "TRANSACTION")]
    opened: Optional[Statement] = None
    for statement in control:
        if _is_begin(statement.words):
            opened = opened or statement
        elif statement.words[:2] != ("PREPARE", "TRANSACTION"):
            opened = None
    if opened is not None:
        problems.append(f"{name}:{opened.line}: {opened.words[0]} opens a transaction block that the file never "
                        "closes; psql would roll it back when it exits, so its work would be lost")
    if problems:
        raise MigrationFileError(
            "; ".join(problems),
            hint="end each BEGIN with COMMIT; (or ROLLBACK;) in the same file",
        )


def index_if_not_exists(text: str) -> Optional[tuple[str, str]]:
    """(index, table) as written, for CREATE [UNIQUE] INDEX [CONCURRENTLY] IF NOT EXISTS name ON
    [ONLY] table: the statement that skips an existing index of that name, valid or not."""
    tokens = scanner.head_tokens(text, 16)
    words = [value.upper() if kind == "word" else value for kind, value in tokens]
    at = 1
    if words[:1] != ["CREATE"]:
        return None
    if words[at:at + 1] == ["UNIQUE"]:
        at += 1
    if words[at:at + 1] != ["INDEX"]:
        return None
    at += 1
    if words[at:at + 1] == ["CONCURRENTLY"]:
        at += 1
    if words[at:at + 3] != ["IF", "NOT", "EXISTS"] or len(tokens) < at + 5:
        return None
    index = tokens[at + 3][1]
    at += 4
    if words[at] != "ON":
        return None
    at += 1
    if words[at:at + 1] == ["ONLY"]:
        at += 1
    if at >= len(tokens) or tokens[at][0] == "other":
        return None
    table = tokens[at][1]
    while at + 2 < len(tokens) and tokens[at + 1][1] == "." and tokens[at + 2][0] != "other":
        table += "." + tokens[at + 2][1]
        at += 2
    return index, table


def _unwrapped(segment: Segment, total: int) -> Segment:
    """The segment without the file's own BEGIN (statement 1) and COMMIT (the last)."""
    if segment.first_number > 1 and segment.first_number + segment.count - 1 < total:
        # Neither the file's BEGIN nor its COMMIT: the same bytes, numbered one less.
        return Segment(None, segment.line, None, segment.first_number - 1, segment.start_byte,
                       segment._name, segment.count, segment.raw, segment._ends)
    kept = [s for s in segment.statements if s.number not in (1, total)]
    if not kept:
        return Segment("", segment.line, ())
    start = kept[0].offset
    end = kept[-1].end
    line = segment.line_at(start)
    renumbered = tuple(
        Statement(s.number - 1, s.offset - start, s.end - start, s.line, s.words) for s in kept
    )
    return Segment(segment.text[start:end], line, renumbered, renumbered[0].number)


class _Reader:
    """A file's statements in segments of about SEGMENT_CHARS, read as it goes; the checksum of
    the bytes read (as `migration.checksum` computes it) and the file's first characters."""

    def __init__(self, handle: Optional[BinaryIO], name: str, content: Optional[bytes] = None):
        self.handle = handle  # None: the file's bytes are `content`, kept when it was listed
        self.name = name
        self.content = content
        self.digest = ContentDigest()
        self.head = ""  # the first segment's text: where the no-transaction marker may stand

    def checksum(self) -> str:
        return self.digest.hexdigest()

    def segments(self) -> Iterator[Segment]:
        if self.content is not None:
            raw, position = self.content, 0
            if raw.startswith(codecs.BOM_UTF8):
                raw, position = raw[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
            self.digest.update(raw)
            yield self._whole(raw, position)
            return
        decoder = codecs.getincrementaldecoder("utf-8")()
        text = ""  # decoded and not yet cut into a segment
        pieces: list[bytes] = []  # the bytes of `text`, and of what the decoder holds back
        position = 0  # the file byte where `text` starts
        line = 1
        number = 0
        wanted = SEGMENT_CHARS  # grows past a statement larger than a segment
        resume: Optional[scanner.Checkpoint] = None
        first_read = True
        left = os.fstat(self.handle.fileno()).st_size
        while True:
            # No more than the file holds and one byte to see its end: a read allocates what it
            # asks for. A regular file returns less than asked only at its end.
            asked = min(_READ_BYTES, left + 1) if left else _READ_BYTES
            raw = self.handle.read(asked)
            left = max(0, left - len(raw))
            final = len(raw) < asked
            if first_read:
                first_read = False
                if raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                    position = len(codecs.BOM_UTF8)
            self.digest.update(raw)
            if final and not pieces:  # the whole file in one read (most are): no stitching
                yield self._whole(raw, position)
                return
            pieces.append(raw)
            try:
                text += decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                at = line + text.count("\n") + exc.object[: exc.start].count(b"\n")
                raise not_utf8(self.name, at, exc.object[exc.start]) from None
            if not final and len(text) < wanted:
                continue
            segment, rest, resume = _segment(self.name, text, line, number, final, resume)
            refuse_reading_changes(self.name, segment)
            if not (final or segment.statements):
                wanted = len(text) + SEGMENT_CHARS  # the scan resumes near where it stopped
                continue
            size = rest if text.isascii() else len(text[:rest].encode("utf-8"))
            segment._raw, pieces = _cut(pieces, size)
            segment.start_byte = position
            number += len(segment.statements)
            if not self.head:
                self.head = segment.text[:65536]
            yield segment
            if final:
                return
            line += text.count("\n", 0, rest)
            position += size
            text = text[rest:]
            resume = resume.shifted(-rest) if resume else None
            wanted = SEGMENT_CHARS


    def _whole(self, raw: bytes, position: int) -> Segment:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8(self.name, raw[: exc.start].count(b"\n") + 1, raw[exc.start]) from None
        segment = _segment(self.name, text, 1, 0, True)[0]
        refuse_reading_changes(self.name, segment)
        segment._raw = raw
        segment.start_byte = position
        self.head = text[:65536]
        return segment


def _cut(pieces: list[bytes], size: int) -> tuple[bytes, list[bytes]]:
    """The first `size` bytes of `pieces` joined, and the rest as pieces: whole pieces are not
    copied twice (a segment of 4 MB costs 4 MB more, not 8)."""
    taken, length = 0, 0
    while taken < len(pieces) and length + len(pieces[taken]) <= size:
        length += len(pieces[taken])
        taken += 1
    head = pieces[:taken]
    rest = pieces[taken:]
    if length < size:
        split = size - length
        head.append(rest[0][:split])
        rest[0] = rest[0][split:]
    return (head[0] if len(head) == 1 else b"".join(head)), rest


def _segment(name: str, text: str, line: int, number: int, final: bool,
             resume: Optional[scanner.Checkpoint] = None) -> tuple[Segment, int, Optional[scanner.Checkpoint]]:
    if resume is None:
        spans, rest, checkpoint = scanner.scan(text, 0, final)
    else:
        spans, rest, checkpoint = scanner.scan(text, 0, final, resume=resume)
    statements = []
    counted_to, current_line = 0, line
    for span in spans:
        current_line += text.count("\n", counted_to, span.start)
        counted_to = span.start
        if span.unterminated:
            offset, what = span.unterminated
            raise MigrationFileError(
                f"{name}:{current_line + text.count(chr(10), span.start, offset)}: unterminated {what}: "
                "the file ends inside it",
                hint="close it; PostgreSQL would reject the file as it is",
            )
        number += 1
        statements.append(Statement(number, span.start, span.end, current_line, span.words))
        if span.backslash:
            offset, command = span.backslash
            raise MigrationFileError(
                f"{name}:{current_line + text.count(chr(10), span.start, offset)}: psql meta-command "
                f"{command} is not SQL; the runner sends statements to the server, which cannot run "
                "psql commands",
                hint="inline the included file or the variable's value",
            )
        if span.copy_stdio:
            raise MigrationFileError(
                f"{name}:{current_line}: COPY ... FROM STDIN / TO STDOUT reads or writes data through "
                "psql, which the runner is not; the server would wait for data that never comes",
                hint="write the rows as INSERT ... VALUES, or COPY from a file the server can read",
            )
    segment = Segment(text[:rest], line, tuple(statements), number - len(statements) + 1, 0, name)
    return segment, rest, checkpoint


def refuse_reading_changes(name: str, segment: Segment) -> None:
    """Refuse statements of a migration that change how the server reads the statements after
    them (READING_SETTINGS). Checked where migrations are planned, not in `split`: statements
    sent one by one (a snapshot) are read by the server as psql's would be."""
    mentioned = _mentions(segment.text, READING_SETTINGS)
    for statement in segment.statements:
        words = statement.words
        if (words[:1] == ("SET",) and words[1:2] in (("NAMES",), ("SESSION",), ("LOCAL",))) or \
                (mentioned and _mentions(statement.text(segment), READING_SETTINGS)):
            for found in re.finditer(_READING_CHANGE, scanner.without_comments(statement.text(segment)), re.I):
                setting = (found.group(1) or found.group(3) or found.group(5)).lower()
                setting = "client_encoding" if setting == "names" else setting
                value = found.group(2) or found.group(4) or found.group(6) or ""
                if value.strip("'").lower() not in _UNCHANGED[setting]:
                    _refuse_reading_change(name, statement, setting, value)


def _refuse_reading_change(name: str, statement: Statement, setting: str, value: str) -> None:
    raise MigrationFileError(
        f"{name}:{statement.line}: statement {statement.number} sets {setting} to {value}, which changes how PostgreSQL "
        "reads the statements after it; the runner sends a migration to the server in large pieces, and the "
        "server reads each piece whole with the setting it had when the piece began, so the result would "
        "depend on where the pieces are cut and differ from psql's",
        hint="remove it. The runner reads and sends files with standard_conforming_strings on (PostgreSQL's "
        "default: a backslash in '...' is a plain character; write escapes as E'...'), and files are UTF-8; "
        "setting those values (as pg_dump's header does) is accepted",
    )


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    """Whether any of the lower-case `words` is in `text`, in any case; a megabyte at a time,
    so a large statement is not copied whole."""
    step = 1024 * 1024
    if len(text) <= step:
        lowered = text.lower()
        return any(word in lowered for word in words)
    for start in range(0, len(text), step):
        piece = text[start:start + step + 64].lower()
        if any(word in piece for word in words):
            return True
    return False


def _is_begin(words: tuple[str, ...]) -> bool:
    if words[:1] == ("BEGIN",):
        return len(words) < 2 or words[1] in _BEGIN_OPTIONS
    return words[:2] == ("START", "TRANSACTION")


def _is_commit(words: tuple[str, ...]) -> bool:
    return words[:1] in {("COMMIT",), ("END",)} and (len(words) < 2 or words[1] in {"TRANSACTION", "WORK", "AND"})


def _is_transaction_control(words: tuple[str, ...]) -> bool:
    if not words or words[0] not in _TRANSACTION_WORDS:
        return False
    second = words[1] if len(words) > 1 else ""
    if words[0] == "ROLLBACK" and second == "TO":
        return False  # ROLLBACK TO SAVEPOINT stays inside the transaction
    if words[0] in {"PREPARE", "START"}:
        return second == "TRANSACTION"
    return True
