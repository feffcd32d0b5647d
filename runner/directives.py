"""What a migration's comments tell the runner: the `-- runner:no-transaction` marker.

The marker counts anywhere in the comments before the first statement, as a `--` line or
inside a `/* */` block, in any mix: the app's files open with a `/* ... */` header. A
`runner:` directive the runner would not act on is an error, never ignored: misspelled,
or below a statement (a marker there would leave CREATE INDEX CONCURRENTLY to fail
inside the file's transaction, or worse, half of a file run one way and half the other).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.errors import MigrationFileError

MARKER = "runner:no-transaction"
_DIRECTIVE = re.compile(r"^runner\s*:\s*(?P<value>\S*)", re.I)
# Cheap test before walking comments: could this text hold a directive at all?
MAY_HOLD = re.compile(r"runner\s*:", re.I)


@dataclass(frozen=True)
class Directive:
    line: int
    written: str  # as it stands in the file
    is_marker: bool


def in_leading_comments(text: str, first_line: int = 1) -> list[Directive]:
    """The directives in the comments (and whitespace) at the start of `text`, up to the first
    other character. A comment cut off at the end of `text` counts as far as it goes."""
    found: list[Directive] = []
    position, line = 0, first_line
    while position < len(text):
        char = text[position]
        if char in " \t\r\f\v":
            position += 1
        elif char == "\n":
            position, line = position + 1, line + 1
        elif text.startswith("--", position):
            end = text.find("\n", position)
            end = len(text) if end < 0 else end
            _collect(found, text[position + 2:end], line)
            position = end
        elif text.startswith("/*", position):
            end = _block_end(text, position)
            for offset, content in enumerate(text[position + 2:end].split("\n")):
                _collect(found, content.strip().lstrip("*").removesuffix("*/"), line + offset)
            line += text.count("\n", position, end)
            position = end
        else:
            break
    return found


def _collect(found: list[Directive], content: str, line: int) -> None:
    match = _DIRECTIVE.match(content.strip())
    if match:
        found.append(Directive(line, match.group(0).strip(), match.group("value").lower() == "no-transaction"))


def _block_end(text: str, start: int) -> int:
    """Just past the `*/` closing the (nesting) comment at `start`, or the end of `text`."""
    depth, position = 0, start
    while position < len(text):
        if text.startswith("/*", position):
            depth, position = depth + 1, position + 2
        elif text.startswith("*/", position):
            depth, position = depth - 1, position + 2
            if depth == 0:
                return position
        else:
            position += 1
    return len(text)


def wants_transaction(head: str, file_name: str) -> bool:
    """False when the comments before the first statement hold the marker; raises for a
    directive that is not the marker."""
    found = in_leading_comments(head)
    for directive in found:
        if not directive.is_marker:
            raise _unknown(file_name, directive)
    return not found


def misplaced(file_name: str, comments: str, first_line: int, after_statement: int) -> None:
    """Raise for a directive in the comments between statements (after statement N)."""
    if not MAY_HOLD.search(comments):
        return
    for directive in in_leading_comments(comments, first_line):
        if not directive.is_marker:
            raise _unknown(file_name, directive)
        raise MigrationFileError(
            f"{file_name}:{directive.line}: `-- {MARKER}` stands below statement {after_statement}; the runner "
            "reads it only in the comments before the first statement, so this file would run in one transaction",
            hint="move the marker above the first statement (below a /* ... */ header is fine)",
        )


def _unknown(file_name: str, directive: Directive) -> MigrationFileError:
    return MigrationFileError(
        f"{file_name}:{directive.line}: `{directive.written}` is not a runner directive; the runner knows one, "
        f"`-- {MARKER}`",
        hint=f"write it as `-- {MARKER}` above the first statement, or reword the comment",
    )
