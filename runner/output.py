"""What the runner prints: one line per event, as text for people or JSON for log collectors.

The JSON form is a stable interface (README, "JSON log schema"): every line is one object
with `time`, `level`, `event` and `message` (the text line), plus the fields EVENTS lists
for that event, always all of them. Failures are the event `failed`, with a stable
`error` name, `exit_code`, and `hint` apart from `message`. In JSON mode nothing else is
printed: Python warnings become `warning` events, and an unexpected exception a `failed`
event whose `traceback` field holds the traceback.

Every line, JSON field and termination message passes through `Reporter.secrets` on its
way out: whatever path a message took, the password is not in it.
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, TextIO

from runner.redaction import Secrets

# Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_LOG_LIMIT = 4000

# event -> (level, text template, fields). Templates may use the fields and `s_<field>`
# (an "s" when that count is not 1).
EVENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "directory": ("info", "migrations: {directory} ({count} file{s_count})", ("directory", "count")),
    "conflict": ("warning", "WARNING: {migration} differs between {replaced} and {kept}; using {kept}",
                 ("migration", "replaced", "kept")),
    "connect_retry": ("info", "waiting for database {database}: {reason} (attempt {attempt}, next in {retry_in_s:.1f}s)",
                      ("database", "reason", "attempt", "retry_in_s")),
    "connected": ("info", "connected to {database}", ("database",)),
    "lock_wait": ("info", "another run holds the migration lock; waiting up to {wait_s:g}s", ("wait_s",)),
    "lock_acquired": ("info", "migration lock acquired", ()),
    "table_adopted": ("info", "schema_migrations: added columns {columns_text}", ("columns",)),
    "checksums_recorded": ("info", "recorded checksums of {count} migration{s_count} applied before checksums were kept",
                           ("count",)),
    "changed_accepted": ("warning", "WARNING: {migration} changed after it was applied; accepted (--accept-changed), "
                         "new checksum recorded", ("migration",)),
    "missing": ("warning", "WARNING: {migration} is recorded as applied but its file is gone", ("migration",)),
    "out_of_order": ("warning", "WARNING: {migration} is older than {newest_applied}, which is already applied; "
                     "applying it (out of order allowed)", ("migration", "newest_applied")),
    # rolled_back: "migration" (a transactional file, retried whole), "block" (a transaction block of a
    # no-transaction file, retried from its BEGIN, block_start), "nothing" (a no-transaction statement).
    "lock_timeout_retry": ("warning", "{reason} in {migration}{undone_text}, retrying{retried_text} in "
                           "{retry_in_s:g}s{blockers_text}",
                           ("migration", "attempt", "retry_in_s", "sqlstate", "blockers", "statement", "rolled_back",
                            "block_start", "left_behind")),
    "would_apply": ("info", "would apply {migration} ({statements} statement{s_statements}, {mode})",
                    ("migration", "statements", "transaction")),
    "applied": ("info", "applied {migration} ({statements} statement{s_statements}, {duration_ms} ms{attempts_text})",
                ("migration", "statements", "duration_ms", "attempts")),
    "baselined": ("info", "recorded {migration} as applied without running it", ("migration",)),
    "renamed": ("info", "renamed {old} to {new} in schema_migrations", ("old", "new")),
    "objects_missing": ("warning", "MISSING: {migration} is recorded, and {objects_text}", ("migration", "objects")),
    "migration_state": ("info", "{migration}  {state}", ("migration", "state")),
    "note": ("info", "{text}", ("text",)),
    "warning": ("warning", "WARNING: {text}", ("text", "category")),
    # The last line of a successful command; its message is the command's own sentence.
    "summary": ("info", "", ("command", "counts", "duration_ms")),
}


_RETRIED_REASONS = {"55P03": "lock timeout", "40P01": "deadlock", "40001": "serialization failure"}


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Reporter:
    def __init__(self, log_format: str = "text", out: Optional[TextIO] = None, err: Optional[TextIO] = None,
                 secrets: Optional[Secrets] = None):
        self.log_format = log_format
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.secrets = secrets or Secrets()

    def capture_warnings(self) -> None:
        """Library warnings as events, so JSON mode prints nothing but JSON."""
        def show(message, category, filename, lineno, file=None, line=None):
            self.event("warning", text=str(message), category=category.__name__)

        warnings.showwarning = show

    def event(self, name: str, **fields) -> None:
        level, template, expected = EVENTS[name]
        if set(fields) != set(expected):
            raise ValueError(f"event {name} takes {sorted(expected)}, got {sorted(fields)}")
        message = template.format(**fields, **_text_helpers(fields))
        if self.log_format == "json":
            self._json(self.out, dict({"level": level, "event": name, "message": message}, **fields))
        else:
            self._print(self.out, message)

    def summary(self, command: str, text: str, counts: dict, duration_ms: int) -> None:
        if self.log_format == "json":
            self._json(self.out, {"level": "info", "event": "summary", "message": text, "command": command,
                                  "counts": counts, "duration_ms": duration_ms})
        else:
            self._print(self.out, text)

    def line(self, text: str) -> None:
        """Free-form output of a text-mode command (status tables)."""
        self._print(self.out, text)

    def failure(self, error: str, message: str, exit_code: int, hint: Optional[str], **fields) -> None:
        if self.log_format == "json":
            record = {"level": "error", "event": "failed", "error": error, "exit_code": exit_code,
                      "message": message, "hint": hint or ""}
            self._json(self.err, dict(record, **fields))
        else:
            self._print(self.err, f"ERROR: {message}")
            if hint:
                self._print(self.err, f"hint: {hint}")

    def bug(self, traceback_text: str, exit_code: int) -> None:
        """An unexpected exception: in JSON mode still one object per line."""
        if self.log_format == "json":
            last = traceback_text.strip().splitlines()[-1] if traceback_text.strip() else "unexpected error"
            self.failure("internal_error", f"unexpected error (a bug in the runner, please report it): {last}",
                         exit_code, "the traceback is in the `traceback` field", migration=None, statement=None,
                         line=None, sqlstate=None, traceback=traceback_text)
        else:
            self._print(self.err, traceback_text.rstrip("\n"))

    def termination_log(self, path: Optional[str], text: str) -> None:
        write_termination_log(path, self.secrets.redact(text))

    def _print(self, stream: TextIO, text: str) -> None:
        print(self.secrets.redact(text), file=stream, flush=True)

    def _json(self, stream: TextIO, fields: dict) -> None:
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        record.update(self.secrets.redact_fields(fields))
        print(json.dumps(record, default=str), file=stream, flush=True)


def _text_helpers(fields: dict) -> dict:
    helpers = {f"s_{k}": ("" if v == 1 else "s") for k, v in fields.items() if isinstance(v, int)}
    if "columns" in fields:
        helpers["columns_text"] = ", ".join(fields["columns"])
    if "objects" in fields:
        helpers["objects_text"] = f"{len(fields['objects'])} of the objects it creates are not in the database: " \
            + ", ".join(fields["objects"])
    if "blockers" in fields:
        helpers["blockers_text"] = "; blocked by " + "; ".join(fields["blockers"]) if fields["blockers"] else ""
    if "attempts" in fields:
        helpers["attempts_text"] = f", {fields['attempts']} attempts" if fields["attempts"] > 1 else ""
    if "sqlstate" in fields:
        helpers["reason"] = _RETRIED_REASONS.get(fields["sqlstate"], f"SQLSTATE {fields['sqlstate']}")
    if "rolled_back" in fields:
        helpers.update(_undone_text(fields))
    if "transaction" in fields:
        helpers["mode"] = "in one transaction" if fields["transaction"] else "without a transaction"
    return helpers


def _undone_text(fields: dict) -> dict:
    """What a retried attempt undid, said truthfully: a statement run without a transaction is
    not rolled back, and what it left behind is named."""
    rolled_back, at = fields["rolled_back"], f" at statement {fields['statement']}"
    if rolled_back == "migration":
        return {"undone_text": f"; attempt {fields['attempt']} rolled back", "retried_text": ""}
    if rolled_back == "block":
        return {"undone_text": f"{at}; the transaction block begun at statement {fields['block_start']} was rolled back",
                "retried_text": " it"}
    left = "".join(f"; it left {what}" for what in fields["left_behind"])
    return {"undone_text": f"{at} (no transaction: the statements before it stay applied{left})", "retried_text": " it"}


def write_termination_log(path: Optional[str], text: str) -> None:
    """Leave a short summary where Kubernetes reads a container's termination message."""
    if not path:
        return
    target = Path(path)
    if not target.exists():
        return
    data = text.encode("utf-8")[:TERMINATION_LOG_LIMIT].decode("utf-8", errors="ignore")
    try:
        target.write_text(data, encoding="utf-8")
    except OSError:
        pass  # a read-only or odd mount must not turn success into failure
