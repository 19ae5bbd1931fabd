"""In steady state a gateway request runs no SQL at all: configuration, credentials and keys come from
the in-process snapshot."""
from __future__ import annotations

import httpx
import pytest
from django.db.backends.utils import CursorWrapper

from gateway.apikeys import api_key_create
from gateway.db import db_task
from gateway.models import Endpoint, EndpointModel, ModelDefinition, RateLimit
from gateway.config.snapshot import store

pytestmark = pytest.mark.database


class QueryCounter:
    """Counts every SQL statement on every connection in every thread, by wrapping Django's cursor."""

    def __init__(self, monkeypatch) -> None:
        self.queries: list[str] = []
        for name in ("execute", "executemany"):
            original = getattr(CursorWrapper, name)
            monkeypatch.setattr(CursorWrapper, name, self._counting(original))

    def _counting(self, original):
        def wrapper(cursor, sql, *args, **kwargs):
            self.queries.append(sql)
            return original(cursor, sql, *args, **kwargs)
        return wrapper


@pytest.mark.django_db(transaction=True)
async def test_steady_state_requests_run_zero_queries(monkeypatch):
    from asgiref.sync import sync_to_async

    from gateway_project.asgi import application

    def setup() -> str:
        model = ModelDefinition.objects.create(name="fake", provider="fake", model_name="fake-echo")
        endpoint = Endpoint.objects.create(name="demo")
        EndpointModel.objects.create(endpoint=endpoint, model=model)
        RateLimit.objects.create(name="each-key", scope="api_key", target="*", requests_per_minute=1000,
                                 tokens_per_minute=10**8, max_concurrent=10)
        return api_key_create(name="k")[1]

    key = await sync_to_async(setup)()
    await store.refresh()
    counter = QueryCounter(monkeypatch)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(20):
            chat = await client.post("/gateway/mlflow/v1/chat/completions", headers=headers,
                                     json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]})
            assert chat.status_code == 200 and chat.headers["x-ratelimit-limit-requests"] == "1000"
            emb = await client.post("/gateway/demo/mlflow/invocations", headers=headers, json={"input": "x"})
            assert emb.status_code == 200
        models = await client.get("/gateway/mlflow/v1/models", headers=headers)
        assert models.status_code == 200
        health = await client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        denied = await client.post("/gateway/mlflow/v1/chat/completions", headers={"Authorization": "Bearer nope"},
                                   json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]})
        assert denied.status_code == 401
    hot_path_queries = list(counter.queries)
    # Control: the counter does see a query made from a worker thread, as the hot path would have to (through
    # db_task, which hands the connection back, so none is left open when the test database is dropped).
    await db_task(Endpoint.objects.count)()
    assert len(counter.queries) == len(hot_path_queries) + 1
    assert hot_path_queries == []
