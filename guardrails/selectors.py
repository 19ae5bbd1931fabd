"""Reads about guardrails for the admin: how often each one ran and blocked, from the usage records."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from gateway.models import UsageRecord


@dataclass
class Activity:
    runs: int = 0
    blocks: int = 0


def guardrail_activity(*, since: datetime) -> dict[str, Activity]:
    """Runs and blocks per guardrail name in the usage records since `since` (requests whose usage
    tracking is off are not counted)."""
    activity: dict[str, Activity] = defaultdict(Activity)
    rows = (UsageRecord.objects.filter(created_at__gte=since).exclude(guardrails=[])
            .values_list("guardrails", flat=True))
    for results in rows.iterator(chunk_size=2000):
        for result in results if isinstance(results, list) else ():
            if isinstance(result, dict) and isinstance(result.get("name"), str):
                entry = activity[result["name"]]
                entry.runs += 1
                entry.blocks += result.get("action") == "block"
    return dict(activity)
