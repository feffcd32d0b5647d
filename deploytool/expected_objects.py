"""What each migration file creates, named by PostgreSQL's own parser (pglast).

For the take-over pre-flight: the old flow recorded files of which nothing ran, so a
recorded migration proves nothing. This side (where deploy.py runs, with pglast) turns the
files into a list of the objects each one leaves behind: tables, columns, indexes, views,
functions, triggers and policies. The runner checks that list against the live database's
catalog in the cluster (`python -m runner verify FILE`), where the database is reachable and
only Python and psycopg2 are installed. An object a later file drops or renames is expected of
no file (the files are read in the runner's order).

`python -m deploytool.expected_objects DIR[:DIR...] > expected.json` writes the list.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Optional

from pglast import parse_sql
from pglast.enums import AlterTableType, ObjectType
from pglast.parser import ParseError

FORMAT = 1
_VERSION = re.compile(r"^(\d+)")

Key = tuple  # (kind, schema, table-or-None, name)


def _names(nodes) -> list[str]:
    return [getattr(n, "sval", None) or str(n) for n in nodes]


def _qualified(nodes) -> tuple[Optional[str], str]:
    names = _names(nodes)
    return (names[-2] if len(names) > 1 else None), names[-1]


def _relation(range_var) -> tuple[Optional[str], str]:
    return range_var.schemaname, range_var.relname


def _effects(statement) -> tuple[list[Key], list[Key]]:
    """(created, dropped) object keys of one statement."""
    kind = type(statement).__name__
    created: list[Key] = []
    dropped: list[Key] = []
    if kind == "CreateStmt":
        schema, table = _relation(statement.relation)
        created.append(("table", schema, None, table))
        for element in statement.tableElts or ():
            if type(element).__name__ == "ColumnDef":
                created.append(("column", schema, table, element.colname))
    elif kind == "AlterTableStmt" and statement.objtype == ObjectType.OBJECT_TABLE:
        schema, table = _relation(statement.relation)
        for command in statement.cmds or ():
            if command.subtype == AlterTableType.AT_AddColumn:
                created.append(("column", schema, table, command.def_.colname))
            elif command.subtype == AlterTableType.AT_DropColumn:
                dropped.append(("column", schema, table, command.name))
    elif kind == "IndexStmt" and statement.idxname:
        created.append(("index", statement.relation.schemaname, None, statement.idxname))
    elif kind == "ViewStmt":
        created.append(("view", *_relation(statement.view)[:1], None, statement.view.relname))
    elif kind == "CreateFunctionStmt":
        schema, name = _qualified(statement.funcname)
        created.append(("function", schema, None, name))
    elif kind == "CreateTrigStmt":
        schema, table = _relation(statement.relation)
        created.append(("trigger", schema, table, statement.trigname))
    elif kind == "CreatePolicyStmt":
        schema, table = _relation(statement.table)
        created.append(("policy", schema, table, statement.policy_name))
    elif kind == "DropStmt":
        dropped.extend(_dropped(statement))
    elif kind == "RenameStmt" and statement.relation is not None:
        schema, table = _relation(statement.relation)
        if statement.renameType == ObjectType.OBJECT_COLUMN:
            dropped.append(("column", schema, table, statement.subname))
            created.append(("column", schema, table, statement.newname))
        elif statement.renameType == ObjectType.OBJECT_TABLE:
            dropped.append(("table", schema, None, table))
            created.append(("table", schema, None, statement.newname))
    return created, dropped


_DROPPED_KINDS = {ObjectType.OBJECT_TABLE: "table", ObjectType.OBJECT_INDEX: "index", ObjectType.OBJECT_VIEW: "view",
                  ObjectType.OBJECT_FUNCTION: "function", ObjectType.OBJECT_POLICY: "policy",
                  ObjectType.OBJECT_TRIGGER: "trigger"}


def _dropped(statement) -> list[Key]:
    kind = _DROPPED_KINDS.get(statement.removeType)
    if kind is None:
        return []
    keys = []
    for target in statement.objects or ():
        if kind == "function":
            schema, name = _qualified(target.objname)
            keys.append((kind, schema, None, name))
        elif kind in ("policy", "trigger"):
            *table_names, name = _names(target)
            schema, table = (table_names[-2] if len(table_names) > 1 else None), table_names[-1]
            keys.append((kind, schema, table, name))
        else:
            schema, name = _qualified(target)
            keys.append((kind, schema, None, name))
    return keys


def _same(a: Key, b: Key) -> bool:
    """Unqualified names match any schema: the files mostly leave it to search_path."""
    return a[0] == b[0] and a[2] == b[2] and a[3] == b[3] and (a[1] is None or b[1] is None or a[1] == b[1])


def _order(name: str) -> tuple[int, str]:
    match = _VERSION.match(name)
    return (int(match.group(1)) if match else -1), name


def expected(files: dict[str, str]) -> dict:
    """{"format": 1, "files": {name: {"sha256", "objects": [...], "unparsed": error or None}}}."""
    owner: dict[Key, str] = {}
    result: dict[str, dict] = {}
    for name in sorted(files, key=_order):
        text = files[name]
        entry = {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "objects": [], "unparsed": None}
        result[name] = entry
        try:
            statements = parse_sql(text)
        except ParseError as exc:
            entry["unparsed"] = str(exc)
            continue
        for raw in statements:
            created, dropped = _effects(raw.stmt)
            for key in dropped:
                for known in [k for k in owner if _same(k, key)]:
                    del owner[known]
                    if key[0] == "table":  # its columns, triggers and policies go with it
                        for part in [k for k in owner if k[2] == key[3] and k[1] in (None, key[1])]:
                            del owner[part]
            for key in created:
                owner[key] = name
    for key, name in owner.items():
        kind, schema, table, object_name = key
        result[name]["objects"].append({"kind": kind, "schema": schema, "table": table, "name": object_name})
    return {"format": FORMAT, "files": result}


def read_directories(directories: list[Path]) -> dict[str, str]:
    """The files as the runner sees them: several directories, a later one winning on equal names."""
    files: dict[str, str] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.sql")):
            files[path.name] = path.read_text(encoding="utf-8-sig")
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploytool.expected_objects DIR[:DIR...] > expected.json", file=sys.stderr)
        return 2
    directories = [Path(d) for d in argv[0].split(":") if d]
    missing = [str(d) for d in directories if not d.is_dir()]
    if missing:
        print(f"ERROR: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    json.dump(expected(read_directories(directories)), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
