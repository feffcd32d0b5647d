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
from dataclasses import dataclass, field
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


@dataclass
class _Effects:
    """What one statement does to the objects the files have made so far."""

    created: list[Key] = field(default_factory=list)
    dropped: list[Key] = field(default_factory=list)
    renamed: list[tuple[Key, Key]] = field(default_factory=list)
    schemas_dropped: list[str] = field(default_factory=list)
    index_tables: dict[Key, tuple[Optional[str], str]] = field(default_factory=dict)  # created index -> its table


# RenameStmt of an object whose name alone (with its schema) says which it is.
_RENAMED_RELATIONS = {ObjectType.OBJECT_TABLE: "table", ObjectType.OBJECT_INDEX: "index", ObjectType.OBJECT_VIEW: "view"}
# RenameStmt of an object named within its table.
_RENAMED_ON_TABLE = {ObjectType.OBJECT_COLUMN: "column", ObjectType.OBJECT_POLICY: "policy",
                     ObjectType.OBJECT_TRIGGER: "trigger"}


def _effects(statement) -> _Effects:
    kind = type(statement).__name__
    effects = _Effects()
    created, dropped = effects.created, effects.dropped
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
        key = ("index", statement.relation.schemaname, None, statement.idxname)
        created.append(key)
        effects.index_tables[key] = _relation(statement.relation)
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
    elif kind == "DropStmt" and statement.removeType == ObjectType.OBJECT_SCHEMA:
        effects.schemas_dropped.extend(_names(statement.objects or ()))
    elif kind == "DropStmt":
        dropped.extend(_dropped(statement))
    elif kind == "RenameStmt":
        effects.renamed.extend(_renamed(statement))
    return effects


def _renamed(statement) -> list[tuple[Key, Key]]:
    if statement.renameType in _RENAMED_RELATIONS and statement.relation is not None:
        kind = _RENAMED_RELATIONS[statement.renameType]
        schema, name = _relation(statement.relation)
        return [((kind, schema, None, name), (kind, schema, None, statement.newname))]
    if statement.renameType in _RENAMED_ON_TABLE and statement.relation is not None:
        kind = _RENAMED_ON_TABLE[statement.renameType]
        schema, table = _relation(statement.relation)
        return [((kind, schema, table, statement.subname), (kind, schema, table, statement.newname))]
    if statement.renameType == ObjectType.OBJECT_FUNCTION:
        schema, name = _qualified(statement.object.objname)
        return [(("function", schema, None, name), ("function", schema, None, statement.newname))]
    return []


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
    return a[0] == b[0] and a[2] == b[2] and a[3] == b[3] and _same_schema(a[1], b[1])


def _same_schema(a: Optional[str], b: Optional[str]) -> bool:
    return a is None or b is None or a == b


def _order(name: str) -> tuple[int, str]:
    match = _VERSION.match(name)
    return (int(match.group(1)) if match else -1), name


class _Objects:
    """The objects the files leave behind so far, each with the file that made it."""

    def __init__(self) -> None:
        self.owner: dict[Key, str] = {}
        self.index_tables: dict[Key, tuple[Optional[str], str]] = {}

    def on_table(self, schema: Optional[str], table: str) -> list[Key]:
        """Its columns, triggers, policies and indexes."""
        parts = [k for k in self.owner if k[2] == table and _same_schema(k[1], schema)]
        parts += [k for k, (s, t) in self.index_tables.items() if t == table and _same_schema(s, schema)]
        return parts

    def forget(self, key: Key) -> None:
        for known in [k for k in self.owner if _same(k, key)]:
            del self.owner[known]
            self.index_tables.pop(known, None)
            if known[0] == "table":  # what is on it goes with it
                for part in self.on_table(known[1], known[3]):
                    self.owner.pop(part, None)
                    self.index_tables.pop(part, None)

    def forget_schema(self, schema: str) -> None:
        for key in [k for k in self.owner if k[1] == schema or self.index_tables.get(k, (None,))[0] == schema]:
            del self.owner[key]
            self.index_tables.pop(key, None)

    def rename(self, old: Key, new: Key) -> None:
        for known in [k for k in self.owner if _same(k, old)]:
            moved = (new[0], known[1], new[2], new[3])
            self.owner[moved] = self.owner.pop(known)
            if known in self.index_tables:
                self.index_tables[moved] = self.index_tables.pop(known)
            if known[0] == "table":  # what is on it stays on it, under its new name
                for part in self.on_table(known[1], known[3]):
                    if part[2] == known[3]:
                        self.owner[(part[0], part[1], new[3], part[3])] = self.owner.pop(part)
                    if part in self.index_tables:
                        self.index_tables[part] = (self.index_tables[part][0], new[3])

    def add(self, key: Key, name: str, table: Optional[tuple[Optional[str], str]]) -> None:
        self.owner[key] = name
        if table is not None:
            self.index_tables[key] = table


def expected(files: dict[str, str]) -> dict:
    """{"format": 1, "files": {name: {"sha256", "objects": [...], "unparsed": error or None}}}."""
    objects = _Objects()
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
            effects = _effects(raw.stmt)
            for schema in effects.schemas_dropped:
                objects.forget_schema(schema)
            for key in effects.dropped:
                objects.forget(key)
            for old, new in effects.renamed:
                objects.rename(old, new)
            for key in effects.created:
                objects.add(key, name, effects.index_tables.get(key))
    for key, name in objects.owner.items():
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
