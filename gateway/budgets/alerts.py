"""Budget alerts: once per policy per window, when spend reaches the limit (or a `reject` policy first
refuses a request), mark the policy in the database and POST its webhook.

"Once" holds across processes and restarts: the first process to move BudgetPolicy.last_alert_window_start
to the window's start with a conditional UPDATE sends the webhook; every other attempt updates nothing.
Delivery is retried with exponential backoff; a webhook still failing after the last attempt is logged.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from asgiref.sync import sync_to_async
from django.db.models import Q

from gateway.budgets.windows import Claim, to_usd, utcnow
from gateway.models import BudgetPolicy
from gateway.db import db_task
from providers import outbound

logger = logging.getLogger(__name__)


def claim_alert(policy_id: int, window_start: datetime) -> bool:
    """True for exactly one caller per policy and window (sync). A queryset update sends no signal, so
    this does not count as a configuration change."""
    return bool(BudgetPolicy.objects
                .filter(~Q(last_alert_window_start=window_start), pk=policy_id)
                .update(last_alert_window_start=window_start))


def payload(claim: Claim, spent: int, reason: str, now: datetime, held: int = 0) -> dict:
    policy = claim.policy
    return {
        "event": "budget.alert",
        "reason": reason,
        "policy": {"id": policy.id, "name": policy.name, "scope": policy.scope, "target": policy.target,
                   "action": policy.action, "amount_usd": str(policy.amount_usd),
                   "window": {"unit": policy.window_unit, "value": policy.window_value}},
        "window": {"start": claim.window.start.isoformat(), "end": claim.window.end.isoformat()},
        "spent_usd": str(to_usd(spent)),  # including what is held for requests in flight
        "held_usd": str(to_usd(held)),
        "sent_at": now.isoformat(),
    }


class AlertSender:
    """`post` and `sleep` are injectable so tests need neither a network nor real waiting. `counted(claim)`
    (sync) reads a window's (spent, held) from the budget store, so an alert reports the spend held in
    reservations and allowances too, not only what has settled."""

    def __init__(self, attempts: int = 5, first_delay: float = 0.5, timeout: float = 10.0,
                 post: Callable | None = None, sleep: Callable = asyncio.sleep,
                 clock: Callable[[], datetime] = utcnow,
                 counted: Callable[[Claim], tuple[int, int] | None] | None = None) -> None:
        self._counted = counted
        self.attempts = attempts
        self.first_delay = first_delay
        self.timeout = timeout
        self._post = post
        self._sleep = sleep
        self.clock = clock
        self._seen: set[tuple[int, datetime]] = set()
        self._tasks: set[asyncio.Task] = set()

    def fire(self, claim: Claim, spent: int, reason: str) -> None:
        """Start the alert in the background; repeated calls for a window this process already handled
        return at once."""
        mark = (claim.policy.id, claim.window.start)
        if mark in self._seen:
            return
        self._seen.add(mark)
        task = asyncio.get_running_loop().create_task(self._alert(claim, spent, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _alert(self, claim: Claim, spent: int, reason: str) -> None:
        try:
            if not await db_task(claim_alert)(claim.policy.id, claim.window.start):
                return
        except Exception:  # noqa: BLE001 - let a later request in this window try again
            logger.exception("could not record the alert of budget '%s'", claim.policy.name)
            self._seen.discard((claim.policy.id, claim.window.start))
            return
        held = 0
        if self._counted is not None:
            try:
                counted = await db_task(self._counted)(claim)
            except Exception:  # noqa: BLE001 - report what the caller knew
                logger.exception("could not read the spend of budget '%s'", claim.policy.name)
                counted = None
            if counted is not None:
                held = counted[1]
                spent = max(spent, counted[0] + held)
        logger.warning("budget '%s' %s: $%s spent (including $%s held) in window %s", claim.policy.name, reason,
                       to_usd(spent), to_usd(held), claim.window.describe())
        if claim.policy.webhook_url:
            await self.deliver(claim.policy.webhook_url, payload(claim, spent, reason, self.clock(), held))

    async def deliver(self, url: str, body: dict) -> bool:
        problem = await sync_to_async(outbound.url_problem, thread_sensitive=False)(url)
        if problem:
            logger.error("budget webhook to %s refused by the outbound policy: %s", _host(url), problem)
            return False
        for attempt in range(self.attempts):
            try:
                status = await self._send(url, body)
                if 200 <= status < 300:
                    return True
                logger.warning("budget webhook to %s answered %s (attempt %d)", _host(url), status, attempt + 1)
            except httpx.HTTPError as exc:
                logger.warning("budget webhook to %s failed: %s (attempt %d)", _host(url), type(exc).__name__, attempt + 1)
            if attempt + 1 < self.attempts:
                await self._sleep(self.first_delay * 2**attempt)
        logger.error("budget webhook to %s not delivered after %d attempts", _host(url), self.attempts)
        return False

    async def _send(self, url: str, body: dict) -> int:
        if self._post is not None:
            return await self._post(url, body)
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            return (await client.post(url, json=body)).status_code

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


def _host(url: str) -> str:
    """Webhook URLs often carry a token in their path (Slack, Teams): logs get the host only."""
    return urlsplit(url).netloc or "(invalid URL)"
