"""Usage retention (old records deleted in batches) and `manage.py export_usage`."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from gateway.models import UsageRecord
from gateway.usage.retention import prune_usage
from tests.clock import this_hour

pytestmark = [pytest.mark.database, pytest.mark.clock]

NOW = this_hour() + timedelta(minutes=30)


@pytest.mark.django_db
def test_retention_deletes_old_records_in_batches():
    UsageRecord.objects.bulk_create([UsageRecord(created_at=NOW - timedelta(days=days), endpoint_name="e")
                                     for days in [40] * 25 + [10] * 3])
    assert prune_usage(days=30, now=NOW, batch_size=10) == 25
    assert UsageRecord.objects.count() == 3


@pytest.mark.django_db
def test_export_writes_csv_and_jsonl_since_a_moment(tmp_path):
    UsageRecord.objects.create(created_at=NOW - timedelta(days=3), endpoint_name="old")
    UsageRecord.objects.create(created_at=NOW, endpoint_name="chat", api_key_name="team", input_tokens=11,
                               cost_usd=Decimal("0.0000123"))
    out = tmp_path / "usage.csv"
    call_command("export_usage", "--since", (NOW - timedelta(days=1)).date().isoformat(), "--output", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["endpoint_name"], r["input_tokens"], r["cost_usd"]) for r in rows] == [("chat", "11", "0.0000123000")]
    stdout = io.StringIO()
    call_command("export_usage", "--since", "3650d", "--format", "jsonl", "--key", "team", stdout=stdout)
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert len(lines) == 1 and lines[0]["api_key_name"] == "team" and lines[0]["cost_usd"] == "0.0000123000"
