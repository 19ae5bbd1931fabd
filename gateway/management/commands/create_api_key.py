"""`manage.py create_api_key`: create a client key from the command line and print it once."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from gateway.apikeys import api_key_create
from gateway.models import Endpoint


class Command(BaseCommand):
    help = (
        "Create a client API key. The key is printed once, as the last line of output, so scripts can "
        "capture it with `tail -n 1`; only its hash is stored."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="A unique name for the key (shown in usage records and budgets).")
        parser.add_argument("--endpoints", default="",
                            help="Comma-separated endpoint names the key may call (default: all endpoints).")
        parser.add_argument("--owner", help="Username of the Django user who owns the key.")
        parser.add_argument("--admin", action="store_true", help="Allow the key to read the usage API.")

    def handle(self, *args, name: str, endpoints: str, owner: str | None, admin: bool, **options) -> None:
        wanted = sorted({part.strip() for part in endpoints.split(",") if part.strip()})
        found = list(Endpoint.objects.filter(name__in=wanted))
        missing = sorted(set(wanted) - {endpoint.name for endpoint in found})
        if missing:
            raise CommandError(f"Unknown endpoint(s): {', '.join(missing)}")
        user = None
        if owner:
            user_model = get_user_model()
            try:
                user = user_model._default_manager.get_by_natural_key(owner)
            except user_model.DoesNotExist:
                raise CommandError(f"No user named '{owner}'.") from None
        try:
            api_key, raw = api_key_create(name=name, endpoints=found, owner=user, is_admin=admin)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        scope = ", ".join(wanted) or "all endpoints"
        self.stdout.write(f"Created API key '{api_key.name}' ({scope}). Copy it now; it cannot be shown again:")
        self.stdout.write(raw)
