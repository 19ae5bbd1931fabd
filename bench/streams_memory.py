"""Benchmark scenario: many concurrent streams, and the gateway's memory before, at the peak and after.

A gateway that keeps anything per stream after it ends (a buffer, a task, a pooled connection's state)
grows with every burst; this runs `--rounds` bursts of `--streams` streaming chat requests held open at
once (the fake upstream waits `--latency-ms` before answering each) and prints the gateway's resident
memory (RSS, from /proc) before the first burst, at each burst's peak and after each burst. Flat "after"
numbers across rounds mean nothing accumulates.

    .venv/bin/python -m bench.streams_memory --streams 1000 --rounds 3

A benchmark, not a test: the numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvloop

from bench import client
from bench.processes import Gateway, start_upstream, stop
from bench.scenarios import CHAT_BODY, Upstreams, base_config

ENDPOINT = "memory-stream"
SAMPLE_SECONDS = 0.05


def rss_mib(pid: int) -> float:
    """The process's resident set size in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def burst(target: client.Target, streams: int, pid: int) -> tuple[client.Samples, float]:
    """`streams` concurrent streams, one each; returns their samples and the peak RSS seen meanwhile."""
    load = asyncio.create_task(client.run(target, concurrency=streams, duration=120, max_requests=streams))
    peak = rss_mib(pid)
    while not load.done():
        peak = max(peak, rss_mib(pid))
        await asyncio.sleep(SAMPLE_SECONDS)
    return load.result(), peak


async def measure(streams: int, rounds: int, latency_ms: float, workdir: Path) -> int:
    upstream, port = start_upstream(latency_ms)
    gateway = Gateway(workdir)
    try:
        upstreams = Upstreams(url=f"http://127.0.0.1:{port}", refused_url="")
        gateway.configure({**base_config(upstreams),
                           "endpoints": [{"name": ENDPOINT, "models": [{"model": "bench-gpt"}]}]})
        gateway.start()
        body = {**CHAT_BODY, "model": ENDPOINT, "stream": True, "stream_options": {"include_usage": True}}
        target = client.Target("127.0.0.1", gateway.port, "/gateway/mlflow/v1/chat/completions", orjson.dumps(body),
                               {"Authorization": f"Bearer {gateway.key}"}, stream=True)
        pid = gateway.process.pid
        await client.run(target, concurrency=8, duration=30, max_requests=64)  # pools, caches, first imports
        print(f"gateway RSS before: {rss_mib(pid):.1f} MiB ({streams} concurrent streams per round, "
              f"upstream latency {latency_ms:g} ms)")
        failed = 0
        for number in range(1, rounds + 1):
            started = time.perf_counter()
            samples, peak = await burst(target, streams, pid)
            failed += samples.errors
            await asyncio.sleep(1)  # let the usage writer flush the round's records
            print(f"round {number}: {len(samples.latencies)} streams ok, {samples.errors} failed"
                  f"{' (' + samples.first_error + ')' if samples.first_error else ''}, "
                  f"{time.perf_counter() - started:.1f} s; RSS peak {peak:.1f} MiB, after {rss_mib(pid):.1f} MiB")
        return 1 if failed else 0
    except Exception:
        print(gateway.log()[-4000:], file=sys.stderr)
        raise
    finally:
        stop(gateway.process)
        stop(upstream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streams_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts of streams (default 3)")
    parser.add_argument("--latency-ms", type=float, default=2000,
                        help="the upstream's wait before each answer, which holds the streams open (default 2000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as workdir:
        return uvloop.run(measure(args.streams, args.rounds, args.latency_ms, Path(workdir)))


if __name__ == "__main__":
    sys.exit(main())
