"""The container images the end-to-end node runs, built here from Debian packages, never pulled.

One Debian bookworm root filesystem (mmdebstrap, from the machine's apt sources) with what
the app's images and the old manifests' helper images hold: Python 3.11, the backend's
database libraries at the app's pins (psycopg2-binary, asyncpg, SQLAlchemy, structlog from
backend/requirements.txt), the PostgreSQL 15 and Redis clients, nginx and nc. It is the
shared bottom layer of every image; each image adds a small layer and its own config:

- backend: the app's two migration folders (/app/migrations from supabase/migrations,
  /app/migrations-local from init-db/migrations) and its old runner
  (backend/database/migrate.py), as Dockerfile.backend copies them; a small server answering
  /health on 8000 stands in for the app (uvicorn and the app's code are not in it). Root,
  as the app's image runs.
- frontend: nginx with the app's nginx.conf on 3000, master process as root and workers
  as www-data, as nginx:alpine runs it; logs to stdout/stderr.
- postgres-client, redis-client: the readiness Jobs' clients (readiness.*Image), and
  busybox: the old manifests' `busybox:1.36` init containers (sh, nc, sleep).
- pause: the sandbox image, a Go program built here (tests/e2e/pause).
- coredns: the CoreDNS binary e2e/build-tools.sh built.

The root filesystem and the Python packages are cached outside the repository
(~/.cache/ideaforge-e2e-images), keyed by everything that goes into them; the top layers
are rebuilt each run (they take a second). `python -m tests.e2e.images` builds the cache and
prints how long each part took.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT.parent / "shared" / "ideaforge-ai"
CACHE = Path(os.environ.get("IDEAFORGE_E2E_IMAGE_CACHE", Path.home() / ".cache" / "ideaforge-e2e-images"))
REGISTRY = "e2e.local/ideaforge-ai"

SUITE = "bookworm"
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
PACKAGES = (
    "python3", "python-is-python3",  # the app's image: python:3.11-slim (bookworm), `python` and `python3`
    "postgresql-client-15",  # Dockerfile.backend installs it; pg_isready for the readiness Job
    "redis-tools",  # redis-cli for the readiness Job
    "nginx",  # the frontend
    "netcat-openbsd",  # nc -z, as the old manifests' busybox init containers use it
)
# backend/requirements.txt of the app: the database libraries its migrate.py and the
# migration runner import (the rest of the app's dependencies serve code that is not here).
PYTHON_PACKAGES = ("psycopg2-binary==2.9.10", "asyncpg==0.30.0", "sqlalchemy[asyncio]==2.0.36", "structlog==24.4.0")
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"  # on Debian's python3 sys.path

BACKEND_PORT = 8000
FRONTEND_PORT = 3000
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The stand-in for the app's uvicorn: /health answers 200, anything else 404, like the app's
# router for an unknown path; its access log goes to stdout as the app's does. It ends on
# SIGTERM as uvicorn does: it is the container's first process, as uvicorn is in the app's image,
# and the kernel delivers SIGTERM to a PID namespace's first process only through a handler;
# without one every old pod would wait out its 30-second grace period for SIGKILL.
HEALTH_SERVER = """\
import http.server, signal, sys

signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.split("?")[0] == "/health"
        body = b'{"status":"healthy"}' if ok else b'{"detail":"Not Found"}'
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stdout.write("%s - %s\\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()

print("stand-in backend serving /health on :%s" % sys.argv[1], flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
"""

PAUSE_SOURCE = Path(__file__).resolve().parent / "pause" / "main.go"


def log(message: str) -> None:
    print(f"[e2e images {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=None)
def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- the cached bottom layers ------------------------------------------------------------------

def _cached(name: str, key: str, build) -> Path:
    """CACHE/<name>-<key>.tar, built once by build(path)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"{name}-{key}.tar"
    if target.exists():
        return target
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    log(f"building {target.name} (first run only)")
    build(partial)
    partial.rename(target)
    seconds = time.monotonic() - started
    (CACHE / f"{name}-{key}.seconds").write_text(f"{seconds:.0f}\n")
    log(f"built {target.name} in {seconds:.0f} s")
    for old in CACHE.glob(f"{name}-*.tar"):
        if old != target:
            old.unlink()
    return target


def debian_layer() -> Path:
    def build(out: Path) -> None:
        subprocess.run(
            ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=tar", "--quiet",
             f"--include={','.join(PACKAGES)}",
             # What an image leaves out: docs, man pages, apt lists.
             "--dpkgopt=force-unsafe-io", "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
             "--dpkgopt=path-exclude=/usr/share/locale/*", "--skip=cleanup/reproducible",
             SUITE, str(out), str(SOURCES)],
            check=True)
    return _cached("debian", _key(SUITE, PACKAGES, SOURCES.read_text()), build)


def python_layer() -> Path:
    def build(out: Path) -> None:
        stage = out.parent / (out.name + ".d")
        shutil.rmtree(stage, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
             "--target", str(stage / SITE_PACKAGES), "--only-binary=:all:", "--python-version", "3.11",
             "--implementation", "cp", "--abi", "cp311", "--platform", "manylinux2014_x86_64", *PYTHON_PACKAGES],
            check=True)
        with tarfile.open(out, "w") as tar:
            tar.add(stage, arcname=".", filter=_root_owned)
        shutil.rmtree(stage)
    return _cached("python", _key(PYTHON_PACKAGES, SITE_PACKAGES), build)


