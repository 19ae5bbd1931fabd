"""Run the benchmark: each scenario at each concurrency against the fake upstream directly, then through
the gateway, and report the difference (the gateway's overhead) and the gateway's CPU time per request.

    .venv/bin/python -m bench [--scenario NAME ...] [--duration 5] [--warmup 1] [--latency-ms 0] ...

Load: wrk (C, one thread) drives throughput; the Python client in bench/client.py measures what wrk
cannot (time to first byte) on one connection of its own. At concurrency 1, and for streams at any
concurrency, that connection is the Python client's; the others are wrk's. Without wrk installed (or with
`--python-client`) the Python client opens every connection, which takes more CPU from the gateway.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson
import uvloop

from bench import client, profile, wrk
from bench.machine import describe_machine
from bench.processes import (
    Gateway, busy_seconds, cpu_seconds, own_seconds, refused_url, start_redis, start_upstream, stop, tree_cpu_seconds,
)
from bench.report import check_targets, render_table
from bench.scenarios import REGISTRY, Scenario, Upstreams, gateway_config

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GATEWAY_API_PREFIX = "/gateway/mlflow/v1/"


@dataclass
class Side:
    """One side of a comparison at one concurrency. Latencies in milliseconds; CPU in ms per request.
    `other_cpu_percent` is what processes outside the benchmark used meanwhile, in % of one core: the
    machine has two cores, so anything well above zero makes the run's numbers unreliable."""

    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    ttfb_p50_ms: float | None
    ttfb_p99_ms: float | None
    load: str
    gateway_cpu_ms: float | None = None
    upstream_cpu_ms: float | None = None
    other_cpu_percent: float | None = None
    budget_reached: bool = False
    first_error: str = ""
    profile: dict | None = None


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    max_requests: int
    use_wrk: bool
    profile_dir: Path | None = None
    trace: bool = False


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


async def load(target: client.Target, concurrency: int, seconds: int, options: Options) -> Side:
    """Drive `concurrency` connections for `seconds` (or `max_requests` per load generator)."""
    own = concurrency if not options.use_wrk else (1 if concurrency == 1 or target.stream else 0)
    jobs, labels = [], []
    if concurrency - own:
        jobs.append(wrk.run(target, connections=concurrency - own, duration=seconds,
                            max_requests=options.max_requests))
        labels.append(f"wrk c={concurrency - own}")
    if own:
        jobs.append(client.run(target, concurrency=own, duration=seconds, max_requests=options.max_requests))
        labels.append(f"python c={own}")
    results = await asyncio.gather(*jobs)
    by_wrk = next((r for r in results if isinstance(r, wrk.WrkResult)), None)
    samples = next((r for r in results if isinstance(r, client.Samples)), None)
    side = Side(
        requests=sum(r.requests for r in results), errors=sum(r.errors for r in results),
        rps=round(sum(r.requests / r.duration for r in results if r.duration), 1),
        p50_ms=_ms(by_wrk.p50 if by_wrk else client.percentile(samples.latencies, 50)),
        p99_ms=_ms(by_wrk.p99 if by_wrk else client.percentile(samples.latencies, 99)),
        ttfb_p50_ms=_ms(client.percentile(samples.ttfb, 50)) if samples and target.stream else None,
        ttfb_p99_ms=_ms(client.percentile(samples.ttfb, 99)) if samples and target.stream else None,
        load=" + ".join(labels),
        budget_reached=any(r.requests >= options.max_requests for r in results),
    )
    if samples and samples.first_error:
        side.first_error = samples.first_error
    elif by_wrk and by_wrk.errors:
        side.first_error = f"wrk counted {by_wrk.errors} failed requests"
    return side


