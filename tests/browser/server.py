"""Start the real gateway for browser tests: migrate a fresh SQLite file, create a superuser, and serve
`gateway_project.asgi:application` with uvicorn on a free local port."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class GatewayServer:
    url: str
    database: Path
    username: str
    password: str

    def database_bytes(self) -> bytes:
        """The SQLite file with its write-ahead log, i.e. everything the server has written."""
        return b"".join(path.read_bytes() for path in sorted(self.database.parent.glob(self.database.name + "*")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(data_dir: Path, database: Path, username: str, password: str) -> dict[str, str]:
    # Inherited DJANGO_*/GATEWAY_* variables (pytest-django's settings module among them) must not leak in.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GATEWAY_", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "DJANGO_SECRET_KEY": "browser-test-secret-key",
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "GATEWAY_KEK_PASSPHRASE": "browser-test-kek-passphrase",
        "GATEWAY_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_SUPERUSER_USERNAME": username,
        "DJANGO_SUPERUSER_PASSWORD": password,
        "DJANGO_SUPERUSER_EMAIL": f"{username}@example.com",
    })
    return env


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/admin/login/", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer within {timeout} s:\n{log.read_text()}")


@contextlib.contextmanager
def gateway_server(data_dir: Path, *, username: str = "browser-admin",
                   password: str = "browser-admin-password-1", timeout: float = 30.0) -> Iterator[GatewayServer]:
    database = data_dir / "gateway.sqlite3"
    env = _server_env(data_dir, database, username, password)
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "--noinput"], ["createsuperuser", "--noinput"]):
        subprocess.run([*manage, *command], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    log = data_dir / "uvicorn.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log, timeout)
        yield GatewayServer(url=url, database=database, username=username, password=password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
