"""Fixtures for the guardrail unit tests."""
from __future__ import annotations

import pytest

from gateway.usage import records as usage
from gateway.config.snapshot import Link, Snapshot, store
from providers.base import ModelTarget
from providers.fake.adapter import FakeAdapter
from tests.guardrails.helpers import endpoint


def fake_endpoint(name: str, reply: str, *guardrails):
    target = ModelTarget(id=7, name=f"{name}-model", provider="fake", model_name="fake-judge",
                         auth_config={"reply": reply})
    return endpoint(*guardrails, name=name, primaries=(Link(FakeAdapter(target), 1.0, 0),))


@pytest.fixture
def judge_snapshot(monkeypatch):
    """Puts a snapshot with a judge endpoint answering `reply` in place; returns a setter."""
    def install(reply: str, *judge_guardrails):
        judge = fake_endpoint("judge", reply, *judge_guardrails)
        monkeypatch.setattr(store, "current", Snapshot(version=1, endpoints={"judge": judge}))
    usage.writer.queue.clear()
    yield install
    usage.writer.queue.clear()


