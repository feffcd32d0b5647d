"""Recorded migrations whose objects are not in the database, and re-applying them.

The old flow recorded files of which nothing ran (its script rolled a failing file back
and meant to record it anyway; a hand-run Job recorded every file). `verify` reads a list
of the objects each file creates (deploytool.expected_objects, made where pglast is, from
the same files) and checks every recorded file's objects in the catalog: read-only, no
lock. `reapply FILE` runs a recorded file again in one transaction with its record, so it
either completes or leaves the database and the record as they were.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Mapping, Sequence

import psycopg2

from runner import history, lock
from runner.errors import EXIT_DRIFT, EXIT_OK, LockLost, MigrationFailed, UsageError
from runner.executor import RESET_SESSION
from runner.migration import Migration, checksum
from runner.output import Reporter, plural
from runner.statements import line_at, split

# Each returns one row when the object exists. %(schema)s NULL: anywhere on the search_path.
_RELATION = "to_regclass(CASE WHEN %(schema)s::text IS NULL THEN quote_ident(%(name)s) ELSE format('%%I.%%I', %(schema)s::text, %(name)s) END)"
_TABLE = _RELATION.replace("%(name)s", "%(table)s")
_EXISTS = {
    "table": f"SELECT 1 WHERE {_RELATION} IS NOT NULL",
    "view": f"SELECT 1 WHERE {_RELATION} IS NOT NULL",
    "index": f"SELECT 1 WHERE {_RELATION} IS NOT NULL",
    "column": f"SELECT 1 FROM pg_attribute WHERE attrelid = {_TABLE} AND attname = %(name)s AND NOT attisdropped",
    "policy": f"SELECT 1 FROM pg_policy WHERE polrelid = {_TABLE} AND polname = %(name)s",
    "trigger": f"SELECT 1 FROM pg_trigger WHERE tgrelid = {_TABLE} AND tgname = %(name)s",
    "function": "SELECT 1 FROM pg_proc WHERE proname = %(name)s AND CASE WHEN %(schema)s::text IS NULL "
                "THEN pronamespace = ANY (current_schemas(false)::regnamespace[]) "
                "ELSE pronamespace = to_regnamespace(quote_ident(%(schema)s::text)) END",  # NULL: no such schema
}


def describe(obj: Mapping) -> str:
    where = ".".join(p for p in (obj.get("schema"), obj.get("table")) if p)
    name = f"{obj['schema']}.{obj['name']}" if obj.get("schema") and not obj.get("table") else obj["name"]
    return (f"{obj['kind']} {name}" + (f" on {where}" if where and obj.get("table") else "")
            + (" (in a DO block)" if obj.get("in_do_block") else ""))


def load_expected(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the expected objects {path}: {exc}",
                         hint="make it with `python -m deploytool.expected_objects DIR[:DIR...]`") from None
    if data.get("format") != 1 or not isinstance(data.get("files"), dict):
        raise UsageError(f"{path} is not an expected-objects list (format 1)")
    return data["files"]


def unchecked(entry: Mapping) -> list[str]:
    """What of a file the list could not name objects for."""
    if entry.get("unparsed"):
        return [f"PostgreSQL's parser cannot read it ({entry['unparsed']})"]
    return list(entry.get("unchecked") or ())


def missing_objects(cursor, rows: dict[str, history.AppliedRow], expected: dict) -> tuple[dict[str, list[str]], list[str]]:
    """(recorded file -> its missing objects, recorded files the list does not know)."""
    missing: dict[str, list[str]] = {}
    unknown = []
    for row_name in sorted(rows):
        name = row_name if row_name.endswith(".sql") else row_name + ".sql"
        entry = expected.get(name)
        if entry is None:
            unknown.append(row_name)
            continue
        gone = []
        for obj in entry["objects"]:
            cursor.execute(_EXISTS[obj["kind"]], {"schema": obj.get("schema"), "table": obj.get("table"),
                                                  "name": obj["name"]})
            if cursor.fetchone() is None:
                gone.append(describe(obj))
        if gone:
            missing[name] = gone
    return missing, unknown


def verify(session, expected_path: str, migrations: Sequence[Migration], reporter: Reporter):
    """Returns (exit code, summary text, counts)."""
    expected = load_expected(expected_path)
    on_disk = {m.name: m.checksum for m in migrations}
    for name, entry in expected.items():
        if name in on_disk and on_disk[name] != entry.get("sha256"):
            reporter.event("note", text=f"{name}: the expected objects were read from another version of the file "
                                        "than the one here; its objects may differ")
    # The migration session: objects named without a schema are looked up on the search_path the
    # migrations ran with, which the runner's own session does not have.
    with session.migrations().cursor() as cursor:
        rows = history.load_if_present(cursor)
        missing, unknown = missing_objects(cursor, rows, expected)
    for name in unknown:
        reporter.event("note", text=f"{name} is recorded but not in {Path(expected_path).name}: not checked")
    partly = 0
    for name in sorted({row_name if row_name.endswith(".sql") else row_name + ".sql" for row_name in rows}):
        gaps = unchecked(expected.get(name) or {})
        partly += bool(gaps)
        for what in gaps:
            reporter.event("note", text=f"{name}: not checked: {what}")
    for name, objects in missing.items():
        reporter.event("objects_missing", migration=name, objects=objects)
    counts = {"recorded": len(rows), "incomplete_files": len(missing),
              "missing_objects": sum(len(o) for o in missing.values()), "partly_checked_files": partly}
    if not missing:
        text = f"every object of the {plural(len(rows), 'recorded migration')} is in the database"
        if partly:
            text = (f"every object named in the {plural(len(rows), 'recorded migration')} is in the database; "
                    f"{plural(partly, 'file')} could be checked only in part (above)")
        return EXIT_OK, text, counts
    return EXIT_DRIFT, (f"{plural(len(missing), 'recorded migration')} left objects out "
                        f"({plural(counts['missing_objects'], 'object')}); apply each again with "
                        "`python -m runner reapply FILE`, or restore what is missing by hand"), counts


def reapply(session, tracking: history.Tracking, migration: Migration, reporter: Reporter) -> int:
    """Run a recorded migration again, with its record, in one transaction; returns its duration."""
    if not migration.transactional:
        raise UsageError(f"{migration.name} is a no-transaction migration; it cannot be re-applied atomically",
                         hint="run its statements by hand, then leave its record as it is")
    text = migration.text
    started = time.monotonic()
    connection = session.migrations()  # never the lock session: a migration must not be able to release the lock
    with connection.cursor() as cursor:
        rows = tracking.load(cursor)
        row = history.lookup(rows, migration.name)
        if row is None:
            raise UsageError(f"{migration.name} is not recorded; `python -m runner` applies it",
                             hint="see `python -m runner status`")
        cursor.execute("BEGIN")
        try:
            tracking.forget(cursor, row.name)
            try:
                cursor.execute(text)
            except psycopg2.Error as exc:
                position = int(exc.diag.statement_position or 0)
                parts = split(migration.name, text)
                line = line_at(text, position - 1) if position else None
                failed = [p for p in parts if line is None or p.line <= line][-1:] or parts[:1]
                failure = MigrationFailed(
                    file=migration.name, statement_number=failed[0].number if position else 0,
                    statement_count=len(parts), line=line, sqlstate=exc.pgcode, statement=failed[0].text if position else "",
                    server_message=exc.diag.message_primary or str(exc).strip(), detail=exc.diag.message_detail,
                    hint=exc.diag.message_hint,
                )
                failure.outcome = "it was rolled back; the database and its record are as they were"
                failure.message = failure._render().replace(
                    "before its first statement ran (while opening its transaction)",
                    "when run again (PostgreSQL named no position)")
                raise failure from None
            cursor.execute(history.RESET_SESSION)
            # The checksum of the text that ran, read just now (the file may have changed since it was listed).
            ran = checksum(text)
            cursor.execute(tracking.record_sql(cursor, migration.name, ran, 0))
            cursor.execute(f"SELECT ({tracking.landed_sql(cursor, migration.name, ran)}), "
                           f"({lock.held_by_sql(session.connection.get_backend_pid())})")
            landed, locked = cursor.fetchone()
            if not (landed and locked):
                raise (history.tracking_not_landed(tracking, f"{migration.name} ran again, but its row",
                                                   "it was rolled back") if locked else
                       LockLost(f"lost the migration lock while re-applying {migration.name}; it was rolled back",
                                hint="run it again"))
            cursor.execute(f"COMMIT; {RESET_SESSION}")
        except BaseException:
            if not connection.closed:
                cursor.execute("ROLLBACK")
                cursor.execute(RESET_SESSION)
            raise
    elapsed = int((time.monotonic() - started) * 1000)
    reporter.event("applied", migration=migration.name, statements=0, duration_ms=elapsed, attempts=1)
    return elapsed
