"""Where PostgreSQL statements end: the lexical rules of PostgreSQL's scanner and psql's.

A statement ends at a `;` that is not inside a string, a quoted identifier, a
dollar-quoted body, a comment or parentheses, and not inside the `BEGIN ... END` body
of a `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (psql's rule for `BEGIN ATOMIC`). The
rules follow PostgreSQL's `scan.l` and psql's `psqlscan.l`:

- `--` comments to the end of the line, and `/* */` comments that nest;
- standard strings `'...'` (`''` is a quote; a backslash is a plain character, as with
  standard_conforming_strings on, the default since 9.1), also with the prefixes `B`,
  `X`, `N` and `U&`; escape strings `E'...'` where a backslash escapes the next
  character, continued across a newline by another `'...'` in the same mode;
- quoted identifiers `"..."` and `U&"..."`;
- dollar quotes `$tag$ ... $tag$`; a `$` inside a word belongs to the word (`a$b`).

Written by hand because nothing that runs in the migration Job does this exactly:
sqlparse's lexer does not nest comments or continue escape strings, and pglast (the
PostgreSQL scanner itself, used by the tests as the oracle) is a C extension the
backend image does not have. The tests compare this scanner with pglast on generated
SQL (hypothesis).

Speed: long runs of words, numbers, operators and whitespace are consumed by one
regular-expression step; only the characters that can start a string, comment or
statement boundary are looked at one token at a time.

Memory: a repeated group costs Python's regex engine a saved state per repetition (about
ten bytes per character of a 25 MB `VALUES` list), so every repetition of a group is
bounded (`{0,N}`) and the scan loops instead: a statement of any size is scanned in
constant memory. A statement cut by the end of the text (streaming) resumes from a
checkpoint near where the scan stopped, not from its start, so a statement larger than
a segment is scanned once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Optional

# Every character past ASCII is an identifier character, as every byte past 0x7f is for
# PostgreSQL. Written as "not ASCII" rather than as a range to U+10FFFF, which costs Python's
# regex compiler tens of milliseconds at every start.
_WIDE = "[^\x00-\x7f]"
_IDENT_START = f"(?:[A-Za-z_]|{_WIDE})"
_IDENT_CONT = f"(?:[A-Za-z_0-9$]|{_WIDE})"
_SPACE = " \t\n\r\f\v"

# Text that can neither open a comment nor end a statement. A word must not be directly
# followed by a quote or `&`: `E'`, `B'`, `U&'`, `U&"` open strings when the letter starts a
# token, which the one-token path decides. A standard string is taken whole (backslashes are
# plain characters in it), and so is a parenthesized group of such text without nested
# parentheses (the rows of a VALUES list): neither changes where the statement ends.
# Each alternative takes a maximal run (the lookaheads), so there is one way to match a text
# and a failed group costs linear time, not exponential backtracking.
# ASCII that is neither part of a word or number, nor space, nor able to start something.
_OTHER = "[\x00-\x08\x0e-\x1f!#%&*+,.:<=>?@\\[\\]^`{|}~\x7f]"
_PLAIN = (
    f"[{_SPACE}]+(?![{_SPACE}])"
    f"|{_IDENT_START}{_IDENT_CONT}*(?!{_IDENT_CONT}|['&\"])"
    "|[0-9][A-Za-z_0-9.]*(?![A-Za-z_0-9.])"
    f"|{_OTHER}+(?!{_OTHER})"
    "|-(?!-)|/(?!\\*)"
    "|'[^']*(?:''[^']*){0,100}'"
)
# At most _RUN repetitions per match (see Memory above); the caller matches again.
_RUN = 1000
_BORING = re.compile(f"(?:{_PLAIN}|\\((?:{_PLAIN}){{0,{_RUN}}}\\)){{1,{_RUN}}}")
_TOKEN = re.compile(
    f"(?P<space>[{_SPACE}]+)"
    "|(?P<dash>--[^\n\r]*)"
    "|(?P<block>/\\*)"
    "|(?P<estring>[eE]')"
    "|(?P<string>(?:[bBxXnN]|[uU]&)?')"
    "|(?P<ident>(?:[uU]&)?\")"
    f"|(?P<dollar>\\$(?:{_IDENT_START}(?:[A-Za-z_0-9]|{_WIDE})*)?\\$)"
    f"|(?P<word>{_IDENT_START}{_IDENT_CONT}*)"
    "|(?P<number>[0-9][A-Za-z_0-9.]*)"
    "|(?P<semicolon>;)"
    "|(?P<open>\\()"
    "|(?P<close>\\))"
    "|(?P<backslash>\\\\[A-Za-z0-9_!?.]*)"
    "|(?P<other>[\\s\\S])"
)
# The body of a string up to (not including) a quote that may close it; a doubled quote
# (or, in an escape string, a backslash escape) continues it. Bounded like _BORING.
_STRING_BODY = re.compile(f"[^']*(?:''[^']*){{0,{_RUN}}}")
_ESCAPE_STRING_BODY = re.compile(f"[^'\\\\]*(?:(?:\\\\[\\s\\S]|'')[^'\\\\]*){{0,{_RUN}}}")
# scan.l's quotecontinue: another quote after whitespace holding a newline (and maybe
# `--` comments) continues the string, in the same mode.
_QUOTE_CONTINUE = re.compile(r"[ \t\f]*[\n\r](?:[ \t\n\r\f\v]+|--[^\n\r]*[\n\r])*'")
_IDENT_BODY = re.compile(f'[^"]*(?:""[^"]*){{0,{_RUN}}}')
_COMMENT_EDGE = re.compile(r"/\*|\*/")
_ONLY_SPACE = re.compile(f"[{_SPACE}]*\\Z")

# psql tracks BEGIN/CASE/END only in statements that start CREATE [OR REPLACE]
# FUNCTION|PROCEDURE, keyed on the first letters of their first four words.
_ROUTINE_WORDS = {"create": "c", "function": "f", "procedure": "p", "or": "o", "replace": "r"}


@dataclass
class Span:
    """One statement, as character offsets into the scanned text."""

    start: int  # its first token
    end: int  # just past its `;`, or the end of the text
    words: tuple[str, ...]  # its first two words, upper-cased
    terminated: bool  # ended by `;`
    copy_stdio: bool = False  # COPY ... FROM STDIN / TO STDOUT: psql's inline data
    backslash: Optional[tuple[int, str]] = None  # (offset, text) of a psql meta-command
    unterminated: Optional[tuple[int, str]] = None  # (offset, what) left open at the end


@dataclass
class _State:
    start: int = -1
    words: list[str] = field(default_factory=list)
    collecting: bool = True
    identifiers: list[str] = field(default_factory=list)
    routine: Optional[bool] = None  # a CREATE FUNCTION/PROCEDURE? None: not known yet
    copy: bool = False
    previous_word: str = ""
    last_end: int = -1  # just past the last token seen
    copy_stdio: bool = False
    parens: int = 0
    begin_depth: int = 0
    backslash: Optional[tuple[int, str]] = None

    def word(self, value: str) -> None:
        upper = value.upper()
        if self.collecting and len(self.words) < 2:
            self.words.append(upper)
            self.collecting = len(self.words) < 2
        if len(self.identifiers) < 4:
            self.identifiers.append(_ROUTINE_WORDS.get(value.lower(), ""))
            self._decide_routine()
        if self.routine and self.parens == 0:
            if upper == "BEGIN":
                self.begin_depth += 1
            elif upper == "CASE" and self.begin_depth >= 1:
                self.begin_depth += 1
            elif upper == "END" and self.begin_depth > 0:
                self.begin_depth -= 1
        if self.copy:
            if (self.previous_word, upper) in {("FROM", "STDIN"), ("TO", "STDOUT")}:
                self.copy_stdio = True
        elif len(self.words) == 1 and upper == "COPY":
            self.copy = True
        self.previous_word = upper

    def _decide_routine(self) -> None:
        ids = self.identifiers + [""] * (4 - len(self.identifiers))
        if ids[0] == "c" and (ids[1] in ("f", "p") or (ids[1] == "o" and ids[2] == "r" and ids[3] in ("f", "p"))):
            self.routine = True
        elif len(self.identifiers) == 4 or ids[0] != "c" or (len(self.identifiers) >= 2 and ids[1] not in ("f", "p", "o")) \
                or (len(self.identifiers) >= 3 and ids[1] == "o" and ids[2] != "r"):
            self.routine = False

    @property
    def needs_every_token(self) -> bool:
        return self.routine is not False or self.copy or self.collecting

    def shifted(self, delta: int) -> "_State":
        """A copy, with its offsets moved by `delta` (the text before them was dropped)."""
        return replace(self, words=list(self.words), identifiers=list(self.identifiers),
                       start=self.start + delta, last_end=self.last_end + delta,
                       backslash=(self.backslash[0] + delta, self.backslash[1]) if self.backslash else None)


@dataclass(frozen=True)
class Checkpoint:
    """Where a scan cut short by the end of the text can resume: an offset between two tokens
    of an unfinished statement, and what the scan knew of that statement there."""

    pos: int
    state: _State

    def shifted(self, delta: int) -> "Checkpoint":
        return Checkpoint(self.pos + delta, self.state.shifted(delta))


# A checkpoint every so many characters of a statement, never closer to the end of the text
# than a token's lookahead (`U&'` decides a token by three characters).
CHECKPOINT_CHARS = 256 * 1024
_CHECKPOINT_MARGIN = 64


class Incomplete(Exception):
    """The text ended inside a statement, and more text may follow (streaming)."""

    def __init__(self, checkpoint: Optional[Checkpoint]):
        super().__init__()
        self.checkpoint = checkpoint


def scan(text: str, pos: int = 0, final: bool = True,
         resume: Optional[Checkpoint] = None) -> tuple[list[Span], int, Optional[Checkpoint]]:
    """The statements of `text` from `pos`, the offset where unconsumed text starts, and where
    the scan of the unfinished statement there may resume.

    With final=False, a statement that reaches the end of `text` without its `;` is not
    returned: the caller keeps `text[rest:]` and calls again with more text appended, passing
    the checkpoint (shifted by what it dropped) as `resume`.
    """
    spans: list[Span] = []
    length = len(text)
    while True:
        if final and _ONLY_SPACE.match(text, pos):  # the usual end of a file: no statement to look for
            return spans, length, None
        try:
            span = _statement(text, pos, length, final, resume)
        except Incomplete as stopped:
            return spans, pos, stopped.checkpoint
        resume = None
        if span is None:
            return spans, length if final else pos, None
        spans.append(span)
        pos = span.end


def _statement(text: str, pos: int, length: int, final: bool, resume: Optional[Checkpoint] = None) -> Optional[Span]:
    if resume is None:
        s = _State()
        checkpoint = None
    else:
        pos, s = resume.pos, resume.state.shifted(0)
        checkpoint = resume
    checked_at = pos
    token = _TOKEN.match
    boring = _BORING.match
    while pos < length:
        if pos - checked_at >= CHECKPOINT_CHARS and s.start >= 0 and length - pos > _CHECKPOINT_MARGIN:
            checkpoint, checked_at = Checkpoint(pos, s.shifted(0)), pos
        if s.start >= 0 and not s.needs_every_token:
            m = boring(text, pos)
            if m:
                pos = m.end()
                s.last_end = pos
                if pos >= length:
                    break
        m = token(text, pos)
        kind = m.lastgroup
        end = m.end()
        if kind == "space" or kind == "dash":
            pos = end
            continue
        if kind == "block":
            pos = _block_comment_end(text, end, length)
            if pos < 0:
                if not final:
                    raise Incomplete(checkpoint)
                return _open_at_end(s, text, m.start(), "/* comment", length)
            continue
        if s.start < 0:
            s.start = m.start()
        s.last_end = end
        if kind == "word":
            s.word(m.group())
        else:
            s.collecting = False
            if kind == "semicolon":
                if s.start == m.start():
                    s.start = -1  # an empty statement (`;;`): nothing to run, as for the parser
                elif s.parens == 0 and s.begin_depth == 0:
                    return Span(s.start, end, tuple(s.words), True, s.copy_stdio, s.backslash)
            elif kind == "open":
                s.parens += 1
            elif kind == "close":
                s.parens = max(0, s.parens - 1)
            elif kind in ("string", "estring", "ident", "dollar"):
                end = s.last_end = _literal_end(text, m, kind, length)
                if end < 0:
                    if not final:
                        raise Incomplete(checkpoint)
                    what = {"string": "quoted string", "estring": "quoted string",
                            "ident": "quoted identifier", "dollar": f"dollar-quoted string {m.group()}"}[kind]
                    return _open_at_end(s, text, m.start(), what, length)
            elif kind == "backslash" and s.backslash is None:
                s.backslash = (m.start(), m.group())
        pos = end
    if s.start < 0:
        return None
    if not final:
        raise Incomplete(checkpoint)
    end = s.last_end
    while end > s.start and text[end - 1] in _SPACE:  # a boring run may end in whitespace
        end -= 1
    return Span(s.start, end, tuple(s.words), False, s.copy_stdio, s.backslash)


def head_tokens(text: str, count: int) -> list[tuple[str, str]]:
    """The first `count` tokens of a statement as (kind, text), comments and spaces skipped;
    kind is word, ident (a quoted identifier), or other. For reading a statement's head."""
    found: list[tuple[str, str]] = []
    pos, length = 0, len(text)
    while pos < length and len(found) < count:
        m = _TOKEN.match(text, pos)
        kind, end = m.lastgroup, m.end()
        if kind == "block":
            end = _block_comment_end(text, end, length)
            if end < 0:
                break
        elif kind == "ident":
            end = _literal_end(text, m, kind, length)
            if end < 0:
                break
            found.append(("ident", text[m.start():end]))
        elif kind == "word":
            found.append(("word", m.group()))
        elif kind not in ("space", "dash"):
            found.append(("other", m.group()))
        pos = end
    return found


