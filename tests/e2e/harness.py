"""Start the real gateway (uvicorn on gateway_project.asgi) in a subprocess, configured the way an
operator would configure it: migrations, `gateway_apply` with a YAML file, `create_api_key`."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE_ENV = {
    "DJANGO_SECRET_KEY": "e2e-secret-key",
    "GATEWAY_KEK_PASSPHRASE": "e2e-kek-passphrase",
    "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
    "GATEWAY_LOG_LEVEL": "WARNING",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class GatewayServer:
    workdir: Path
    env: dict[str, str]
    port: int = 0
    keys: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def apply(self, config: dict, *extra: str) -> subprocess.CompletedProcess:
        path = self.workdir / f"config-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump(config))
        return self.manage("gateway_apply", str(path), *extra)

    def create_key(self, name: str, endpoints: list[str] | None = None, admin: bool = False) -> str:
        args = ["create_api_key", name]
        if endpoints:
            args += ["--endpoints", ",".join(endpoints)]
        if admin:
            args.append("--admin")
        key = self.manage(*args).stdout.strip().splitlines()[-1].strip()
        self.keys[name] = key
        return key

    def start(self, *, workers: int = 1) -> "GatewayServer":
        self.port = free_port()
        log = open(self.workdir / f"server-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-access-log", "--log-level", "warning", "--workers", str(workers)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not become healthy:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("server-*.log")))

    def wait_for_config(self, predicate, timeout: float = 5.0) -> float:
        """Poll until `predicate()` is true; returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if predicate():
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout}s")


_template_db: Path | None = None


def migrated_template(tmp_root: Path) -> Path:
    """Migrate once per test session; each gateway copies the file."""
    global _template_db
    if _template_db is None or not _template_db.exists():
        path = tmp_root / "template.sqlite3"
        env = {**os.environ, **BASE_ENV, "DATABASE_URL": f"sqlite:///{path}", "GATEWAY_DATA_DIR": str(tmp_root)}
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"], cwd=ROOT, env=env,
                       check=True, timeout=120)
        _template_db = path
    return _template_db


def make_gateway(tmp_root: Path, name: str, config: dict | None = None, env: dict | None = None,
                 keys: dict[str, list[str] | None] | None = None, start: bool = True) -> GatewayServer:
    workdir = tmp_root / name
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "gateway.sqlite3"
    shutil.copy(migrated_template(tmp_root), db)
    server_env = {**os.environ, **BASE_ENV, "DATABASE_URL": f"sqlite:///{db}", "GATEWAY_DATA_DIR": str(workdir),
                  **(env or {})}
    server = GatewayServer(workdir=workdir, env=server_env)
    if config:
        server.apply(config)
    for key_name, endpoints in (keys or {"default": None}).items():
        server.create_key(key_name, endpoints)
    return server.start() if start else server
