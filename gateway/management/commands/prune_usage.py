"""`manage.py prune_usage`: delete old usage records now, in batches (servers also do it hourly)."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gateway.usage.retention import prune_usage


class Command(BaseCommand):
    help = "Delete usage records older than --days (default: GATEWAY_USAGE_RETENTION_DAYS), in batches."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=settings.GATEWAY_USAGE_RETENTION_DAYS)
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, days: int, batch_size: int, **options) -> None:
        if days <= 0:
            raise CommandError("Give --days (or set GATEWAY_USAGE_RETENTION_DAYS): records are kept forever by default.")
        deleted = prune_usage(days=days, batch_size=batch_size)
        self.stdout.write(f"Deleted {deleted} usage records older than {days} days.")
