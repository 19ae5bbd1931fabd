"""The admin's block rate per guardrail, read from the usage records."""
from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from gateway.models import UsageRecord
from guardrails.models import Guardrail
from guardrails.selectors import guardrail_activity


def record(results: list, age: timedelta = timedelta(0)) -> None:
    UsageRecord.objects.create(created_at=timezone.now() - age, endpoint_name="chat", guardrails=results)


def result(name: str, action: str) -> dict:
    return {"name": name, "stage": "before", "passed": action == "none", "action": action, "latency_ms": 0.1}


def test_activity_counts_runs_and_blocks_of_the_window(db):
    record([result("pii", "block")])
    record([result("pii", "sanitize"), result("words", "none")])
    record([result("pii", "block")], age=timedelta(days=2))
    record([])
    activity = guardrail_activity(since=timezone.now() - timedelta(hours=24))
    assert {name: (a.runs, a.blocks) for name, a in activity.items()} == {"pii": (2, 1), "words": (1, 0)}


def test_changelist_shows_blocks_per_guardrail(admin_client):
    Guardrail.objects.create(name="pii", kind="pii")
    Guardrail.objects.create(name="quiet", kind="pii")
    record([result("pii", "block")])
    record([result("pii", "none")])
    page = admin_client.get(reverse("admin:guardrails_guardrail_changelist")).content.decode()
    assert "Blocks (24 h)" in page and "1 of 2 (50.0%)" in page and "no runs" in page
    ordered = admin_client.get(reverse("admin:guardrails_guardrail_changelist") + "?o=6")
    assert ordered.status_code == 200
