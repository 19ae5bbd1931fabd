"""How the operator's pages write amounts, durations and windows: money keeps every digit it has (a
$0.000001 limit is not `$0.00`), durations are milliseconds with two decimals, windows are singular at 1."""
from __future__ import annotations

from decimal import Decimal


def usd(amount: Decimal | float | str | None) -> str:
    """`$5.00`, `$0.000001`, `$1.25`: at least cents, never fewer digits than the amount has."""
    if amount is None:
        return "unknown"
    text = f"{Decimal(str(amount)).normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def ms(value: float | None) -> str:
    """A duration in milliseconds, two decimals at most; `-` when it was not measured."""
    return "-" if value is None else f"{value:,.2f} ms"


def window(value: int, unit: str) -> str:
    """`1 day`, `7 days`: the unit names are plural (`days`, `hours`), singular for one."""
    return f"{value} {unit.removesuffix('s') if value == 1 else unit}"
