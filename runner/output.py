"""What the runner prints: one line per event, as text for people or JSON for log collectors."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, TextIO

# Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_LOG_LIMIT = 4000

_TEXT = {
    "directory": "migrations: {directory} ({count} files)",
    "connect_retry": "waiting for database {database}: {reason} (attempt {attempt}, next in {retry_in_s:.1f}s)",
    "connected": "connected to {database}",
    "lock_wait": "another run holds the migration lock; waiting up to {wait_s:g}s",
    "lock_acquired": "migration lock acquired",
    "table_adopted": "schema_migrations: added columns {columns}",
    "checksums_recorded": "recorded checksums of {count} migrations applied before checksums were kept",
    "changed_accepted": "WARNING: {migration} changed after it was applied; accepted (--accept-changed), new checksum recorded",
    "missing": "WARNING: {migration} is recorded as applied but its file is gone",
    "out_of_order": "WARNING: {migration} is older than migrations already applied; applying it now",
    "batch_fallback": "WARNING: {migration}: a statement failed to parse as split; running the file as one batch so PostgreSQL's parser decides",
    "lock_timeout_retry": "lock timeout in {migration} (statement {statement}); attempt {attempt} rolled back, retrying in {retry_in_s:g}s",
    "would_apply": "would apply {migration} ({statements} statements, {mode})",
    "applied": "applied {migration} ({statements} statements, {duration_ms} ms)",
    "summary": "{summary}",
    "migration_state": "{migration}  {state}",
}


class Reporter:
    def __init__(self, log_format: str = "text", out: Optional[TextIO] = None, err: Optional[TextIO] = None):
        self.log_format = log_format
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def event(self, name: str, **fields) -> None:
        if self.log_format == "json":
            level = "warning" if name in {"changed_accepted", "missing", "out_of_order", "batch_fallback", "lock_timeout_retry"} else "info"
            self._json(self.out, level, name, fields)
        else:
            print(_TEXT[name].format(**fields), file=self.out, flush=True)

    def line(self, text: str) -> None:
        """Free-form output of a command (status tables); plain in both formats."""
        print(text, file=self.out, flush=True)

    def failure(self, name: str, message: str, exit_code: int, **fields) -> None:
        if self.log_format == "json":
            self._json(self.err, "error", name, dict(fields, message=message, exit_code=exit_code))
        else:
            print(f"ERROR: {message}", file=self.err, flush=True)

    @staticmethod
    def _json(stream: TextIO, level: str, name: str, fields: dict) -> None:
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level, "event": name}
        record.update(fields)
        print(json.dumps(record, default=str), file=stream, flush=True)


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
