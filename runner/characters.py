"""Characters the database's encoding cannot store, found in the text that was sent.

The files are UTF-8 and the runner always talks UTF-8 to the server. A database in another
encoding (LATIN1, WIN1252, ...) converts the whole query text on arrival, comments
included, and refuses a character it has no equivalent for (SQLSTATE 22P05) before
parsing anything, so the error carries no position. Its message names the character's
bytes; finding them in the text gives the line, as psql's error would.
"""

from __future__ import annotations

import re
from typing import Optional

UNTRANSLATABLE = "22P05"
_BYTES = re.compile(r'byte sequence ((?:0x[0-9a-f]{2}\s*)+) in encoding "UTF8" has no equivalent in encoding "([^"]+)"',
                    re.I)


def untranslatable(message: str) -> Optional[tuple[str, str]]:
    """(the character, the database's encoding) named by a 22P05 message, or None."""
    match = _BYTES.search(message or "")
    if not match:
        return None
    raw = bytes(int(b, 16) for b in match.group(1).split())
    return raw.decode("utf-8", errors="replace"), match.group(2)


def offset_in(message: str, text: str) -> Optional[int]:
    """Where in `text` the character a 22P05 message names first appears, or None."""
    found = untranslatable(message)
    if found is None:
        return None
    offset = text.find(found[0])
    return offset if offset >= 0 else None


def hint(message: str) -> str:
    found = untranslatable(message)
    character, encoding = found if found else ("this character", "its encoding")
    return (f"the database stores text as {encoding}, which has no {character!r} (U+{ord(character[0]):04X}); "
            "the server converts the whole migration text, comments included: remove or replace the character, "
            "or use a database created with ENCODING 'UTF8'") if found else (
            "the database's encoding cannot store a character of this migration; remove or replace it")
