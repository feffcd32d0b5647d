"""What the app's backend image offers the migration Job: Python 3.11 with psycopg2-binary
2.9.10 (backend/requirements.txt) and no code of this project, plus its migration folders.

The interpreter is a virtualenv with that one package, built once into a cache outside the
repository; the image's folders /app/migrations (the app's supabase copy) and
/app/migrations-local (its init-db copy) are test fixtures bound at those paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PSYCOPG2 = "psycopg2-binary==2.9.10"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ideaforge-tests"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "app_image"
IMAGE_DIRS = {"/app/migrations-local": FIXTURES / "migrations-local", "/app/migrations": FIXTURES / "migrations"}


def python_bin_dir() -> Path:
    """The bin directory whose `python` is the image's interpreter."""
    venv = CACHE / f"backend-python{sys.version_info.major}.{sys.version_info.minor}-{PSYCOPG2.replace('==', '-')}"
    done = venv / ".installed"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        PSYCOPG2], check=True, capture_output=True)
        done.touch()
    return venv / "bin"
