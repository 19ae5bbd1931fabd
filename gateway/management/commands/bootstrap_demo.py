"""Leave a fresh installation ready to try: a `demo` endpoint on the built-in fake provider and a client key
for it, plus directions to an admin login. Safe to run on every start; it never changes existing objects."""
from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from gateway.apikeys import api_key_create
from gateway.models import ApiKey, Endpoint, EndpointModel, ModelDefinition

DEMO = "demo"


class Command(BaseCommand):
    help = "Create the demo endpoint (fake provider) and a demo API key if they do not exist yet."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            model, _ = ModelDefinition.objects.get_or_create(
                name="demo-fake", defaults={"provider": "fake", "model_name": "fake-echo",
                                            "input_cost_per_million": 0, "output_cost_per_million": 0})
            endpoint, created = Endpoint.objects.get_or_create(name=DEMO, defaults={"description": "Quick-start demo"})
            if created:
                EndpointModel.objects.create(endpoint=endpoint, model=model)
            raw = None
            if not ApiKey.objects.filter(name=DEMO).exists():
                _, raw = api_key_create(name=DEMO)

        User = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        if username and os.environ.get("DJANGO_SUPERUSER_PASSWORD") and not User.objects.filter(username=username).exists():
            User.objects.create_superuser(username, os.environ.get("DJANGO_SUPERUSER_EMAIL", ""),
                                          os.environ["DJANGO_SUPERUSER_PASSWORD"])
            self.stdout.write(f"Created admin user '{username}'.")
        if not User.objects.filter(is_superuser=True).exists():
            self.stdout.write("No admin login yet. In another terminal: .venv/bin/python manage.py createsuperuser")
        if raw:
            self.stdout.write(
                "Demo endpoint 'demo' is ready. Its API key (shown once, stored only as a hash):\n"
                f"    export GATEWAY_API_KEY={raw}"
            )
        else:
            self.stdout.write("Demo endpoint 'demo' exists. New key: .venv/bin/python manage.py create_api_key NAME")
