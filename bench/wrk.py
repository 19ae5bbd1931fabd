"""Throughput load from wrk (Debian package `wrk`): written in C, one thread, so the load generator takes
as little as possible of the two cores the gateway is measured on.

A generated Lua script posts the body, stops after a request budget (wrk itself only knows a duration)
and prints the summary as one JSON line.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.client import Target

SCRIPT = """
local file = assert(io.open([==[{body_path}]==], "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
{headers}
local budget = {budget}
local seen = 0

function response(status, headers, body)
  seen = seen + 1
  if seen >= budget then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {{"requests": %d, "duration_us": %d, "errors": %d, "status_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration: float
    errors: int
    p50: float
    p99: float


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


async def run(target: Target, *, connections: int, duration: float, max_requests: int) -> WrkResult:
    """`duration` is rounded to whole seconds (wrk's unit), at least one."""
    headers = {"Content-Type": "application/json", **target.headers}
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(target.body)
        script = Path(tmp) / "post.lua"
        script.write_text(SCRIPT.format(
            body_path=body_path, budget=max(1, max_requests),
            headers="\n".join(f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()),
        ))
        seconds = max(1, round(duration))
        process = await asyncio.create_subprocess_exec(
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
            f"http://{target.host}:{target.port}{target.path}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout=seconds + 60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError("wrk did not finish in time") from None
    for line in out.decode().splitlines():
        if line.startswith("WRK_JSON "):
            data = json.loads(line[len("WRK_JSON "):])
            return WrkResult(requests=data["requests"], duration=data["duration_us"] / 1e6, errors=data["errors"],
                             p50=data["p50_us"] / 1e6, p99=data["p99_us"] / 1e6)
    raise RuntimeError(f"wrk printed no summary (exit {process.returncode}):\n{out.decode()}\n{err.decode()}")
