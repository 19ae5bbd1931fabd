"""Request logs in the database: the batched writer, retention, and the admin's list without a count."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from gateway.models import RequestLog
from gateway.requestlogs.admin import NoCountPaginator
from gateway.requestlogs.capture import Entry
from gateway.requestlogs.retention import prune_request_logs
from gateway.requestlogs.writer import RequestLogWriter

pytestmark = [pytest.mark.database, pytest.mark.clock]
NOW = datetime.now(timezone.utc)


def entry(request_id: str, **extra) -> Entry:
    values = dict(created_at=NOW, request_id=request_id, endpoint_name="chat", model_name="gpt", api_key_name="ci",
                  route="unified/chat", streaming=False, status_code=200, error_type="", latency_ms=1.0,
                  request={"messages": [{"role": "user", "content": "hi"}]}, response={"choices": []})
    return Entry(**{**values, **extra})


@pytest.mark.django_db(transaction=True)
async def test_the_writer_stores_what_was_queued(settings):
    settings.GATEWAY_REQUEST_LOG_MAX_BYTES = 30
    writer = RequestLogWriter(batch_size=2)
    for index in range(5):
        writer.submit(entry(str(index)))
    assert await writer.flush() == 5 and not writer.queue
    rows = await sync_to_async(list)(RequestLog.objects.order_by("request_id").values_list("request_id", "truncated"))
    assert rows == [(str(index), True) for index in range(5)]


def test_a_full_queue_drops_the_oldest():
    writer = RequestLogWriter(max_queue=2)
    for index in range(4):
        writer.submit(entry(str(index)))
    assert [e.request_id for e in writer.queue] == ["2", "3"] and writer.dropped == 2


@pytest.mark.django_db
def test_retention_deletes_old_logs():
    RequestLog.objects.bulk_create([RequestLog(created_at=NOW - timedelta(days=days), request_id="r",
                                               endpoint_name="e") for days in [40] * 7 + [1] * 2])
    assert prune_request_logs(days=30, now=NOW, batch_size=3) == 7
    assert RequestLog.objects.count() == 2


@pytest.mark.django_db
def test_pages_are_found_without_counting_the_table(django_assert_max_num_queries):
    RequestLog.objects.bulk_create([RequestLog(created_at=NOW - timedelta(seconds=i), request_id=str(i),
                                               endpoint_name="e") for i in range(25)])
    queryset = RequestLog.objects.all()
    first = NoCountPaginator(queryset, 10, 1)
    with django_assert_max_num_queries(1) as captured:
        assert first.count == 11 and first.num_pages == 2
    assert "COUNT" not in captured.captured_queries[0]["sql"].upper()
    last = NoCountPaginator(queryset, 10, 3)
    assert last.count == 25 and [r.request_id for r in last.page(3)] == ["20", "21", "22", "23", "24"]


@pytest.mark.django_db
def test_the_admin_filters_and_shows_a_log(admin_client):
    RequestLog.objects.create(created_at=NOW, request_id="wanted", endpoint_name="chat", status_code=502,
                              request_body='{"messages": [{"role": "user", "content": "find me"}]}',
                              response_body='{"error": {"status": 502}}',
                              attempts=[{"model": "gpt", "provider": "openai", "status": 502, "error": "boom"}])
    RequestLog.objects.create(created_at=NOW, request_id="other", endpoint_name="embed", status_code=200)
    changelist = reverse("admin:gateway_requestlog_changelist")
    listed = admin_client.get(changelist, {"status": "5xx"}).content.decode()
    assert "wanted" in listed and "other" not in listed
    log = RequestLog.objects.get(request_id="wanted")
    detail = admin_client.get(reverse("admin:gateway_requestlog_change", args=[log.pk])).content.decode()
    assert "find me" in detail and "boom" in detail
