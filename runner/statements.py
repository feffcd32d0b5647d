"""A migration's statements, and the checks that refuse what must not run.

The file is cut into statements by runner.scanner (PostgreSQL's lexical rules). For a
transactional migration the cut decides nothing about what runs: the executor sends the
file's text in large pieces and PostgreSQL's own parser splits them; the cut gives
statement numbers and lines for errors, and the checks below. For a `-- runner:no-
transaction` migration every statement is sent on its own, so the cut must be exact.

Large files are read in pieces (segments of whole statements), so memory does not grow
with the size of a file.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path
from array import array
from typing import Iterator, Optional, Sequence

from runner import directives, scanner
from runner.errors import MigrationFileError

# A file up to this size is one segment, kept in memory between the checks and the run;
# a larger one is read again, in segments of about this size.
SEGMENT_CHARS = 4 * 1024 * 1024
_READ_BYTES = 1024 * 1024

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
    """Whole statements of a file, as they stand in it (comments between them included).

    A segment read again for the run (a large file) knows only its text; its statements are
    cut only if something needs them (an error to locate, a no-transaction file)."""

    def __init__(self, text: str, line: int, statements: Optional[tuple[Statement, ...]] = None,
                 first_number: int = 1, start_byte: int = 0, name: str = "", count: Optional[int] = None,
                 ends: Optional[Sequence[int]] = None):
        self.text = text
        self.line = line  # the file line where `text` starts
        self.first_number = first_number
        self.count = len(statements) if statements is not None else count
        self.start_byte = start_byte  # where `text` starts in the file
        self._statements = statements
        self._name = name
        self._ends = ends

    @property
    def ends(self) -> Sequence[int]:
        """Where each statement ends in `text` (just past its `;`), without cutting it again."""
        if self._ends is None:
            return [s.end for s in self.statements]
        return self._ends

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
    """Where a segment is in the file, remembered from the checks so the run need not cut again."""

    start_byte: int
    end_byte: int
    line: int
    first_number: int
    count: int
    ends: Sequence[int] = ()  # where each statement ends, in characters from start_byte


@dataclass(frozen=True)
class Script:
    """What the executor runs for one file."""

    path: Path
    name: str
    count: int  # statements in the body (without the file's own BEGIN/COMMIT)
    opener: Optional[str]  # the file's own `BEGIN ...` when it wraps itself, else None
    wraps_itself: bool
    cached: Optional[Segment]  # the whole file, when it is small enough to keep
    spans: tuple[SegmentSpan, ...] = ()  # the segments of a larger file

    def segments(self) -> Iterator[Segment]:
        """The body's statements, numbered from 1 without the file's own wrapper."""
        source = (self.cached,) if self.cached is not None else self._read_again()
        for segment in source:
            yield _unwrapped(segment, self.count + 2) if self.wraps_itself else segment

    def _read_again(self) -> Iterator[Segment]:
        with open(self.path, "rb") as handle:
            for span in self.spans:
                handle.seek(span.start_byte)
                text = handle.read(span.end_byte - span.start_byte).decode("utf-8")
                yield Segment(text, span.line, None, span.first_number, span.start_byte, self.name, span.count,
                              span.ends)


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


def plan(name: str, path: Path, transactional: bool) -> Script:
    """Read the file through once: count its statements and refuse what must not run."""
    count = 0
    first = last = None
    control: list[Statement] = []
    kept: list[Segment] = []
    spans: list[SegmentSpan] = []
    outside: list[Statement] = []
    for segment in read_segments(path, name):
        spans.append(SegmentSpan(segment.start_byte, segment.start_byte + len(segment.text.encode("utf-8")), segment.line,
                                 segment.first_number, segment.count, array("L", segment.ends)))
        gap_start = 0
        for statement in segment.statements:
            if first is not None:  # the comments above the first statement are its header
                directives.misplaced(name, segment.text[gap_start:statement.offset], segment.line_at(gap_start),
                                     statement.number - 1)
            gap_start = statement.end
            if first is None:
                first = (statement, segment)
            last = statement
            if _is_transaction_control(statement.words):
                control.append(statement)
            if transactional and statement.words[:1] and statement.words[0] in _OUTSIDE_WORDS and \
                    _OUTSIDE_TRANSACTION.match(segment.text, statement.offset, min(statement.end, statement.offset + 400)):
                outside.append(statement)
        if last is not None:
            directives.misplaced(name, segment.text[gap_start:], segment.line_at(gap_start), last.number)
        count += len(segment.statements)
        if len(kept) < 2:
            kept.append(segment)
    if count == 0:
        raise MigrationFileError(
            f"{name}: holds no SQL statement (empty or comments only)",
            hint="add the migration's SQL, or delete the file if it was created by mistake",
        )
    cached = kept[0] if len(kept) == 1 else None
    spans_kept = () if cached else tuple(spans)
    if outside:
        statement = outside[0]
        raise MigrationFileError(
            f"{name}:{statement.line}: {' '.join(statement.words)} ... cannot run inside a transaction, and this file "
            "runs in one" + (f" ({len(outside)} such statements)" if len(outside) > 1 else ""),
            hint=f"make `-- {directives.MARKER}` a comment line above the first statement (then its statements "
            "run one by one, uncommitted work is not rolled back, and a failure needs `python -m runner resolve`), "
            "or move the statement to a file of its own with that marker",
        )
    if not transactional:
        _check_blocks(name, control)
        return Script(path, name, count, None, False, cached, spans_kept)
    wraps = count >= 2 and _is_begin(first[0].words) and _is_commit(last.words)
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
    opener = first[0].text(first[1]) if wraps else None
    return Script(path, name, count - 2 if wraps else count, opener, wraps, cached, spans_kept)


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
        # Neither the file's BEGIN nor its COMMIT: the same text, numbered one less.
        return Segment(segment.text, segment.line, None, segment.first_number - 1, segment.start_byte,
                       segment._name, segment.count, segment._ends)
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


def read_segments(path: Path, name: str) -> Iterator[Segment]:
    """The file's statements in segments of about SEGMENT_CHARS, read as it goes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    buffer = ""
    line = 1
    number = 0
    position = 0  # the file byte where `buffer` starts
    wanted = SEGMENT_CHARS  # grows past a statement larger than a segment
    with open(path, "rb") as handle:
        while True:
            raw = handle.read(_READ_BYTES)
            final = not raw
            if number == 0 and line == 1 and not buffer and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
                position = len(codecs.BOM_UTF8)
            buffer += decoder.decode(raw, final=final)
            if not final and len(buffer) < wanted:
                continue
            segment, rest = _segment(name, buffer, line, number, final)
            segment.start_byte = position
            if final or segment.statements:
                number += len(segment.statements)
                yield segment
            wanted = SEGMENT_CHARS if segment.statements else 2 * len(buffer)
            line += buffer.count("\n", 0, rest)
            position += len(buffer[:rest].encode("utf-8")) if rest < len(buffer) else len(buffer.encode("utf-8"))
            buffer = buffer[rest:]
            if final:
                return


def _segment(name: str, text: str, line: int, number: int, final: bool) -> tuple[Segment, int]:
    spans, rest = scanner.scan(text, 0, final)
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
    return Segment(text[:rest], line, tuple(statements), number - len(statements) + 1, 0, name), rest


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
