"""`manage.py gateway_apply FILE.yaml`: make the configuration match a declarative file."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from gateway.config.apply import ConfigError, apply_config, load_config_file
from gateway.config.crypto import SecretsUnavailable


class Command(BaseCommand):
    help = (
        "Create or update secrets, models, guardrails, endpoints and budgets by name from a YAML file, "
        "idempotently and in one transaction. A file with problems changes nothing and lists them all. "
        "Secret values are never printed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The YAML configuration file.")
        parser.add_argument("--prune", action="store_true",
                            help="Also delete secrets, models, guardrails, endpoints and budgets absent from the file.")
        parser.add_argument("--dry-run", action="store_true", help="Print the plan and change nothing.")

    def handle(self, *args, file: str, prune: bool, dry_run: bool, **options) -> None:
        try:
            result = apply_config(load_config_file(file), prune=prune, dry_run=dry_run)
        except (ConfigError, SecretsUnavailable) as exc:
            raise CommandError(str(exc)) from None
        for change in result.changes:
            self.stdout.write(str(change))
        self.stdout.write(result.summary())
