"""Split a migration into statements and check it for things a runner must refuse.

Statements are cut with sqlparse's lexer, which keeps strings, dollar-quoted bodies,
quoted identifiers and comments whole: a statement ends at a `;` outside parentheses
and outside a `BEGIN ATOMIC ... END` body. (sqlparse's own StatementSplitter is not
used: it merges statements after words like `begin`, a T-SQL habit.)

The split is never trusted to change what runs: every statement is parsed again by
the server, and when one fails to parse, the executor sends the whole file once as a
single batch so PostgreSQL's parser decides (see runner.executor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlparse import lexer, tokens as T

from runner.errors import MigrationFileError

_TRANSACTION_WORDS = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE"}
_BEGIN_OPTIONS = {"TRANSACTION", "WORK", "ISOLATION", "READ", "DEFERRABLE", "NOT"}


@dataclass(frozen=True)
class Statement:
    number: int  # 1-based
    text: str  # exactly as in the file, from its first SQL token through its `;`
    offset: int  # character offset of `text` in the file
    line: int  # 1-based line of the first SQL token
    words: tuple[str, ...]  # its first two keywords/names, upper-cased


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
    first: Optional[int] = None  # offset of the current statement's first SQL token
    words: list[str] = []
    collecting = False
    parens = atomic = 0
    body_statement_start = False  # at the start of a statement inside BEGIN ATOMIC
    previous = ""
    offset = 0

    def finish(end: int) -> None:
        statements.append(
            Statement(len(statements) + 1, text[first:end], first, line_at(text, first), tuple(words))
        )

    for ttype, value in lexer.tokenize(text):
        if ttype in T.Generic.Command and _starts_line(text, offset):
            raise MigrationFileError(
                f"{file_name}:{line_at(text, offset)}: psql meta-command {value.split()[0]} is "
                "not SQL; the runner sends statements to the server, which cannot run psql commands",
                hint="inline the included file or the variable's value",
            )
        if ttype in T.Whitespace or ttype in T.Comment:
            offset += len(value)
            continue
        if first is None:
            first, words, collecting = offset, [], True
        word = value.upper() if (ttype in T.Keyword or ttype in T.Name) else ""
        if collecting:
            if word and len(words) < 2:
                words.append(word)
            collecting = bool(word) and len(words) < 2
        if previous == "BEGIN" and word == "ATOMIC":
            atomic += 1
        elif atomic and body_statement_start and word == "END":
            atomic -= 1
        body_statement_start = False
        if ttype in T.Punctuation:
            if value == "(":
                parens += 1
            elif value == ")":
                parens = max(0, parens - 1)
            elif value == ";":
                if atomic:
                    body_statement_start = True
                elif parens == 0:
                    finish(offset + 1)
                    first = None
        previous = word
        offset += len(value)
    if first is not None:
        finish(len(text.rstrip()))
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
        statements = [
            Statement(i, s.text, s.offset, s.line, s.words) for i, s in enumerate(statements[1:-1], start=1)
        ]
    for statement in statements:
        if _is_transaction_control(statement.words):
            raise MigrationFileError(
                f"{file_name}:{statement.line}: {' '.join(statement.words)} is transaction control; "
                "the runner runs each file in one transaction, and this would end it part-way "
                "through the migration",
                hint="remove it: a file may only be wrapped whole in BEGIN; ... COMMIT;. "
                "Statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, "
                "VACUUM) need the `-- runner:no-transaction` marker at the top of the file",
            )
    if opener is None:
        return Script(tuple(statements), None, 0, text)
    body_start = opener.offset + len(opener.text)
    return Script(tuple(statements), opener, body_start, text[body_start : closer.offset])


def _starts_line(text: str, offset: int) -> bool:
    line_start = text.rfind("\n", 0, offset) + 1
    return not text[line_start:offset].strip()


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
