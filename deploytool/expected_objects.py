"""What each migration file creates, named by PostgreSQL's own parser (pglast).

For the take-over pre-flight: the old flow recorded files of which nothing ran, so a
recorded migration proves nothing. This side (where deploy.py runs, with pglast) turns the
files into a list of the objects each one leaves behind: tables, columns, indexes, views,
functions, triggers and policies, also those a DO block always makes; what cannot be named
(a file the parser cannot read, statements under a condition in a DO block, EXECUTE) is listed
per file as unchecked. The runner checks that list against the live database's catalog in the
cluster (`python -m runner verify FILE`), where the database is reachable and only Python and
psycopg2 are installed. An object a later file drops is expected of no file, one it renames
under its new name (the files are read in the runner's order).

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
from pglast.parser import ParseError, parse_plpgsql_json

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
        self.in_do_block: set[Key] = set()  # made by a statement inside a DO block, perhaps under a condition

    def on_table(self, schema: Optional[str], table: str) -> list[Key]:
        """Its columns, triggers, policies and indexes."""
        parts = [k for k in self.owner if k[2] == table and _same_schema(k[1], schema)]
        parts += [k for k, (s, t) in self.index_tables.items() if t == table and _same_schema(s, schema)]
        return parts

    def _remove(self, key: Key) -> None:
        self.owner.pop(key, None)
        self.index_tables.pop(key, None)
        self.in_do_block.discard(key)

    def _move(self, key: Key, to: Key) -> None:
        self.owner[to] = self.owner.pop(key)
        if key in self.index_tables:
            self.index_tables[to] = self.index_tables.pop(key)
        if key in self.in_do_block:
            self.in_do_block.discard(key)
            self.in_do_block.add(to)

    def forget(self, key: Key) -> None:
        for known in [k for k in self.owner if _same(k, key)]:
            self._remove(known)
            if known[0] == "table":  # what is on it goes with it
                for part in self.on_table(known[1], known[3]):
                    self._remove(part)

    def forget_schema(self, schema: str) -> None:
        for key in [k for k in self.owner if k[1] == schema or self.index_tables.get(k, (None,))[0] == schema]:
            self._remove(key)

    def rename(self, old: Key, new: Key) -> None:
        for known in [k for k in self.owner if _same(k, old)]:
            self._move(known, (new[0], known[1], new[2], new[3]))
            if known[0] == "table":  # what is on it stays on it, under its new name
                for part in self.on_table(known[1], known[3]):
                    if part[2] == known[3]:
                        self._move(part, (part[0], part[1], new[3], part[3]))
                    elif part in self.index_tables:
                        self.index_tables[part] = (self.index_tables[part][0], new[3])

    def apply(self, effects: _Effects, name: str, in_do_block: bool) -> None:
        for schema in effects.schemas_dropped:
            self.forget_schema(schema)
        for key in effects.dropped:
            self.forget(key)
        for old, new in effects.renamed:
            self.rename(old, new)
        for key in effects.created:
            self._remove(key)
            self.owner[key] = name
            if key in effects.index_tables:
                self.index_tables[key] = effects.index_tables[key]
            if in_do_block:
                self.in_do_block.add(key)


# PL/pgSQL statements whose body runs only under a condition, or as often as a query says.
_CONDITIONAL = {"PLpgSQL_stmt_if", "PLpgSQL_stmt_case", "PLpgSQL_stmt_loop", "PLpgSQL_stmt_while",
                "PLpgSQL_stmt_fori", "PLpgSQL_stmt_fors", "PLpgSQL_stmt_forc", "PLpgSQL_stmt_foreach_a",
                "PLpgSQL_stmt_dynfors"}


def _do_block(statement) -> tuple[list, list[str]]:
    """The statements a DO block always runs, as written (parsed), and what in it cannot be
    checked: statements under a condition (the app's `IF NOT EXISTS (column) THEN ADD COLUMN;
    CREATE INDEX` skips the index when the column came from elsewhere), statements built at
    run time (EXECUTE), a body in another language or one the parser cannot read. A block's
    exception handler does not make its statements conditional: one that swallows errors is
    what the take-over check is for."""
    options = {d.defname: d.arg.sval for d in statement.args or ()}
    language = options.get("language", "plpgsql")
    if language != "plpgsql":
        return [], [f"a DO block in {language}"]
    body = options.get("as", "")
    tag = "$pglast_do$"
    while tag in body:
        tag = tag[:-1] + "_$"
    try:
        tree = json.loads(parse_plpgsql_json(f"CREATE FUNCTION pg_temp.do_block() RETURNS void LANGUAGE plpgsql "
                                             f"AS {tag}{body}{tag}"))
    except ParseError as exc:
        return [], [f"a DO block PL/pgSQL's parser cannot read ({exc})"]
    always: list[str] = []
    conditional = dynamic = 0

    def walk(node, under_condition: bool) -> None:
        nonlocal conditional, dynamic
        if isinstance(node, list):
            for item in node:
                walk(item, under_condition)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "PLpgSQL_stmt_execsql":
                    if under_condition:
                        conditional += 1
                    else:
                        always.append(value["sqlstmt"]["PLpgSQL_expr"]["query"])
                elif key in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"):
                    dynamic += 1
                walk(value, under_condition or key in _CONDITIONAL)

    walk(tree, False)
    parsed, unchecked = [], []
    for query in always:
        try:
            parsed.extend(raw.stmt for raw in parse_sql(query))
        except ParseError as exc:
            unchecked.append(f"a statement in a DO block the parser cannot read ({exc})")
    if conditional:
        unchecked.append(f"{conditional} statement{'s' if conditional > 1 else ''} under a condition (IF, CASE or "
                         "a loop) in a DO block")
    if dynamic:
        unchecked.append(f"{dynamic} statement{'s' if dynamic > 1 else ''} run with EXECUTE in a DO block "
                         "(its objects cannot be named)")
    return parsed, unchecked


def expected(files: dict[str, str]) -> dict:
    """{"format": 1, "files": {name: {"sha256", "objects": [...], "unparsed": error or None}}}."""
    objects = _Objects()
    result: dict[str, dict] = {}
    for name in sorted(files, key=_order):
        text = files[name]
        entry = {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "objects": [], "unparsed": None,
                 "unchecked": []}
        result[name] = entry
        try:
            statements = parse_sql(text)
        except ParseError as exc:
            entry["unparsed"] = str(exc)
            continue
        for raw in statements:
            if type(raw.stmt).__name__ == "DoStmt":
                inner, unchecked = _do_block(raw.stmt)
                entry["unchecked"].extend(unchecked)
                for statement in inner:
                    objects.apply(_effects(statement), name, in_do_block=True)
            else:
                objects.apply(_effects(raw.stmt), name, in_do_block=False)
    for key, name in objects.owner.items():
        kind, schema, table, object_name = key
        found = {"kind": kind, "schema": schema, "table": table, "name": object_name}
        if key in objects.in_do_block:
            found["in_do_block"] = True
        result[name]["objects"].append(found)
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
