"""What must never be printed: the password in any form, and the literals of other sessions' SQL.

`Secrets` is applied by the reporter to every line it prints and to the termination log,
so a message built on a path nobody thought of (a libpq error quoting back an option
value, an error from `check --server`) still cannot carry the password.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping
from urllib.parse import quote, unquote

MASK = "***"
_SHORT = 4
_URI = re.compile(r"^postgres(?:ql)?://", re.I)


class Secrets:
    """Strings that must not reach output, replaced by *** wherever they appear."""

    def __init__(self, values: Iterable[str] = ()):
        self._values: set[str] = set()
        self.add(*values)

    def add(self, *values: str) -> None:
        for value in values:
            if value:
                self._values.update(forms(value))

    def redact(self, text: str) -> str:
        # Longest first: a URL that holds the password is masked whole, not around it.
        for value in sorted(self._values, key=len, reverse=True):
            if value not in text:
                continue
            if len(value) < _SHORT:
                # A very short password is masked where it stands alone, not inside every word.
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", MASK, text)
            else:
                text = text.replace(value, MASK)
        return text

    def redact_fields(self, value):
        """A JSON-ready structure with every string in it redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self.redact_fields(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_fields(item) for item in value]
        return value


def forms(secret: str) -> set[str]:
    """The ways a secret can be written back: as is, percent-encoded, percent-decoded."""
    found = {secret, quote(secret, safe=""), unquote(secret)}
    return {f for f in found if f}


def in_environment(environ: Mapping[str, str]) -> Secrets:
    """Everything of the environment that holds a password: DATABASE_URL whole and its
    password as libpq and as a person would read it, POSTGRES_PASSWORD, PGPASSWORD."""
    secrets = Secrets()
    for name in ("POSTGRES_PASSWORD", "PGPASSWORD"):
        secrets.add(environ.get(name, ""))
    url = environ.get("DATABASE_URL", "").strip()
    if url:
        secrets.add(*in_url(url))
    return secrets


def in_url(url: str) -> list[str]:
    """The URL and its password, also when the URL is malformed (read as a person would:
    from the first `:` after the user name to the last `@`)."""
    found = [url]
    if _URI.match(url):
        rest = url.split("://", 1)[1]
        userinfo = rest.rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    try:
        import psycopg2.extensions

        found.append(psycopg2.extensions.parse_dsn(url).get("password", ""))
    except Exception:  # a malformed string: the person's reading above still counts
        pass
    return [f for f in found if f]


# -- SQL of other sessions --------------------------------------------------------------------

# One pass over PostgreSQL's lexical structure (scan.l): what is a constant is replaced,
# what is a name or keyword is kept. A query from pg_stat_activity may be cut off
# (track_activity_query_size), so an unterminated string or comment runs to the end.
_LEXEME = re.compile(
    r"(?P<comment>--[^\n\r]*|/\*)"
    r"|(?P<ident>(?:[uU]&)?\"(?:[^\"]|\"\")*(?:\"|\Z))"
    r"|(?P<estring>[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z))"
    r"|(?P<string>(?:[bBxXnN]|[uU]&)?'(?:[^']|'')*(?:'|\Z))"
    r"|(?P<dollar>\$(?P<tag>(?:[A-Za-z_]|[^\x00-\x7f])(?:[A-Za-z_0-9]|[^\x00-\x7f])*)?\$)"
    r"|(?P<param>\$[0-9]+)"
    r"|(?P<word>(?:[A-Za-z_]|[^\x00-\x7f])(?:[A-Za-z_0-9$]|[^\x00-\x7f])*)"
    r"|(?P<number>(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?)",
    re.S,
)


def without_literals(sql: str) -> str:
    """`sql` with every string, number, dollar-quoted body and comment replaced by `?`:
    its shape (statement, tables, columns) without the values, which may be secrets
    (CREATE ROLE ... PASSWORD '...', an UPDATE's data)."""
    out: list[str] = []
    position = 0
    while position < len(sql):
        match = _LEXEME.search(sql, position)
        if match is None:
            out.append(sql[position:])
            break
        out.append(sql[position:match.start()])
        kind = match.lastgroup if match.lastgroup != "tag" else "dollar"
        end = match.end()
        if kind == "comment":
            end = _comment_end(sql, match.start())
            out.append(" ")
        elif kind in ("estring", "string", "number"):
            out.append("?")
        elif kind == "dollar":
            closing = sql.find(match.group("dollar"), end)
            end = len(sql) if closing < 0 else closing + len(match.group("dollar"))
            out.append("?")
        else:  # identifiers, keywords and $1 parameters say nothing secret
            out.append(match.group())
        position = end
    return "".join(out)


def _comment_end(sql: str, start: int) -> int:
    if sql.startswith("--", start):
        newline = re.compile(r"[\n\r]").search(sql, start)
        return len(sql) if newline is None else newline.start()
    depth, position = 0, start
    while position < len(sql):
        if sql.startswith("/*", position):
            depth, position = depth + 1, position + 2
        elif sql.startswith("*/", position):
            depth, position = depth - 1, position + 2
            if depth == 0:
                return position
        else:
            position += 1
    return len(sql)