def _open_at_end(s: _State, text: str, offset: int, what: str, length: int) -> Span:
    start = s.start if s.start >= 0 else offset
    return Span(start, length, tuple(s.words), False, s.copy_stdio, s.backslash, unterminated=(offset, what))


def _block_comment_end(text: str, pos: int, length: int) -> int:
    """Offset just past the `*/` that closes a comment opened before `pos`; -1 if none."""
    depth = 1
    edge = _COMMENT_EDGE.search
    while True:
        m = edge(text, pos)
        if m is None:
            return -1
        pos = m.end()
        if m.group() == "/*":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos


def _literal_end(text: str, m: re.Match, kind: str, length: int) -> int:
    """Offset just past the literal that `m` opens; -1 when the text ends inside it."""
    pos = m.end()
    if kind == "dollar":
        tag = m.group()
        found = text.find(tag, pos)
        return -1 if found < 0 else found + len(tag)
    if kind == "ident":
        return _closing_quote(text, pos, length, _IDENT_BODY, '"')
    body = _ESCAPE_STRING_BODY if kind == "estring" else _STRING_BODY
    while True:
        pos = _closing_quote(text, pos, length, body, "'")
        if pos < 0:
            return -1
        more = _QUOTE_CONTINUE.match(text, pos)
        if more is None:
            return pos
        pos = more.end()