async def measure(target: client.Target, concurrency: int, options: Options, gateway_pid: int,
                  upstream_pid: int, profile_to: Path | None = None) -> Side:
    """One request to prove the path works, a warm-up (connection pools, caches), then the measured run
    with the CPU time both servers spent during it (and, with `profile_to`, a profile of the gateway)."""
    check = await client.run(target, concurrency=1, duration=30, max_requests=1)
    if check.errors:
        raise RuntimeError(f"POST {target.path} on port {target.port} fails: {check.first_error}")
    if options.warmup:
        await load(target, concurrency, options.warmup, options)
    cpu_before = tree_cpu_seconds(gateway_pid), cpu_seconds(upstream_pid), own_seconds(), busy_seconds()
    started = time.perf_counter()
    if profile_to is None:
        side = await load(target, concurrency, options.duration, options)
    else:
        side, _ = await asyncio.gather(load(target, concurrency, options.duration, options),
                                       profile.record(gateway_pid, options.duration, profile_to))
        side.profile = {"file": str(profile_to), **profile.summarize(profile_to)}
    cpu_after = tree_cpu_seconds(gateway_pid), cpu_seconds(upstream_pid), own_seconds(), busy_seconds()
    gateway_cpu, upstream_cpu, own_cpu, busy = (after - before for after, before in zip(cpu_after, cpu_before))
    side.other_cpu_percent = round(max(busy - gateway_cpu - upstream_cpu - own_cpu, 0.0) * 100
                                   / (time.perf_counter() - started), 1)
    if side.requests:
        side.gateway_cpu_ms = round(gateway_cpu * 1000 / side.requests, 3)
        side.upstream_cpu_ms = round(upstream_cpu * 1000 / side.requests, 3)
    return side


def overhead(direct: Side, through: Side) -> dict[str, float | None]:
    def diff(name: str) -> float | None:
        a, b = getattr(direct, name), getattr(through, name)
        return None if a is None or b is None else round(b - a, 3)

    return {"p50_ms": diff("p50_ms"), "p99_ms": diff("p99_ms"), "ttfb_p50_ms": diff("ttfb_p50_ms"),
            "ttfb_p99_ms": diff("ttfb_p99_ms")}


def targets(scenario: Scenario, upstream_port: int, gateway: Gateway) -> tuple[client.Target, client.Target]:
    """The same request to the upstream directly and through the gateway."""
    direct = client.Target("127.0.0.1", upstream_port, f"/v1/{scenario.api}",
                           orjson.dumps(scenario.request_body(scenario.upstream_model)),
                           {"Authorization": "Bearer sk-bench-0123456789"}, scenario.stream)
    path = scenario.gateway_path.format(name=scenario.name) or f"{GATEWAY_API_PREFIX}{scenario.api}"
    # The raw proxy forwards the body as it is, so it carries the upstream model.
    model = scenario.upstream_model if scenario.gateway_path else scenario.name
    through = client.Target("127.0.0.1", gateway.port, path, orjson.dumps(scenario.request_body(model)),
                            {"Authorization": f"Bearer {gateway.key}"}, scenario.stream)
    return direct, through


