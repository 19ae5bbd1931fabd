"""Usage accounting: the batching writer (retries, bounded queue, key last-use times, cooperative stop),
estimates for streams that never reported usage, retention, export, and the aggregates behind the
dashboard and the usage API."""
from __future__ import annotations

import asyncio
import csv
import io
import json
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from gateway.usage import records as usage
from gateway.apikeys import api_key_create
from gateway.budgets.windows import window_for
from gateway.config.version import current_config_version
from gateway.models import ApiKey, BudgetPolicy, UsageRecord
from gateway.usage.retention import prune_usage
from gateway.config.snapshot import store
from gateway.usage.stats import GROWTH, MIN_MS, percentile, usage_summary
from tests.clock import this_hour

pytestmark = [pytest.mark.database, pytest.mark.clock]

NOW = this_hour() + timedelta(minutes=30)


def event(**overrides) -> usage.UsageEvent:
    return usage.UsageEvent(**{"created_at": NOW, "endpoint_name": "chat", "route": "unified/chat", **overrides})


# --- The writer ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_failing_database_write_is_retried_and_never_raises(monkeypatch, caplog):
    writer = usage.UsageWriter(batch_size=2, max_retries=3, retry_delay=0)
    real, failures = writer._write, []

    def flaky(batch):
        if len(failures) < 2:
            failures.append(len(batch))
            raise RuntimeError("database is locked")
        real(batch)

    monkeypatch.setattr(writer, "_write", flaky)
    for index in range(3):
        writer.submit(event(request_id=str(index)))
    assert await writer.flush() == 3
    assert failures == [2, 2] and "writing 2 usage records failed (attempt 1)" in caplog.text
    assert await sync_to_async(UsageRecord.objects.count)() == 3


@pytest.mark.django_db(transaction=True)
async def test_a_batch_that_keeps_failing_stays_queued_for_later(monkeypatch):
    writer = usage.UsageWriter(max_retries=2, retry_delay=0)
    monkeypatch.setattr(writer, "_write", lambda batch: (_ for _ in ()).throw(RuntimeError("down")))
    writer.submit(event())
    assert await writer.flush() == 0
    assert writer.pending() == 1


@pytest.mark.django_db(transaction=True)
async def test_a_record_the_database_refuses_is_dropped_without_holding_back_the_others(caplog):
    writer = usage.UsageWriter(retry_delay=0)
    for request_id, tokens in (("a", 1), ("bad", -1), ("b", 2)):  # a negative count breaks a CHECK constraint
        writer.submit(event(request_id=request_id, input_tokens=tokens))
    assert await writer.flush() == 2 and writer.pending() == 0
    written = await sync_to_async(list)(UsageRecord.objects.order_by("request_id").values_list("request_id", flat=True))
    assert written == ["a", "b"] and "usage record of request bad was refused by the database" in caplog.text


def test_the_queue_is_bounded_when_the_database_stays_down(caplog):
    writer = usage.UsageWriter(max_queue=3)
    for index in range(5):
        writer.submit(event(request_id=str(index)))
    assert [e.request_id for e in writer.queue] == ["2", "3", "4"] and writer.dropped == 2
    assert "usage queue full" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_key_last_use_is_written_in_batches_without_a_config_change():
    key, _ = await sync_to_async(api_key_create)(name="k")
    version = await sync_to_async(current_config_version)()
    writer = usage.UsageWriter()
    writer.touch(key.id, NOW - timedelta(seconds=5))
    writer.touch(key.id, NOW)
    await writer.flush()
    assert (await ApiKey.objects.aget(pk=key.id)).last_used_at == NOW
    assert await sync_to_async(current_config_version)() == version


@pytest.mark.django_db(transaction=True)
async def test_stopping_the_writer_finishes_its_flush_and_leaves_nothing_behind():
    writer = usage.UsageWriter(interval=60)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)
    for index in range(1200):
        writer.submit(event(request_id=str(index)))
    await writer.stop(task)
    await writer.flush()
    assert task.done() and not task.cancelled()
    assert await sync_to_async(UsageRecord.objects.count)() == 1200


# --- Streams that never reported usage --------------------------------------------------------------------


def test_a_complete_stream_keeps_the_reported_usage():
    reported = usage.TokenUsage(11, 7, 3)
    assert usage.stream_usage(reported, 400, lambda: 99, complete=True) == (reported, False)


def test_an_abandoned_stream_is_estimated_from_the_request_and_the_relayed_text():
    assert usage.stream_usage(usage.TokenUsage(), 41, lambda: 12, complete=False) == (usage.TokenUsage(12, 11, 0), True)
    # Anthropic reports input at the start; output comes from the relayed text.
    started = usage.TokenUsage(8, 1, 3)
    assert usage.stream_usage(started, 40, lambda: 99, complete=False) == (usage.TokenUsage(8, 10, 3), True)


def test_a_complete_stream_without_usage_is_estimated_too():
    assert usage.stream_usage(usage.TokenUsage(), 8, lambda: 5, complete=True) == (usage.TokenUsage(5, 2, 0), True)


def test_relayed_text_counts_content_and_tool_arguments():
    chunk = {"choices": [{"delta": {"content": "hello", "tool_calls": [{"function": {"arguments": '{"a":1}'}}]}}]}
    assert usage.delta_chars(chunk) == 12
    assert usage.delta_chars({"choices": [], "usage": {}}) == 0


# --- Retention and export -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_retention_deletes_old_records_in_batches():
    UsageRecord.objects.bulk_create([UsageRecord(created_at=NOW - timedelta(days=days), endpoint_name="e")
                                     for days in [40] * 25 + [10] * 3])
    assert prune_usage(days=30, now=NOW, batch_size=10) == 25
    assert UsageRecord.objects.count() == 3


@pytest.mark.django_db
def test_export_writes_csv_and_jsonl_since_a_moment(tmp_path):
    UsageRecord.objects.create(created_at=NOW - timedelta(days=3), endpoint_name="old")
    UsageRecord.objects.create(created_at=NOW, endpoint_name="chat", api_key_name="team", input_tokens=11,
                               cost_usd=Decimal("0.0000123"))
    out = tmp_path / "usage.csv"
    call_command("export_usage", "--since", (NOW - timedelta(days=1)).date().isoformat(), "--output", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["endpoint_name"], r["input_tokens"], r["cost_usd"]) for r in rows] == [("chat", "11", "0.0000123000")]
    stdout = io.StringIO()
    call_command("export_usage", "--since", "3650d", "--format", "jsonl", "--key", "team", stdout=stdout)
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert len(lines) == 1 and lines[0]["api_key_name"] == "team" and lines[0]["cost_usd"] == "0.0000123000"


# --- Aggregates, dashboard and API ----------------------------------------------------------------------------


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
    assert "cdn" not in page.lower()
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
