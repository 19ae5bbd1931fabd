"""The processes under test: the fake upstream and the real gateway, each in its own OS process so its CPU
time can be read from /proc, and each configured the way an operator would do it (migrate,
`gateway_apply`, `create_api_key`)."""
from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: if the benchmark dies, its servers get SIGTERM instead of lingering."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of every thread of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of the process and of every process below it (uvicorn's workers under --workers N)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_seconds(current)
        except OSError:
            continue
        todo.extend(children.get(current, ()))
    return total


def start_redis() -> tuple[subprocess.Popen, str]:
    """A throw-away redis-server on a free loopback port, for budgets and rate limits counted in Redis."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def busy_seconds() -> float:
    """User and system CPU time of every process on the machine so far, all cores. Interrupt time is left
    out: loopback traffic is processed there and belongs to no process."""
    user, nice, system = (int(value) for value in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / CLOCK_TICKS


def own_seconds() -> float:
    """CPU time of this process and of the children it has waited for (wrk, py-spy)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def refused_url() -> str:
    """A loopback address with nothing listening (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def stop(process: subprocess.Popen | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_upstream(latency_ms: float) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "bench.upstream", "--latency-ms", str(latency_ms)],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
    line = process.stdout.readline()
    if not line.startswith("listening "):
        stop(process)
        raise RuntimeError(f"the fake upstream did not start: {line!r}")
    return process, int(line.split()[1])


class Gateway:
    """A configured gateway in `workdir` (its own SQLite database and secrets), served by uvicorn on uvloop
    and httptools without access logs: one process, as the issue's targets assume, or `workers` of them;
    budgets and rate limits count in Redis when `redis_url` is given."""

    def __init__(self, workdir: Path, workers: int = 1, redis_url: str = "") -> None:
        self.workdir = workdir
        self.workers = workers
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "GATEWAY_KEK_PASSPHRASE": secrets.token_urlsafe(32),
            "DATABASE_URL": f"sqlite:///{workdir / 'gateway.sqlite3'}",
            "GATEWAY_DATA_DIR": str(workdir),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "REDIS_URL": redis_url,
            # The `chat-proxy` scenario relays chat completions through the raw proxy route.
            "GATEWAY_PROXY_ALLOWED_PATHS": '{"openai": ["models", "files", "batches", "chat/completions"]}',
        }
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.key = ""

    def manage(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def configure(self, config: dict) -> None:
        """Migrate, apply `config` and create the client key the load generators present."""
        self.manage("migrate", "--noinput", "-v0")
        path = self.workdir / "gateway.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.manage("gateway_apply", str(path))
        self.key = self.manage("create_api_key", "bench").strip().splitlines()[-1].strip()

    def start(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        log = open(self.workdir / "gateway.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
             "--log-level", "warning", "--workers", str(self.workers)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited at start:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the gateway did not become healthy:\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / "gateway.log"
        return path.read_text(errors="replace") if path.exists() else ""
