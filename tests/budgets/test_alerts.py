"""Budget alerts: one per policy per window across processes and restarts, a marked policy, and a webhook
delivered with retries (the transport is injected; the real HTTP path is covered end to end)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import sync_to_async

from gateway.budgets.alerts import AlertSender, claim_alert
from gateway.budgets.windows import claim_for
from gateway.config.version import current_config_version
from gateway.models import BudgetPolicy
from gateway.config.snapshot import BudgetSpec
from tests.clock import this_hour

pytestmark = pytest.mark.clock

NOW = this_hour()


def make_policy(url: str = "http://127.0.0.1:9/hook") -> BudgetSpec:
    row = BudgetPolicy.objects.create(name="alerting", scope="global", amount_usd=Decimal("2"), window_unit="days",
                                      action="alert", webhook_url=url)
    return BudgetSpec(row.id, row.name, row.scope, row.target, row.amount_usd, row.window_unit, row.window_value,
                      row.action, row.webhook_url)


class Recorder:
    """Answers with the scripted statuses (an exception instance is raised), then 200."""

    def __init__(self, *script) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, dict]] = []

    async def __call__(self, url: str, body: dict) -> int:
        self.calls.append((url, body))
        outcome = self.script.pop(0) if self.script else 200
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def sender(post: Recorder, sleeps: list | None = None) -> AlertSender:
    async def sleep(seconds: float) -> None:
        (sleeps if sleeps is not None else []).append(seconds)

    return AlertSender(post=post, sleep=sleep, clock=lambda: NOW)


@pytest.mark.django_db(transaction=True)
def test_claiming_an_alert_succeeds_once_per_window_and_is_no_config_change():
    policy = BudgetPolicy.objects.create(name="p", amount_usd=1)
    version = current_config_version()
    assert claim_alert(policy.id, NOW) is True
    assert claim_alert(policy.id, NOW) is False
    assert claim_alert(policy.id, NOW + timedelta(days=1)) is True
    assert BudgetPolicy.objects.get(pk=policy.id).last_alert_window_start == NOW + timedelta(days=1)
    assert current_config_version() == version


@pytest.mark.django_db(transaction=True)
async def test_two_processes_send_one_webhook_for_a_window():
    spec = await sync_to_async(make_policy)()
    claim = claim_for(spec, NOW)
    posts = Recorder()
    first, second = sender(posts), sender(posts)
    for alerts in (first, second, first):
        alerts.fire(claim, 2_000_000_000, "limit_reached")
    await first.drain(5)
    await second.drain(5)
    assert len(posts.calls) == 1
    url, body = posts.calls[0]
    assert url == "http://127.0.0.1:9/hook"
    assert body["reason"] == "limit_reached" and body["spent_usd"] == "2"
    assert body["policy"]["name"] == "alerting" and body["policy"]["amount_usd"] == "2"
    day = NOW.replace(hour=0)
    assert body["window"] == {"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()}


@pytest.mark.django_db(transaction=True)
async def test_delivery_is_retried_with_backoff():
    spec = await sync_to_async(make_policy)()
    posts, sleeps = Recorder(500, httpx.ConnectError("refused"), 200), []
    alerts = sender(posts, sleeps)
    alerts.fire(claim_for(spec, NOW), 1, "request_rejected")
    await alerts.drain(5)
    assert len(posts.calls) == 3 and sleeps == [0.5, 1.0]


async def test_delivery_gives_up_after_the_last_attempt(caplog):
    posts, sleeps = Recorder(*[503] * 10), []
    assert await sender(posts, sleeps).deliver("http://127.0.0.1:9/hook", {}) is False
    assert len(posts.calls) == 5 and sleeps == [0.5, 1.0, 2.0, 4.0]
    assert "not delivered after 5 attempts" in caplog.text


async def test_the_outbound_policy_applies_to_webhooks(caplog):
    posts = Recorder()
    assert await sender(posts).deliver("http://169.254.169.254/latest/meta-data", {}) is False
    assert posts.calls == [] and "refused by the outbound policy" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_an_alert_reports_the_spend_held_in_reservations_too():
    spec = await sync_to_async(make_policy)()
    claim = claim_for(spec, NOW)
    posts = Recorder()
    # Nothing settled yet: $0.50 spent, $1.75 held in allowances and reservations of requests in flight.
    alerts = AlertSender(post=posts, clock=lambda: NOW, counted=lambda c: (500_000_000, 1_750_000_000))
    alerts.fire(claim, 0, "request_rejected")
    await alerts.drain(5)
    [(_, body)] = posts.calls
    assert body["spent_usd"] == "2.25" and body["held_usd"] == "1.75"