def _closing_quote(text: str, pos: int, length: int, body: re.Pattern, quote: str) -> int:
    """Offset just past the quote that closes a literal whose body starts at `pos`; -1 if none.

    `body` stops before a quote that may close it, or after its bounded number of doubled
    quotes or backslash escapes, where this loop carries on."""
    while True:
        pos = body.match(text, pos).end()
        if pos >= length:
            return -1
        if text[pos] != quote:  # a backslash escape after the bounded run: skip the pair
            pos += 2
        elif text.startswith(quote, pos + 1):  # a doubled quote after the bounded run
            pos += 2
        else:
            return pos + 1


def without_comments(text: str) -> str:
    """The text with each comment replaced by a space; strings, quoted identifiers and dollar
    bodies kept whole. Token by token: for the rare statement that needs a closer look."""
    kept: list[str] = []
    copied = pos = 0
    length = len(text)
    while pos < length:
        m = _TOKEN.match(text, pos)
        kind = m.lastgroup
        if kind in ("dash", "block"):
            end = m.end() if kind == "dash" else _block_comment_end(text, m.end(), length)
            end = length if end < 0 else end
            kept += [text[copied:m.start()], " "]
            copied = pos = end
        elif kind in ("string", "estring", "ident", "dollar"):
            end = _literal_end(text, m, kind, length)
            pos = length if end < 0 else end
        else:
            pos = m.end()
    kept.append(text[copied:])
    return "".join(kept)
