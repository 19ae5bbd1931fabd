"""`manage.py export_usage --since ... --format csv|jsonl`: usage records for billing and analysis,
streamed from the database in chunks so an export of any size runs in constant memory."""
from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta, timezone

import orjson
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from gateway.models import UsageRecord

FIELDS = [f.name for f in UsageRecord._meta.get_fields() if f.concrete]
RELATIVE = re.compile(r"^(\d+)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(value: str, now: datetime) -> datetime:
    """`2026-11-01`, `2026-11-01T12:00:00Z`, or a span back from now: `90m`, `24h`, `7d`, `2w`."""
    relative = RELATIVE.match(value.strip())
    if relative:
        return now - timedelta(**{UNITS[relative.group(2)]: int(relative.group(1))})
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"'{value}' is not a date, a date-time or a span like 24h or 7d.")
        moment = datetime(day.year, day.month, day.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _Unterminated:
    """The command's stdout without the newline Django adds to every write (csv and jsonl bring their own)."""

    def __init__(self, out) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


class Command(BaseCommand):
    help = "Export usage records created since a moment, as CSV or JSON Lines (default: to standard output)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", required=True, help="2026-11-01, 2026-11-01T12:00:00Z, or 24h / 7d / 2w ago.")
        parser.add_argument("--until", help="End (exclusive), same forms; default now.")
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--endpoint", help="Only this endpoint.")
        parser.add_argument("--key", help="Only this API key name.")
        parser.add_argument("--output", help="Write to this file instead of standard output.")

    def handle(self, *args, since: str, until: str | None, format: str, endpoint: str | None, key: str | None,
               output: str | None, **options) -> None:
        now = datetime.now(timezone.utc)
        records = UsageRecord.objects.filter(created_at__gte=parse_moment(since, now))
        if until:
            records = records.filter(created_at__lt=parse_moment(until, now))
        if endpoint:
            records = records.filter(endpoint_name=endpoint)
        if key:
            records = records.filter(api_key_name=key)
        rows = records.order_by("created_at", "id").values_list(*FIELDS).iterator(chunk_size=2000)
        stream = open(output, "w", newline="") if output else _Unterminated(self.stdout)
        try:
            count = self._write(stream, format, rows)
        finally:
            if output:
                stream.close()
        if output:
            self.stderr.write(f"Exported {count} usage records to {output}.")

    @staticmethod
    def _write(stream, format: str, rows) -> int:
        count = 0
        if format == "csv":
            writer = csv.writer(stream)
            writer.writerow(FIELDS)
            for row in rows:
                writer.writerow(["" if v is None else _plain(v) for v in row])
                count += 1
            return count
        for row in rows:
            stream.write(orjson.dumps(dict(zip(FIELDS, row)), default=str).decode() + "\n")
            count += 1
        return count
