"""Split a migration into statements and check it for things a runner must refuse.

sqlparse gives per-statement progress and error locations. It is not PostgreSQL's
grammar, so its split is never trusted to change what runs: the pieces always
concatenate back to the file, every piece is parsed again by the server, and the
executor falls back to sending the whole file when a piece fails to parse
(see runner.executor). Refusals (transaction control, psql meta-commands) are
decided on sqlparse's tokens, which keep strings, dollar-quoted bodies and
comments intact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sqlparse import engine, tokens as T

from runner.errors import MigrationFileError

_TRANSACTION_WORDS = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE"}
_BEGIN_OPTIONS = {"TRANSACTION", "WORK", "ISOLATION", "READ", "DEFERRABLE", "NOT"}


@dataclass(frozen=True)
class StatementStart:
    words: tuple[str, ...]  # the first two keywords/names, upper-cased
    offset: int  # in the file


@dataclass(frozen=True)
class Statement:
    number: int  # 1-based, counting only pieces that hold SQL
    text: str  # exactly as in the file, from its first SQL token to the end of the piece
    offset: int  # character offset of `text` in the file
    line: int  # 1-based line of the first SQL token
    words: tuple[str, ...]
    # Statement starts sqlparse left inside this piece (it merges after words like `begin`).
    inner_starts: tuple[StatementStart, ...] = field(default=())


@dataclass(frozen=True)
class Script:
    """What the executor runs for one file."""

    statements: tuple[Statement, ...]  # the body: the file minus its own BEGIN/COMMIT wrapper
    opener: Optional[Statement]  # the file's own BEGIN ..., when it wraps itself
    body_offset: int  # where the body starts in the file (for the whole-file fallback)
    body_text: str

    @property
    def count(self) -> int:
        return len(self.statements)


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, offset)) + 1


def split(file_name: str, text: str) -> list[Statement]:
    """Statements with their offsets and lines; raises on psql meta-commands."""
    statements: list[Statement] = []
    offset = 0
    for piece in engine.FilterStack().run(text):
        scan = _scan(file_name, text, piece, offset)
        if scan is not None:
            lead, starts = scan
            raw = str(piece)
            statements.append(
                Statement(
                    number=len(statements) + 1,
                    text=raw[lead:],
                    offset=offset + lead,
                    line=line_at(text, offset + lead),
                    words=starts[0].words,
                    inner_starts=tuple(starts[1:]),
                )
            )
            offset += len(raw)
        else:
            offset += len(str(piece))
    return statements


def plan(file_name: str, text: str, transactional: bool) -> Script:
    """Split the file and decide how it runs; raise for what must not run."""
    statements = split(file_name, text)
    if not statements:
        raise MigrationFileError(
            f"{file_name}: holds no SQL statement (empty or comments only)",
            hint="add the migration's SQL, or delete the file if it was created by mistake",
        )
    if not transactional:
        return Script(tuple(statements), None, 0, text)

    opener = closer = None
    if len(statements) >= 2 and _is_begin(statements[0].words) and _is_commit(statements[-1].words):
        opener, closer = statements[0], statements[-1]
        statements = _renumber(statements[1:-1])
    for statement in statements:
        for start in (StatementStart(statement.words, statement.offset), *statement.inner_starts):
            if _is_transaction_control(start.words):
                raise MigrationFileError(
                    f"{file_name}:{line_at(text, start.offset)}: {' '.join(start.words)} is "
                    "transaction control; the runner runs each file in one transaction, and "
                    "this would end it part-way through the migration",
                    hint="remove it: a file may only be wrapped whole in BEGIN; ... COMMIT;. "
                    "Statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, "
                    "VACUUM) need the `-- runner:no-transaction` marker at the top of the file",
                )
    if opener is None:
        return Script(tuple(statements), None, 0, text)
    body_start = opener.offset + len(opener.text)
    return Script(tuple(statements), opener, body_start, text[body_start : closer.offset])


def _renumber(statements: list[Statement]) -> list[Statement]:
    return [
        Statement(i, s.text, s.offset, s.line, s.words, s.inner_starts)
        for i, s in enumerate(statements, start=1)
    ]


def _significant(token) -> bool:
    return not (token.is_whitespace or token.ttype in T.Comment)


def _word(token) -> str:
    if token.ttype in T.Keyword or token.ttype in T.Name:
        return token.value.upper()
    return ""


def _scan(file_name: str, text: str, piece, piece_offset: int):
    """One pass over a piece's tokens: where its SQL starts, and where each statement starts.

    Returns None for a piece with no SQL (whitespace and comments only).
    """
    lead: Optional[int] = None
    starts: list[StatementStart] = []
    current: Optional[list[str]] = None  # words of the statement start being read
    at_start = True
    atomic_depth = 0
    previous = ""
    consumed = 0
    for token in piece.flatten():
        if token.ttype in T.Generic.Command:
            raise MigrationFileError(
                f"{file_name}:{line_at(text, piece_offset + consumed)}: psql meta-command "
                f"{token.value} is not SQL; the runner sends statements to the server, "
                "which cannot run psql commands",
                hint="inline the included file or the variable's value",
            )
        if _significant(token):
            if lead is None:
                lead = consumed
            word = _word(token)
            if at_start:
                current = []
                starts.append(StatementStart((), piece_offset + consumed))
                at_start = False
            if current is not None:
                if word and len(current) < 2:
                    current.append(word)
                    starts[-1] = StatementStart(tuple(current), starts[-1].offset)
                else:
                    current = None
            if previous == "BEGIN" and word == "ATOMIC":
                atomic_depth += 1
            if token.ttype is T.Punctuation and token.value == ";":
                at_start = True
            elif word == "END" and atomic_depth and starts[-1].words[:1] == ("END",):
                atomic_depth -= 1
                starts.pop()  # the end of a BEGIN ATOMIC body, not a statement of its own
            previous = word
        consumed += len(token.value)
    if lead is None:
        return None
    return lead, starts


def _is_begin(words: tuple[str, ...]) -> bool:
    if words[:1] == ("BEGIN",):
        return len(words) < 2 or words[1] in _BEGIN_OPTIONS
    return words[:2] == ("START", "TRANSACTION")


def _is_commit(words: tuple[str, ...]) -> bool:
    return words[:1] in {("COMMIT",), ("END",)} and (
        len(words) < 2 or words[1] in {"TRANSACTION", "WORK", "AND"}
    )


def _is_transaction_control(words: tuple[str, ...]) -> bool:
    if not words or words[0] not in _TRANSACTION_WORDS:
        return False
    second = words[1] if len(words) > 1 else ""
    if words[0] == "ROLLBACK" and second == "TO":
        return False  # ROLLBACK TO SAVEPOINT stays inside the transaction
    if words[0] in {"PREPARE", "START"}:
        return second == "TRANSACTION"
    return True
