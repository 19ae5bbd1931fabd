"""Usage records: the batching writer (retries, bounded queue, key last-use times, cooperative stop) and
estimates for streams that never reported usage."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async

from gateway.usage import records as usage
from gateway.apikeys import api_key_create
from gateway.config.version import current_config_version
from gateway.models import ApiKey, UsageRecord
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
