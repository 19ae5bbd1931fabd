"""The operator's aggregates (percentiles, totals, breakdowns, budgets) behind the dashboard and the usage
API, and who may read them."""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from gateway.apikeys import api_key_create
from gateway.budgets.windows import window_for
from gateway.models import BudgetPolicy, UsageRecord
from gateway.config.snapshot import store
from gateway.usage.stats import GROWTH, MIN_MS, percentile, usage_summary
from tests.clock import this_hour

pytestmark = [pytest.mark.database, pytest.mark.clock]

NOW = this_hour() + timedelta(minutes=30)


def test_percentiles_from_the_histogram_are_within_five_percent():
    values = [float(v) for v in range(1, 1001)]
    histogram: dict[int, int] = {}
    for value in values:
        index = math.floor(math.log(max(value, MIN_MS) / MIN_MS) / math.log(GROWTH))
        histogram[index] = histogram.get(index, 0) + 1
    assert abs(percentile(histogram, 0.5) - 500) / 500 < 0.05
    assert abs(percentile(histogram, 0.95) - 950) / 950 < 0.05
    assert percentile({}, 0.5) is None


def _records() -> None:
    rows = [("chat", "gpt", "team-a", 200, 100.0, "0.001")] * 8 + [("chat", "gpt", "team-b", 502, 1000.0, None)] * 2
    rows += [("embed", "emb", "team-a", 200, 10.0, "0.0001")] * 5 + [("chat", "gpt", "team-a", 200, 50.0, "9")]
    UsageRecord.objects.bulk_create([
        UsageRecord(created_at=NOW - timedelta(hours=2 if i % 2 else 30), endpoint_name=e, model_name=m,
                    api_key_name=k, status_code=s, latency_ms=l, input_tokens=10, output_tokens=5,
                    cost_usd=Decimal(c) if c else None)
        for i, (e, m, k, s, l, c) in enumerate(rows[:-1])
    ] + [UsageRecord(created_at=NOW - timedelta(days=40), endpoint_name="chat", cost_usd=Decimal("9"))])


@pytest.mark.django_db
def test_the_summary_aggregates_by_time_endpoint_model_and_key():
    _records()
    BudgetPolicy.objects.create(name="chat-month", scope="endpoint", target="chat", amount_usd=1, window_unit="months")
    week = usage_summary("7d", now=NOW)
    assert week["totals"]["requests"] == 15 and week["totals"]["errors"] == 2
    assert week["totals"]["cost_usd"] == "0.008500" and week["totals"]["requests_with_unknown_cost"] == 0
    assert len(week["series"]) == 28 and sum(p["requests"] for p in week["series"]) == 15
    chat = next(row for row in week["by_endpoint"] if row["name"] == "chat")
    assert (chat["requests"], chat["errors"], chat["error_rate"]) == (10, 2, 0.2)
    assert abs(chat["latency_p50_ms"] - 100) <= 5 and abs(chat["latency_p95_ms"] - 1000) <= 50
    assert {row["name"] for row in week["by_key"]} == {"team-a", "team-b"}
    assert {row["name"] for row in week["by_model"]} == {"gpt", "emb"}
    day = usage_summary("24h", now=NOW)
    assert len(day["series"]) == 24 and day["totals"]["requests"] == 7
    [budget] = week["budgets"]
    assert budget["name"] == "chat-month" and budget["window"]["unit"] == "months"


@pytest.mark.django_db
def test_the_dashboard_renders_charts_and_budget_bars():
    _records()
    BudgetPolicy.objects.create(name="chat-month", scope="endpoint", target="chat", amount_usd=1, window_unit="months")
    this_month = window_for("months", 1, datetime.now(timezone.utc)).start
    BudgetPolicy.objects.create(name="alerted-month", scope="global", amount_usd=1, window_unit="months",
                                action="alert", last_alert_window_start=this_month)
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get(reverse("gateway-usage-dashboard") + "?range=30d").content.decode()
    assert page.count("<svg") >= 6 and "chat-month" in page and "Usage dashboard" in page
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)  # nothing loaded from another site (a CDN)
    listing = client.get(reverse("admin:gateway_budgetpolicy_changelist")).content.decode()
    assert "current window" in listing.lower() and "<svg" in listing and reverse("gateway-usage-dashboard") in listing
    assert page.count("limit reached") == listing.count("limit reached") == 1  # the alert that fired this window
    assert Client().get(reverse("gateway-usage-dashboard")).status_code == 302  # to the login page


@pytest.mark.django_db(transaction=True)
async def test_the_usage_api_answers_admin_keys_and_staff_sessions_only():
    from gateway_project.asgi import application

    await sync_to_async(_records)()
    _, admin_key = await sync_to_async(api_key_create)(name="ops", is_admin=True)
    _, plain_key = await sync_to_async(api_key_create)(name="app")
    user = await sync_to_async(get_user_model().objects.create_user)("staff", password="pw", is_staff=True,
                                                                       is_superuser=True)
    await store.refresh()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        url = "/gateway/admin/v1/usage"
        ok = await client.get(url, params={"range": "30d"}, headers={"Authorization": f"Bearer {admin_key}"})
        assert ok.status_code == 200 and ok.json()["range"] == "30d" and ok.json()["totals"]["requests"] == 15
        denied = await client.get(url, headers={"Authorization": f"Bearer {plain_key}"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "admin_key_required"
        anonymous = await client.get(url)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"
        bad = await client.get(url, params={"range": "1y"}, headers={"Authorization": f"Bearer {admin_key}"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "range"
        session = Client()
        await sync_to_async(session.force_login)(user)
        client.cookies.set("sessionid", session.cookies["sessionid"].value)
        staff = await client.get(url)
        assert staff.status_code == 200 and "by_endpoint" in staff.json()
