"""Split a migration into statements and check it for things a runner must refuse.

Statements are cut with sqlparse's lexer, which keeps strings, dollar-quoted bodies,
quoted identifiers and comments whole: a statement ends at a `;` outside parentheses
and outside a `BEGIN ATOMIC ... END` body. (sqlparse's StatementSplitter is not used:
it merges statements after words like `begin`, a T-SQL habit.)

The lexer is sqlparse's own, configured through its documented extension point
(`Lexer.set_SQL_REGEX`) with the PostgreSQL subset a splitter needs: sqlparse's
multi-dialect default reads `# ` as a comment (PostgreSQL's XOR), a backslash as an
escape in standard strings (`'C:\\'`), and tries some eighty patterns per token (about
three times slower: `python -m bench`). Dollar-quoted bodies and block comments are still
paired by sqlparse itself.

The split is never trusted to change what runs: every statement is parsed again by
the server, and when one fails to parse, the executor sends the whole file once as a
single batch so PostgreSQL's parser decides (see runner.executor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlparse import tokens as T
from sqlparse.lexer import Lexer

from runner.errors import MigrationFileError

# Order matters: the first pattern that matches at a position wins.
_POSTGRES_SPLIT_REGEX = [
    (r"--.*?(\r\n|\r|\n|$)", T.Comment.Single),
    (r"\s+", T.Whitespace),
    (r"\\\w+", T.Command),  # a psql meta-command such as \\i
    # Literals are written as "unrolled loops" ([^']*('' [^']*)*): one regex step per run of
    # characters, not one alternation per character.
    (r"E'[^'\\]*((\\.|'')[^'\\]*)*'", T.String.Single),  # escape string: backslash escapes
    (r"'[^']*(''[^']*)*'", T.String.Single),  # standard string: backslash is a plain character
    (r'"[^"]*(""[^"]*)*"', T.String.Symbol),  # quoted identifier
    (r"[^\W\d][$\w]*", T.Name),  # words; keywords are told apart by the splitter, not the lexer
    (r"\d+(\.\d*)?(e[-+]?\d+)?", T.Number),
    (r"[;()]", T.Punctuation),
    (r"[^\w\s'\";()\\$/-]+|[$/\\-]", T.Operator),  # anything else, in runs
]


def _postgres_lexer() -> Lexer:
    lexer = Lexer()  # a private instance: the process-wide default stays sqlparse's
    lexer.clear()
    lexer.set_SQL_REGEX(_POSTGRES_SPLIT_REGEX)
    return lexer


_LEXER = _postgres_lexer()
# Whitespace and comments: skipped by the splitter (block comments come from sqlparse's
# own span pairing, as Comment.Multiline).
_NOISE = frozenset({T.Whitespace, T.Comment.Single, T.Comment.Multiline, T.Comment.Multiline.Hint})

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
    first_line = 0
    words: list[str] = []
    collecting = False
    parens = atomic = 0
    body_statement_start = False  # at the start of a statement inside BEGIN ATOMIC
    previous = ""
    offset = 0
    line = 1
    for ttype, value in _LEXER.get_tokens(text):
        if ttype in _NOISE:
            offset += len(value)
            line += value.count("\n")
            continue
        if ttype is T.Command and _starts_line(text, offset):
            raise MigrationFileError(
                f"{file_name}:{line}: psql meta-command {value} is not SQL; the runner sends "
                "statements to the server, which cannot run psql commands",
                hint="inline the included file or the variable's value",
            )
        if first is None:
            first, first_line, words, collecting = offset, line, [], True
        word = value.upper() if ttype is T.Name else ""
        if collecting:
            if word and len(words) < 2:
                words.append(word)
            collecting = bool(word) and len(words) < 2
        if previous == "BEGIN" and word == "ATOMIC":
            atomic += 1
        elif atomic and body_statement_start and word == "END":
            atomic -= 1
        body_statement_start = False
        if ttype is T.Punctuation:
            if value == "(":
                parens += 1
            elif value == ")":
                parens = max(0, parens - 1)
            elif atomic:
                body_statement_start = True
            elif parens == 0:
                statements.append(Statement(len(statements) + 1, text[first : offset + 1], first, first_line, tuple(words)))
                first = None
        previous = word
        offset += len(value)
        line += value.count("\n")
    if first is not None:
        statements.append(Statement(len(statements) + 1, text[first:].rstrip(), first, first_line, tuple(words)))
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
