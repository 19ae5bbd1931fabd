"""The database budget backend: BudgetWindow rows admitted with a conditional UPDATE
(`... WHERE spent + reserved + x <= limit`), all of a request's windows in one transaction and in id order,
so two requests never wait on each other's rows in opposite orders. Each hold is a BudgetReservation row
with an expiry.

The statements on the request path are plain SQL (the ORM would spend more time building them than the
database spends running them). Settlements run off the request path and are grouped: those arriving while
one transaction is being written go together into the next.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from gateway.background import running
from gateway.budgets.windows import Claim, Refusal, lease_ttl, recorded_spend
from gateway.models import BudgetReservation, BudgetWindow
from gateway.db import db_task

WINDOWS = BudgetWindow._meta.db_table
HOLDS = BudgetReservation._meta.db_table
HOLD = (f"UPDATE {WINDOWS} SET reserved_nanos = reserved_nanos + %s "
        f"WHERE id = %s AND spent_nanos + reserved_nanos + %s <= %s")


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


class _WindowGone(Exception):
    pass


class DatabaseBackend:
    name = "database"

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._queue: list[tuple[Sequence[Claim], str, int, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    # -- windows ---------------------------------------------------------------------------------------
    @staticmethod
    def _lookup(claim: Claim) -> dict:
        return {"policy_id": claim.policy.id, "subject": claim.subject, "window_start": claim.window.start,
                "window_end": claim.window.end}

    def _window_id(self, claim: Claim) -> int:
        """The window's row id, creating the row (seeded from the usage records) the first time."""
        found = self._ids.get(claim.key)
        if found is None:
            found = BudgetWindow.objects.filter(**self._lookup(claim)).values_list("pk", flat=True).first()
        if found is None:
            try:
                with transaction.atomic():
                    found = BudgetWindow.objects.create(**self._lookup(claim), spent_nanos=recorded_spend(claim)).pk
            except IntegrityError:
                found = BudgetWindow.objects.filter(**self._lookup(claim)).values_list("pk", flat=True).get()
        self._ids[claim.key] = found
        return found

    # -- reserving -------------------------------------------------------------------------------------
    @staticmethod
    def _expire(window_id: int, now: datetime) -> int:
        expired = list(BudgetReservation.objects.select_for_update()
                       .filter(window_id=window_id, expires_at__lte=now).values_list("pk", "amount_nanos"))
        if expired:
            BudgetReservation.objects.filter(pk__in=[pk for pk, _ in expired]).delete()
            freed = sum(amount for _, amount in expired)
            BudgetWindow.objects.filter(pk=window_id).update(reserved_nanos=F("reserved_nanos") - freed)
        return len(expired)

    def _refusal(self, claim: Claim, window_id: int) -> Refusal:
        row = BudgetWindow.objects.filter(pk=window_id).values_list("spent_nanos", "reserved_nanos").first()
        if row is None:
            self._ids.pop(claim.key, None)
            raise _WindowGone
        return Refusal(claim, *row)

    def _reserve_once(self, claims: Sequence[Claim], nanos: int, lease: str, now: datetime) -> Refusal | None:
        checked = sorted(((self._window_id(c), c) for c in claims if c.limit is not None), key=lambda p: p[0])
        expires = connection.ops.adapt_datetimefield_value(now + lease_ttl())
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for window_id, claim in checked:
                    cursor.execute(HOLD, [nanos, window_id, nanos, claim.limit])
                    if cursor.rowcount == 1:
                        continue
                    if self._expire(window_id, now):
                        cursor.execute(HOLD, [nanos, window_id, nanos, claim.limit])
                    if cursor.rowcount != 1:
                        raise _Refused(self._refusal(claim, window_id))
                values = ", ".join(["(%s, %s, %s, %s)"] * len(checked))
                cursor.execute(f"INSERT INTO {HOLDS} (window_id, lease, amount_nanos, expires_at) VALUES {values}",
                               [v for window_id, _ in checked for v in (window_id, lease, nanos, expires)])
        except _Refused as refused:
            return refused.refusal
        return None

    def reserve_sync(self, claims: Sequence[Claim], nanos: int, lease: str, now: datetime) -> Refusal | None:
        try:
            return self._reserve_once(claims, nanos, lease, now)
        except _WindowGone:
            return self._reserve_once(claims, nanos, lease, now)

    async def reserve(self, claims: Sequence[Claim], nanos: int, lease: str, now: datetime) -> Refusal | None:
        return await db_task(self.reserve_sync)(claims, nanos, lease, now)

    # -- settling --------------------------------------------------------------------------------------
    def settle_batch(self, batch: Sequence[tuple[Sequence[Claim], str, int]]) -> list[list[int]]:
        """Apply settlements (claims, lease, actual nano-USD) in one transaction; returns each one's
        windows' spend afterwards."""
        ids = [[self._window_id(claim) for claim in claims] for claims, _, _ in batch]
        leases: dict[int, list[str]] = {}
        added: dict[int, int] = {}
        for window_ids, (_, lease, nanos) in zip(ids, batch):
            for window_id in window_ids:
                leases.setdefault(window_id, []).append(lease)
                added[window_id] = added.get(window_id, 0) + nanos
        with transaction.atomic(), connection.cursor() as cursor:
            for window_id in sorted(added):
                names = leases[window_id]
                cursor.execute(f"DELETE FROM {HOLDS} WHERE window_id = %s AND lease IN ({', '.join(['%s'] * len(names))})"
                               f" RETURNING amount_nanos", [window_id, *names])
                released = sum(amount for (amount,) in cursor.fetchall())
                cursor.execute(f"UPDATE {WINDOWS} SET spent_nanos = spent_nanos + %s, "
                               f"reserved_nanos = reserved_nanos - %s WHERE id = %s RETURNING spent_nanos",
                               [added[window_id], released, window_id])
                row = cursor.fetchone()
                added[window_id] = row[0] if row else 0
        return [[added[window_id] for window_id in window_ids] for window_ids in ids]

    async def settle(self, claims: Sequence[Claim], lease: str, held: int, nanos: int) -> list[int]:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((claims, lease, nanos, future))
        self._writer = running(self._writer, self._write_settlements)
        return await future

    async def _write_settlements(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await db_task(self.settle_batch)(
                    [(claims, lease, nanos) for claims, lease, nanos, _ in batch])
            except Exception as exc:  # noqa: BLE001 - each waiting settlement retries on its own
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), spent in zip(batch, results):
                if not future.done():
                    future.set_result(spent)

    def current(self, claim: Claim) -> tuple[int, int] | None:
        return BudgetWindow.objects.filter(**self._lookup(claim)).values_list("spent_nanos", "reserved_nanos").first()
