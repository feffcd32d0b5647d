"""Offline syntax check with PostgreSQL's own parser (pglast), where it is installed.

pglast is a development and CI dependency (`runner validate`, the preview): the
migration Job does not need it. Without it, `check` returns False and nothing is checked.
"""

from __future__ import annotations

from typing import Sequence

from runner.errors import MigrationFileError
from runner.migration import Migration
from runner.statements import Script, Segment


def check(migrations: Sequence[Migration], scripts: dict[str, Script]) -> bool:
    """Parse every statement; raise naming each syntax error with its file and line."""
    try:
        from pglast import parser
    except ImportError:
        return False
    problems = []
    for migration in migrations:
        script = scripts[migration.name]
        for segment in script.segments():
            problem = _segment_problem(parser, migration.name, segment)
            if problem:
                problems.append(problem)
                break
    if problems:
        raise MigrationFileError(
            f"{len(problems)} migration{'s' if len(problems) > 1 else ''} with a syntax error "
            "(checked by PostgreSQL's parser, pglast); nothing was applied:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return True


def _segment_problem(parser, name: str, segment: Segment) -> str:
    if not segment.statements:
        return ""
    try:
        parsed = parser.parse_sql(segment.text)
    except parser.ParseError as exc:
        # args: (message, character offset); the offset is where the parser gave up.
        offset = max(0, int(exc.args[1])) if len(exc.args) > 1 and str(exc.args[1]).isdigit() else 0
        statement = segment.statement_at(offset)
        return f"{name}:{segment.line_at(offset)} (statement {statement.number}): {exc.args[0]}"
    if len(parsed) != len(segment.statements):
        # The split is in doubt only here: PostgreSQL's parser and the runner's scanner disagree.
        return (f"{name}:{segment.line}: the runner cut this part into {len(segment.statements)} statements and "
                f"PostgreSQL's parser into {len(parsed)}; please report this file. Until then, a transactional "
                "migration still runs as PostgreSQL parses it, but statement numbers in errors may be off")
    return ""
