"""The migration runner as a zipapp, so the Job needs nothing from the image but Python and psycopg2.

The app's backend image has Python 3.11 and psycopg2-binary, and not the runner. The
runner's source (runner/, standard library and psycopg2 only) is packed into one zip
file with a `__main__.py`, carried to the Job in a ConfigMap's binaryData and started as
`python -c <runner_launch.py> /opt/db-migrations-runner/runner.pyz <sha256>`: the launcher,
part of the Job's immutable pod template, refuses an archive whose sha256 is not the one the
program computed (components/runner_launch.py). The archive is byte-for-byte reproducible
(sorted entries, fixed timestamps, no compression), so its checksum changes exactly when
the runner's code does, and the Job runs again then.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

RUNNER_DIR = Path(__file__).resolve().parent.parent / "runner"
LAUNCHER = Path(__file__).resolve().parent / "runner_launch.py"
FILE_NAME = "runner.pyz"
MOUNT_PATH = "/opt/db-migrations-runner"
_MAIN = b"import sys\nfrom runner.cli import main\n\nsys.exit(main())\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class RunnerBundle:
    data: bytes

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def path(self) -> str:
        return f"{MOUNT_PATH}/{FILE_NAME}"

    def command(self, *runner_args: str) -> list[str]:
        """The container command: the checking launcher, on the image's own `python`."""
        return ["python", "-c", launcher_source(), self.path, self.checksum, *runner_args]


def launcher_source() -> str:
    """The launcher without its comment lines: what the pod template carries."""
    lines = LAUNCHER.read_text().splitlines()
    return "\n".join(line for line in lines if line.strip() and not line.lstrip().startswith("#")) + "\n"


def build(source: Path = RUNNER_DIR) -> RunnerBundle:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        _add(archive, "__main__.py", _MAIN)
        for path in sorted(source.glob("*.py")):
            _add(archive, f"runner/{path.name}", path.read_bytes())
    return RunnerBundle(buffer.getvalue())


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
