"""The realtime benchmark: many concurrent WebSocket sessions relaying small frames, first straight to a fake
realtime upstream, then through the gateway's /gateway/openai/v1/realtime; reports frames per second and
the gateway's CPU time per 1,000 frames relayed.

    .venv/bin/python -m bench.realtime [--sessions 200] [--frames 50] [--timeout 120]

Each session sends `--frames` small client events (an `input_audio_buffer.append` with 20 ms of 8 kHz
audio) and the upstream answers each with one small server event, so a session relays 2 x frames frames.
Every run stops when all frames arrived or at `--timeout`. `--upstream` runs the fake upstream itself (the
benchmark starts it in its own process so its CPU is not the gateway's).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.processes import ROOT, Gateway, _die_with_parent, cpu_seconds, stop

AUDIO = base64.b64encode(b"\x00" * 160).decode()
CLIENT_EVENT = orjson.dumps({"type": "input_audio_buffer.append", "audio": AUDIO}).decode()


async def serve_upstream() -> None:
    """Echo server: `session.created` on connect, one `response.audio.delta` per client frame."""
    from websockets.asyncio.server import serve

    async def handle(ws) -> None:
        await ws.send('{"type": "session.created", "session": {"id": "bench"}}')
        count = 0
        async for _frame in ws:
            count += 1
            await ws.send(f'{{"type": "response.audio.delta", "delta": "{AUDIO[:32]}", "n": {count}}}')

    async with serve(handle, "127.0.0.1", 0, compression=None, max_queue=64) as server:
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()


def start_upstream():
    import subprocess

    process = subprocess.Popen([sys.executable, "-m", "bench.realtime", "--upstream"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
    line = process.stdout.readline()
    if not line.startswith("listening "):
        stop(process)
        raise RuntimeError(f"the fake realtime upstream did not start: {line!r}")
    return process, int(line.split()[1])


class Gate:
    """Holds every session until all are connected, so only the relaying of frames is measured."""

    def __init__(self, sessions: int) -> None:
        self.waiting = sessions
        self.all_connected = asyncio.Event()
        self.go = asyncio.Event()

    def connected(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.all_connected.set()


async def one_session(url: str, headers: dict[str, str], frames: int, gate: Gate) -> int:
    """Send `frames` events and read as many answers; returns the frames relayed (both directions)."""
    from websockets.asyncio.client import connect

    async with connect(url, additional_headers=headers, compression=None, max_queue=64, proxy=None,
                       open_timeout=60, ping_interval=None) as ws:
        await ws.recv()  # session.created
        gate.connected()
        await gate.go.wait()

        async def sender() -> None:
            for _ in range(frames):
                await ws.send(CLIENT_EVENT)

        task = asyncio.create_task(sender())
        for _ in range(frames):
            await ws.recv()
        await task
    return 2 * frames


async def run(url: str, headers: dict[str, str], sessions: int, frames: int, timeout: float,
              pid: int | None) -> dict:
    gate = Gate(sessions)
    tasks = [asyncio.create_task(one_session(url, headers, frames, gate)) for _ in range(sessions)]
    connecting = asyncio.create_task(gate.all_connected.wait())
    await asyncio.wait([connecting, *tasks], timeout=timeout, return_when=asyncio.FIRST_EXCEPTION)
    connecting.cancel()
    cpu_before = cpu_seconds(pid) if pid else 0.0
    begin = time.perf_counter()
    gate.go.set()
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    elapsed = time.perf_counter() - begin
    cpu = (cpu_seconds(pid) - cpu_before) if pid else None
    for task in pending:
        task.cancel()
    relayed = sum(t.result() for t in done if t.exception() is None)
    failed = sum(1 for t in done if t.exception() is not None) + len(pending)
    return {"sessions": sessions, "frames": relayed, "failed_sessions": failed, "seconds": round(elapsed, 3),
            "frames_per_second": round(relayed / elapsed, 1) if elapsed else None,
            "gateway_cpu_ms_per_1000_frames": round(cpu * 1000 / relayed * 1000, 2) if cpu and relayed else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--frames", type=int, default=50, help="client frames per session (each answered once)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a run gives up")
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.upstream:
        asyncio.run(serve_upstream())
        return 0
    upstream, port = start_upstream()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-realtime-") as workdir:
            gateway = Gateway(Path(workdir))
            gateway.configure({
                "secrets": [{"name": "bench-realtime", "provider": "openai", "values": {"api_key": "sk-bench"},
                             "auth_config": {"api_base": f"http://127.0.0.1:{port}/v1"}}],
                "models": [{"name": "bench-realtime", "provider": "openai", "model_name": "gpt-realtime",
                            "secret": "bench-realtime"}],
                "endpoints": [{"name": "bench-voice", "models": [{"model": "bench-realtime"}]}],
            })
            gateway.start()
            try:
                direct = asyncio.run(run(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", {},
                                         args.sessions, args.frames, args.timeout, None))
                through = asyncio.run(run(
                    f"ws://127.0.0.1:{gateway.port}/gateway/openai/v1/realtime?model=bench-voice",
                    {"Authorization": f"Bearer {gateway.key}"}, args.sessions, args.frames, args.timeout,
                    gateway.process.pid))
            finally:
                stop(gateway.process)
    finally:
        stop(upstream)
    report = {"scenario": "realtime", "direct": direct, "through_gateway": through}
    print(json.dumps(report, indent=2))
    return 1 if direct["failed_sessions"] or through["failed_sessions"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
