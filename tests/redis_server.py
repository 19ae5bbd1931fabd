"""A throwaway redis-server on a free 127.0.0.1 port, for the Redis budget backend's tests."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest


def real_clock_env() -> dict[str, str]:
    """The environment without libfaketime: Debian's redis-server (linked with jemalloc) dies at start-up under
    libfaketime 0.9.10, so in the shifted-clock CI stage Redis keeps the real clock while the gateway runs ahead.
    Expiry the gateway sets (window end + 7 days, from its own clock) then lies further in Redis's future."""
    env = dict(os.environ)
    preload = [lib for lib in env.pop("LD_PRELOAD", "").split(":") if lib and "faketime" not in lib]
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    return env


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yields the server's URL; skips the test when redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed, so the Redis budget backend cannot be tested")
    import redis

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=real_clock_env())
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