async def run_all(scenarios: list[Scenario], concurrency: list[int] | None, options: Options,
                  latency_ms: float, workdir: Path, workers: int = 1, redis: bool = False) -> list[dict]:
    upstream, upstream_port = start_upstream(latency_ms)
    redis_server, redis_url = start_redis() if redis else (None, "")
    gateway = Gateway(workdir, workers=workers, redis_url=redis_url)
    if options.trace:
        gateway.env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://127.0.0.1:{upstream_port}/v1/traces"
    try:
        upstreams = Upstreams(url=f"http://127.0.0.1:{upstream_port}", refused_url=refused_url())
        gateway.configure(gateway_config(scenarios, upstreams))
        gateway.start()
        pids = gateway.process.pid, upstream.pid
        runs, direct_runs = [], {}
        for scenario in scenarios:
            direct_target, through_target = targets(scenario, upstream_port, gateway)
            for level in concurrency or scenario.concurrency:
                print(f"{scenario.name} at concurrency {level}...", file=sys.stderr, flush=True)
                # Scenarios that differ only in gateway configuration share one direct measurement.
                key = (direct_target.path, direct_target.body, level)
                if key not in direct_runs:
                    direct_runs[key] = await measure(direct_target, level, options, *pids)
                profile_to = options.profile_dir / f"{scenario.name}-c{level}.txt" if options.profile_dir else None
                through = await measure(through_target, level, options, *pids, profile_to=profile_to)
                runs.append({"scenario": scenario.name, "description": scenario.description,
                             "stream": scenario.stream, "concurrency": level, "direct": asdict(direct_runs[key]),
                             "gateway": asdict(through), "overhead": overhead(direct_runs[key], through)})
        return runs
    except Exception:
        print(gateway.log()[-4000:], file=sys.stderr)
        raise
    finally:
        stop(gateway.process)
        stop(upstream)
        stop(redis_server)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=sorted(REGISTRY), metavar="NAME",
                        help="run only this scenario (repeatable); default: all of them")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--concurrency", help="comma-separated levels replacing each scenario's own, e.g. 1,8,32")
    parser.add_argument("--duration", type=int, default=5, help="seconds of measured load per run (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of unmeasured load before each run")
    parser.add_argument("--max-requests", type=int, default=1_000_000,
                        help="request budget per load generator per run (default 1000000)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the fake upstream's added latency")
    parser.add_argument("--python-client", action="store_true", help="drive all load from Python, not wrk")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway server processes (uvicorn --workers); CPU is summed over all of them")
    parser.add_argument("--redis", action="store_true",
                        help="start a redis-server and set REDIS_URL: budgets and rate limits count in Redis")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/<time>.json)")
    parser.add_argument("--trace", action="store_true",
                        help="export OpenTelemetry traces (OTLP/HTTP) to a local receiver, the fake upstream")
    parser.add_argument("--profile", action="store_true",
                        help="sample the gateway with py-spy during its measured runs; top functions are printed "
                             "and the collapsed stacks saved beside the results")
    args = parser.parse_args(argv)
    try:
        args.concurrency = [int(level) for level in args.concurrency.split(",")] if args.concurrency else None
    except ValueError:
        parser.error("--concurrency takes comma-separated whole numbers, e.g. 1,32")
    if args.concurrency is not None and not all(1 <= level <= 1000 for level in args.concurrency):
        parser.error("--concurrency levels must be 1-1000")
    if not 1 <= args.duration <= 120 or not 0 <= args.warmup <= 60 or args.max_requests < 1:
        parser.error("--duration must be 1-120 s, --warmup 0-60 s and --max-requests positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for scenario in REGISTRY.values():
            print(f"{scenario.name:24} c={','.join(map(str, scenario.concurrency)):8} {scenario.description}")
        return 0
    use_wrk = not args.python_client and wrk.available()
    if not use_wrk and not args.python_client:
        print("wrk not found (apt-get install -y wrk): all load comes from the Python client.", file=sys.stderr)
    if args.profile and not profile.executable():
        print("--profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    started = datetime.now(timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    options = Options(duration=args.duration, warmup=args.warmup, max_requests=args.max_requests, use_wrk=use_wrk,
                      profile_dir=RESULTS_DIR / f"{stamp}-profiles" if args.profile else None, trace=args.trace)
    scenarios = [REGISTRY[name] for name in args.scenario] if args.scenario else list(REGISTRY.values())
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as workdir:
        runs = uvloop.run(run_all(scenarios, args.concurrency, options, args.latency_ms, Path(workdir),
                                  workers=args.workers, redis=args.redis))
    results = {
        "started_at": started.isoformat(timespec="seconds"), "machine": describe_machine(),
        "options": {**asdict(options), "profile_dir": str(options.profile_dir or ""), "latency_ms": args.latency_ms,
                    "workers": args.workers, "redis": args.redis},
        "runs": runs,
        "targets": check_targets(runs),
    }
    output = args.output or RESULTS_DIR / f"{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(render_table(results))
    print(f"\nResults: {output}")
    failed = [run for run in runs if run["direct"]["errors"] or run["gateway"]["errors"]]
    for run in failed:
        print(f"errors in {run['scenario']} c={run['concurrency']}: "
              f"{run['direct']['first_error'] or run['gateway']['first_error']}", file=sys.stderr)
    return 1 if failed else 0

