"""A deterministic, realistic migration history: tables, columns, indexes, functions,
DO blocks, views and some data."""

from __future__ import annotations

from pathlib import Path


def migration(i: int) -> str:
    kind = i % 5
    table = f"t_{i - kind:05d}"  # every group of five works on the table its first file made
    if kind == 0:
        return (
            f"-- table {table}\n"
            f"CREATE TABLE {table} (\n    id bigserial PRIMARY KEY,\n    name text NOT NULL,\n"
            f"    created_at timestamptz NOT NULL DEFAULT now(),\n    payload jsonb NOT NULL DEFAULT '{{}}'\n);\n"
            f"COMMENT ON TABLE {table} IS 'generated table {i}; used by the benchmark';\n"
            f"CREATE INDEX {table}_created_idx ON {table} (created_at);\n"
        )
    if kind == 1:
        return (
            f"ALTER TABLE {table} ADD COLUMN score_{i} integer NOT NULL DEFAULT 0;\n"
            f"CREATE INDEX {table}_score_{i}_idx ON {table} (score_{i}) WHERE score_{i} > 0;\n"
            f"COMMENT ON COLUMN {table}.score_{i} IS 'score; never negative';\n"
        )
    if kind == 2:
        return (
            f"CREATE OR REPLACE FUNCTION {table}_touch_{i}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n    NEW.payload := NEW.payload || jsonb_build_object('touched', now()::text);\n"
            "    RETURN NEW;\nEND;\n$$;\n"
            f"CREATE TRIGGER {table}_touch_{i} BEFORE UPDATE ON {table}\n"
            f"    FOR EACH ROW EXECUTE FUNCTION {table}_touch_{i}();\n"
        )
    if kind == 3:
        return (
            f"INSERT INTO {table} (name, payload)\n"
            f"SELECT 'row ' || g, jsonb_build_object('n', g) FROM generate_series(1, 200) AS g;\n"
            f"UPDATE {table} SET score_{i - 2} = id % 7 WHERE id % 3 = 0;\n"
            "DO $$\nBEGIN\n"
            f"    IF (SELECT count(*) FROM {table}) < 200 THEN\n"
            f"        RAISE EXCEPTION 'seed of {table} incomplete';\n    END IF;\nEND\n$$;\n"
        )
    return (
        f"CREATE VIEW {table}_summary AS\n"
        f"SELECT date_trunc('day', created_at) AS day, count(*) AS rows, sum(score_{i - 3}) AS score\n"
        f"FROM {table} GROUP BY 1;\n"
        f"COMMENT ON VIEW {table}_summary IS 'daily rows and score of {table}';\n"
    )


def name(i: int) -> str:
    return f"{20250101000000 + i}_step_{i:05d}.sql"


def write(directory: Path, count: int, dbmate: bool = False) -> list[Path]:
    """`count` migrations; with dbmate=True, in dbmate's format (an `-- migrate:up` section)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = directory / name(i)
        text = migration(i)
        path.write_text(f"-- migrate:up\n{text}\n-- migrate:down\n" if dbmate else text)
        paths.append(path)
    return paths


def trivial(directory: Path, count: int, dbmate: bool = False) -> None:
    """Files of one cheap statement each: a long history, or the runner's cost per file laid bare."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        text = f"SELECT {i};\n"
        (directory / name(i)).write_text(f"-- migrate:up\n{text}\n-- migrate:down\n" if dbmate else text)


def one_large_statement(directory: Path, megabytes: int) -> Path:
    """One migration that is a table and one INSERT ... VALUES of `megabytes` MB, written in pieces."""
    directory.mkdir(parents=True, exist_ok=True)
    row = "('" + "x" * 90 + "')"
    count = megabytes * 1024 * 1024 // (len(row) + 2)
    with (directory / name(0)).open("w") as handle:
        handle.write("CREATE TABLE seed (id bigserial, v text);\nINSERT INTO seed (v) VALUES\n")
        for i in range(count):
            handle.write(row + (",\n" if i < count - 1 else ";\n"))
    return directory


def large_seed(directory: Path, megabytes: int) -> Path:
    """One migration of `megabytes` MB of INSERTs of 100 rows each (about 9 KB a statement)."""
    directory.mkdir(parents=True, exist_ok=True)
    row = "('" + "x" * 90 + "')"
    statement = "INSERT INTO seed (v) VALUES " + ", ".join([row] * 100) + ";\n"
    with (directory / name(0)).open("w") as handle:
        handle.write("CREATE TABLE seed (id bigserial, v text);\n")
        for _ in range(megabytes * 1024 * 1024 // len(statement)):
            handle.write(statement)
    return directory
