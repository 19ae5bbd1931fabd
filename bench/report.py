"""The results as a table, and the issue's performance targets checked against them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A goal from the hot-path issue, read from one run (scenario at a concurrency)."""

    label: str
    scenario: str
    concurrency: int
    value: Callable[[dict], float | None]
    limit: float
    unit: str
    at_least: bool = False
    baseline: str | None = None  # when set: the value minus the same value of this scenario's run


    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value < self.limit


TARGETS = (
    Target("p50 overhead, chat at concurrency 1", "chat", 1, lambda r: r["overhead"]["p50_ms"], 2.0, "ms"),
    Target("requests/s through the gateway, chat at concurrency 32", "chat", 32, lambda r: r["gateway"]["rps"],
           1000, "req/s", at_least=True),
    Target("gateway CPU per request, chat at concurrency 32", "chat", 32,
           lambda r: r["gateway"]["gateway_cpu_ms"], 1.5, "ms"),
    Target("gateway CPU per request, streaming chat at concurrency 32", "chat-stream", 32,
           lambda r: r["gateway"]["gateway_cpu_ms"], 1.5, "ms"),
    Target("streaming time-to-first-byte p50 overhead at concurrency 1", "chat-stream", 1,
           lambda r: r["overhead"]["ttfb_p50_ms"], 2.0, "ms"),
    Target("p50 overhead when the primary refuses connections (failover) at concurrency 1", "failover", 1,
           lambda r: r["overhead"]["p50_ms"], 5.0, "ms"),
    Target("p50 overhead added by one active budget, chat at concurrency 1", "chat-budget", 1,
           lambda r: r["overhead"]["p50_ms"], 0.5, "ms", baseline="chat"),
    Target("p50 overhead added by pii + regex guardrails on a 2 KB prompt at concurrency 1", "chat-guardrails", 1,
           lambda r: r["overhead"]["p50_ms"], 1.0, "ms", baseline="chat-2kb"),
)


def check_targets(runs: list[dict]) -> list[dict]:
    """Every target whose run was part of this benchmark, with its measured value."""
    found = {(run["scenario"], run["concurrency"]): run for run in runs}
    checked = []
    for target in TARGETS:
        run = found.get((target.scenario, target.concurrency))
        value = target.value(run) if run else None
        if target.baseline is not None and value is not None:
            base = found.get((target.baseline, target.concurrency))
            base_value = target.value(base) if base else None
            value = value - base_value if base_value is not None else None
        if value is not None:
            checked.append({"target": target.label, "limit": f"{'>=' if target.at_least else '<'} {target.limit:g} "
                            f"{target.unit}", "value": value, "met": target.met(value)})
    return checked


def _cell(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


COLUMNS = ("scenario", "c", "side", "req/s", "p50 ms", "p99 ms", "ttfb p50", "ttfb p99", "gw cpu ms/req",
           "errors", "other cpu %", "load")
NOISY_PERCENT = 10.0


def render_table(results: dict) -> str:
    rows = []
    for run in results["runs"]:
        for side in ("direct", "gateway"):
            s = run[side]
            rows.append((run["scenario"], str(run["concurrency"]), side, f"{s['rps']:.0f}", _cell(s["p50_ms"]),
                         _cell(s["p99_ms"]), _cell(s["ttfb_p50_ms"]), _cell(s["ttfb_p99_ms"]),
                         _cell(s["gateway_cpu_ms"]) if side == "gateway" else "", str(s["errors"]),
                         f"{s['other_cpu_percent']:.0f}", s["load"]))
        o = run["overhead"]
        rows.append(("", "", "overhead", "", _cell(o["p50_ms"], True), _cell(o["p99_ms"], True),
                     _cell(o["ttfb_p50_ms"], True), _cell(o["ttfb_p99_ms"], True), "", "", "", ""))
    widths = [max(len(col), *(len(row[i]) for row in rows)) for i, col in enumerate(COLUMNS)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(COLUMNS, widths))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    machine = results["machine"]
    lines += ["", f"Machine: {machine['nproc']} cores, {machine['cpu_model']}, {machine['python']}, "
                  f"commit {machine['commit']}"]
    noisy = [f"{run['scenario']} c={run['concurrency']}" for run in results["runs"]
             if max(run["direct"]["other_cpu_percent"], run["gateway"]["other_cpu_percent"]) > NOISY_PERCENT]
    if noisy:
        lines += ["", f"WARNING: other processes used more than {NOISY_PERCENT:g}% of a core during "
                      f"{', '.join(noisy)}; those numbers understate the gateway. Re-run on a quiet machine."]
    capped = [f"{run['scenario']} c={run['concurrency']} {side}" for run in results["runs"]
              for side in ("direct", "gateway") if run[side]["budget_reached"]]
    if capped:
        lines += ["", f"NOTE: the request budget ran out during {', '.join(capped)}; wrk still divides by the "
                      "whole duration, so those requests/s are understated (raise --max-requests)."]
    lines += ["", "Targets:"]
    if not results["targets"]:
        lines.append("  (no run of this benchmark is one the targets are read from)")
    for target in results["targets"]:
        lines.append(f"  [{'met' if target['met'] else 'MISSED'}] {target['target']}: {target['value']:g} "
                     f"(target {target['limit']})")
    for run in results["runs"]:
        lines += _profile_lines(run)
    return "\n".join(lines)


def _profile_lines(run: dict, top: int = 12) -> list[str]:
    summary = run["gateway"].get("profile")
    if not summary:
        return []
    lines = ["", f"Profile of the gateway, {run['scenario']} at concurrency {run['concurrency']} "
                 f"({summary['samples']} busy samples, {summary['file']}):", "  self%  total%  function"]
    for row in summary["by_self"][:top]:
        lines.append(f"  {row['self']:5.1f}  {row['total']:6.1f}  {row['function']}")
    return lines