def pause_binary() -> Path:
    def build(out: Path) -> None:
        work = out.parent / (out.name + ".d")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        shutil.copy(PAUSE_SOURCE, work / "main.go")
        (work / "go.mod").write_text("module pause\n\ngo 1.22\n")
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
        subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."], cwd=work, env=env,
                       check=True)
        shutil.rmtree(work)
    return _cached("pause", _key(PAUSE_SOURCE.read_text()), build)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


# -- small layers, made in memory --------------------------------------------------------------

class Layer:
    """A tar layer built from entries; deterministic (fixed times and owners)."""

    def __init__(self):
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)
        self.dirs: set[str] = set()

    def _parents(self, path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            directory = "/".join(parts[:i])
            if directory not in self.dirs:
                self.dirs.add(directory)
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                self.tar.addfile(info)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> "Layer":
        self._parents(path)
        info = tarfile.TarInfo(path.strip("/"))
        info.size, info.mode = len(data), mode
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def symlink(self, path: str, target: str) -> "Layer":
        self._parents(path)
        info = tarfile.TarInfo(path.strip("/"))
        info.type, info.linkname = tarfile.SYMTYPE, target
        self.tar.addfile(info)
        return self

    def remove(self, path: str) -> "Layer":
        """An OCI whiteout: the path is gone from the layers below."""
        directory, name = os.path.split(path.strip("/"))
        return self.file(f"{directory}/.wh.{name}", b"")

    def folder(self, target: str, source: Path) -> "Layer":
        for path in sorted(source.rglob("*")):
            if path.is_file():
                self.file(f"{target}/{path.relative_to(source)}", path.read_bytes())
        return self

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buffer.getvalue()


@dataclass
class Image:
    reference: str
    layers: list  # Path (cached tar) or bytes
    config: dict = field(default_factory=dict)


def backend_layer(migrations: Path, migrations_local: Path, extra: Optional[dict[str, str]] = None) -> bytes:
    layer = Layer()
    layer.folder("app/migrations", migrations).folder("app/migrations-local", migrations_local)
    for name, text in sorted((extra or {}).items()):
        layer.file(f"app/migrations/{name}", text.encode())
    # `python3 -m backend.database.migrate`, as the old db-migrations Job runs it.
    layer.file("app/backend/__init__.py", b"").file("app/backend/database/__init__.py", b"")
    layer.file("app/backend/database/migrate.py", (APP / "backend" / "database" / "migrate.py").read_bytes())
    layer.file("app/e2e_health_server.py", HEALTH_SERVER.encode())
    return layer.bytes()


# The folders Dockerfile.backend copies to /app/migrations and /app/migrations-local.
APP_MIGRATIONS = (APP / "supabase" / "migrations", APP / "init-db" / "migrations")


def backend(tag: str, extra_migrations: Optional[dict[str, str]] = None,
            folders: tuple[Path, Path] = APP_MIGRATIONS) -> Image:
    """The backend image; extra_migrations are files added to /app/migrations (a later tag).
    `folders` replaces the app's migration folders (a history that can build an empty
    database; the app's own cannot: README, "What was and was not run end to end")."""
    top = backend_layer(*folders, extra_migrations)
    return Image(f"{REGISTRY}/backend:{tag}", [debian_layer(), python_layer(), top], {
        "Env": [f"PATH={PATH}", "PYTHONUNBUFFERED=1"], "WorkingDir": "/app",
        "Cmd": ["python", "/app/e2e_health_server.py", str(BACKEND_PORT)],
        "ExposedPorts": {f"{BACKEND_PORT}/tcp": {}}})


def frontend(tag: str) -> Image:
    layer = Layer()
    layer.file("etc/nginx/conf.d/default.conf", (APP / "nginx.conf").read_bytes())
    layer.remove("etc/nginx/sites-enabled/default")  # Debian's own server on :80
    layer.file("usr/share/nginx/html/index.html", b"<!doctype html><title>IdeaForge AI</title><div id=root></div>\n")
    # As the nginx image does: the logs are the container's output.
    layer.symlink("var/log/nginx/access.log", "/dev/stdout").symlink("var/log/nginx/error.log", "/dev/stderr")
    return Image(f"{REGISTRY}/frontend:{tag}", [debian_layer(), layer.bytes()], {
        "Env": [f"PATH={PATH}"], "Cmd": ["nginx", "-g", "daemon off;"], "StopSignal": "SIGQUIT",
        "ExposedPorts": {f"{FRONTEND_PORT}/tcp": {}}})


def tool(reference: str) -> Image:
    return Image(reference, [debian_layer()], {"Env": [f"PATH={PATH}"], "Cmd": ["sh"]})


def pause() -> Image:
    return Image(PAUSE_IMAGE, [Layer().file("pause", pause_binary().read_bytes(), 0o755).bytes()],
                 {"Entrypoint": ["/pause"]})


def coredns(binary: Path) -> Image:
    return Image(COREDNS_IMAGE, [Layer().file("coredns", binary.read_bytes(), 0o755).bytes()],
                 {"Entrypoint": ["/coredns"]})


POSTGRES_CLIENT_IMAGE = f"{REGISTRY}/postgres-client:15"
REDIS_CLIENT_IMAGE = f"{REGISTRY}/redis-client:7"
BUSYBOX_IMAGE = f"{REGISTRY}/busybox:1.36"
PAUSE_IMAGE = f"{REGISTRY}/pause:e2e"
COREDNS_IMAGE = f"{REGISTRY}/coredns:e2e"


# -- OCI archive -------------------------------------------------------------------------------

def write_archive(images: list[Image], out: Path, skip_blobs: set[str] = frozenset()) -> set[str]:
    """An OCI image layout in a tar, for `ctr images import`. Blobs in skip_blobs (already in
    the content store) are left out. Returns the digests of every blob the images use."""
    used: set[str] = set()
    with tarfile.open(out, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        def blob(data: Optional[bytes] = None, path: Optional[Path] = None) -> tuple[str, int]:
            digest = _digest(data) if data is not None else _file_digest(path)
            size = len(data) if data is not None else path.stat().st_size
            if digest not in used and digest not in skip_blobs:
                name = f"blobs/sha256/{digest.split(':')[1]}"
                if data is not None:
                    add(name, data)
                else:
                    tar.add(path, arcname=name)
            used.add(digest)
            return digest, size

        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        manifests = []
        for image in images:
            layers, diff_ids = [], []
            for layer in image.layers:
                digest, size = blob(layer) if isinstance(layer, bytes) else blob(path=layer)
                layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size})
                diff_ids.append(digest)  # uncompressed: the diff ID is the blob's digest
            config = json.dumps({"architecture": "amd64", "os": "linux", "config": image.config,
                                 "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
            config_digest, config_size = blob(config)
            manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                              "digest": config_digest, "size": config_size},
                                   "layers": layers}, sort_keys=True).encode()
            digest, size = blob(manifest)
            manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                              "size": size, "annotations": {"io.containerd.image.name": image.reference,
                                                            "org.opencontainers.image.ref.name": image.reference}})
        add("index.json", json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())
    return used


def prepare() -> dict[str, float]:
    """Build the cached parts; returns the seconds each took on its first build."""
    timings = {}
    for name, build in (("debian", debian_layer), ("python", python_layer), ("pause", pause_binary)):
        path = build()
        seconds = path.with_suffix(".seconds")
        timings[name] = float(seconds.read_text()) if seconds.exists() else 0.0
    return timings


if __name__ == "__main__":
    for part, seconds in prepare().items():
        print(f"{part}: first build {seconds:.0f} s")
