"""Usage aggregates for the operator: totals, a time series, and breakdowns by endpoint, model and key over
the last 24 hours, 7 days or 30 days, plus each budget's current window. One selector feeds both the
admin dashboard and `GET /gateway/admin/v1/usage`.

Everything is aggregated in the database (a handful of GROUP BY queries, whatever the table size).
Latency percentiles come from a log-scale histogram computed in SQL, so they are approximate: within
about 5% of the true value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Floor, Greatest, Ln, TruncDay, TruncHour

from gateway.budgets.policies import manager
from gateway.config.snapshot import BudgetSpec
from gateway.models import BudgetPolicy, UsageRecord


@dataclass(frozen=True)
class Range:
    span: timedelta
    step: timedelta
    trunc: type


RANGES = {
    "24h": Range(timedelta(hours=24), timedelta(hours=1), TruncHour),
    "7d": Range(timedelta(days=7), timedelta(hours=6), TruncHour),
    "30d": Range(timedelta(days=30), timedelta(days=1), TruncDay),
}
DIMENSIONS = {"endpoint": "endpoint_name", "model": "model_name", "key": "api_key_name"}
# Latency histogram: bin i holds [MIN_MS * GROWTH**i, MIN_MS * GROWTH**(i+1)); reporting a bin's geometric
# middle is at most sqrt(GROWTH) - 1 (under 5%) from any value inside it.
MIN_MS = 0.1
GROWTH = 1.1
MAX_BIN = 200


def _aggregates() -> dict:
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status_code__gte=400)),
        "input_sum": Sum("input_tokens"),
        "output_sum": Sum("output_tokens"),
        "cached_sum": Sum("cached_tokens"),
        "cost_sum": Sum("cost_usd"),
        "unknown_cost": Count("id", filter=Q(cost_usd__isnull=True, status_code__lt=400)),
    }


def _latency_bin():
    latency = Greatest(F("latency_ms"), Value(MIN_MS))
    return Floor(Ln(latency / Value(MIN_MS)) / Value(math.log(GROWTH)))


def percentile(histogram: dict[int, int], q: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return round(MIN_MS * GROWTH ** (min(index, MAX_BIN) + 0.5), 2)
    return None


def _clean(row: dict) -> dict:
    cost = row.get("cost_sum")
    requests = row.get("requests") or 0
    return {
        "requests": requests, "errors": row.get("errors") or 0,
        "error_rate": round((row.get("errors") or 0) / requests, 4) if requests else 0.0,
        "input_tokens": row.get("input_sum") or 0, "output_tokens": row.get("output_sum") or 0,
        "cached_tokens": row.get("cached_sum") or 0,
        "cost_usd": str(Decimal(cost).quantize(Decimal("0.000001"))) if cost is not None else "0",
        "requests_with_unknown_cost": row.get("unknown_cost") or 0,
    }


def _histograms(records, group: str) -> dict:
    found: dict = {}
    for row in records.annotate(bin=_latency_bin()).values(group, "bin").annotate(n=Count("id")).order_by():
        bins = found.setdefault(row[group], {})
        bins[int(row["bin"])] = bins.get(int(row["bin"]), 0) + row["n"]
    return found


def _with_latency(stats: dict, histogram: dict[int, int]) -> dict:
    return {**stats, "latency_p50_ms": percentile(histogram, 0.5), "latency_p95_ms": percentile(histogram, 0.95)}


def _bucket(moment: datetime, start: datetime, step: timedelta) -> datetime:
    return start + step * ((moment - start) // step)


def _series(records, choice: Range, start: datetime, end: datetime) -> list[dict]:
    """One point per step from `start`; empty steps included, so a chart's x axis is even."""
    rows = records.annotate(t=choice.trunc("created_at", tzinfo=timezone.utc)).values("t").annotate(**_aggregates())
    merged: dict[datetime, dict] = {}
    for row in rows.order_by():
        point = merged.setdefault(_bucket(row["t"], start, choice.step), {})
        for name, value in row.items():
            if name != "t" and value is not None:
                point[name] = point.get(name, 0) + value
    histograms: dict[datetime, dict[int, int]] = {}
    for moment, bins in _histograms(records.annotate(t=choice.trunc("created_at", tzinfo=timezone.utc)), "t").items():
        target = histograms.setdefault(_bucket(moment, start, choice.step), {})
        for index, count in bins.items():
            target[index] = target.get(index, 0) + count
    points, moment = [], start
    while moment < end:
        points.append({"start": moment.isoformat(),
                       **_with_latency(_clean(merged.get(moment, {})), histograms.get(moment, {}))})
        moment += choice.step
    return points


def _breakdown(records, field: str) -> list[dict]:
    histograms = _histograms(records, field)
    rows = records.values(field).annotate(**_aggregates()).order_by("-requests")
    return [{"name": row[field] or "-", **_with_latency(_clean(row), histograms.get(row[field], {}))} for row in rows]


def budget_status(now: datetime | None = None) -> list[dict]:
    """Every enabled policy with its current window's spend (from the budget backend) and alert mark."""
    rows = []
    for policy in BudgetPolicy.objects.filter(enabled=True).order_by("name"):
        spec = BudgetSpec(policy.id, policy.name, policy.scope, policy.target, policy.amount_usd, policy.window_unit,
                          policy.window_value, policy.action, policy.webhook_url)
        status = manager.status(spec)
        status["alerted"] = (policy.last_alert_window_start is not None
                             and policy.last_alert_window_start.isoformat() == status["window"]["start"])
        rows.append(status)
    return rows


def usage_summary(range_key: str = "24h", now: datetime | None = None) -> dict:
    choice = RANGES[range_key]
    now = now or datetime.now(timezone.utc)
    end = _ceil(now, choice.step)
    start = end - choice.span
    records = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
    series = _series(records, choice, start, end)
    totals = _clean(records.aggregate(**_aggregates()))
    overall: dict[int, int] = {}
    for row in records.annotate(bin=_latency_bin()).values("bin").annotate(n=Count("id")).order_by():
        overall[int(row["bin"])] = row["n"]
    return {
        "range": range_key, "start": start.isoformat(), "end": end.isoformat(), "step_seconds": int(choice.step.total_seconds()),
        "totals": _with_latency(totals, overall),
        "series": series,
        **{f"by_{name}": _breakdown(records, field) for name, field in DIMENSIONS.items()},
        "budgets": budget_status(now),
    }


def _ceil(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    steps = math.ceil((moment - epoch) / step)
    return epoch + step * steps
