"""The bottom of the budgets package: fixed windows, a policy's claim on its current window, and what every
counting backend shares (a refusal, the spend already recorded in a window, how long a hold lives). All
amounts are integer nano-USD."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db.models import Sum

from gateway.config.snapshot import BudgetSpec
from gateway.models import UsageRecord

NANOS_PER_USD = 10**9
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FIRST_MONDAY = EPOCH - timedelta(days=3)  # 1970-01-01 was a Thursday


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_nanos(usd: Decimal | None) -> int:
    """USD to integer nano-USD, rounded up so that a settled cost never undercounts."""
    if not usd:
        return 0
    return int((Decimal(usd) * NANOS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def to_usd(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS_PER_USD


# --- Windows ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def describe(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%M:%SZ} to {self.end:%Y-%m-%dT%H:%M:%SZ}"


def _month(index: int) -> datetime:
    return datetime(1970 + index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def window_for(unit: str, value: int, at: datetime) -> Window:
    """The fixed window containing `at`. Minutes and hours are multiples of `value` counted from the Unix
    epoch; days, weeks and months start on UTC calendar boundaries (midnight, Monday, the 1st) and are
    multiples of `value` counted from the first such boundary of 1970, so every process agrees."""
    at = at.astimezone(timezone.utc)
    if unit in ("minutes", "hours"):
        size = value * (60 if unit == "minutes" else 3600)
        start = EPOCH + timedelta(seconds=int(at.timestamp()) // size * size)
        return Window(start, start + timedelta(seconds=size))
    if unit == "days":
        start = EPOCH + timedelta(days=(at - EPOCH).days // value * value)
        return Window(start, start + timedelta(days=value))
    if unit == "weeks":
        start = FIRST_MONDAY + timedelta(weeks=(at - FIRST_MONDAY).days // 7 // value * value)
        return Window(start, start + timedelta(weeks=value))
    if unit == "months":
        first = ((at.year - 1970) * 12 + at.month - 1) // value * value
        return Window(_month(first), _month(first + value))
    raise ValueError(f"Unknown budget window unit '{unit}'.")


@dataclass(frozen=True)
class Claim:
    """One policy's current window, as a backend counts it."""

    policy: BudgetSpec
    window: Window

    @property
    def subject(self) -> str:
        return f"{self.policy.scope}:{self.policy.target}"

    @property
    def key(self) -> str:
        return f"{self.policy.id}:{self.subject}:{int(self.window.start.timestamp())}:{int(self.window.end.timestamp())}"

    @property
    def amount(self) -> int:
        return to_nanos(self.policy.amount_usd)

    @property
    def limit(self) -> int | None:
        """The admission limit in nano-USD; None for `alert` policies, which never refuse."""
        return self.amount if self.policy.action == "reject" else None


def claim_for(policy: BudgetSpec, at: datetime) -> Claim:
    return Claim(policy, window_for(policy.window_unit, policy.window_value, at))


# --- Shared by every backend --------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    claim: Claim
    spent: int
    reserved: int


def recorded_spend(claim: Claim) -> int:
    """The cost of the usage records inside the claim's window and scope (sync; seeds a new window)."""
    records = UsageRecord.objects.filter(created_at__gte=claim.window.start, created_at__lt=claim.window.end)
    if claim.policy.scope == "endpoint":
        records = records.filter(endpoint_name=claim.policy.target)
    elif claim.policy.scope == "api_key":
        records = records.filter(api_key_name=claim.policy.target)
    return to_nanos(records.aggregate(total=Sum("cost_usd"))["total"])


def lease_ttl() -> timedelta:
    return timedelta(seconds=settings.GATEWAY_BUDGET_RESERVATION_TTL_SECONDS)
