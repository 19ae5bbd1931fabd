"""`manage.py rotate_kek`: re-wrap every secret's data key under the current key-encryption key."""
from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from gateway.config import crypto
from gateway.config.secrets import secrets_rotate_kek


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the numbered procedure in `help` on separate lines."""


class Command(BaseCommand):
    help = """Re-wrap every secret's data key under the current key-encryption key (KEK), in one transaction.
Secret values themselves are not re-encrypted, so this is fast and safe to run on a live system.

Zero-downtime rotation from KEK version N to N+1:
  1. On every server set
       GATEWAY_KEK_PASSPHRASE=<new passphrase>
       GATEWAY_KEK_VERSION=<N+1>
       GATEWAY_KEK_OLD_PASSPHRASES="<N>:<old passphrase>"
     and restart them one by one. They now read rows of both versions and write new ones under N+1;
     servers not yet restarted cannot read those, so leave secrets unedited until all have restarted.
  2. Run `manage.py rotate_kek` once (with the same environment). It reports how many rows it re-wrapped.
  3. Remove the old passphrase from GATEWAY_KEK_OLD_PASSPHRASES on every server.

If any row cannot be unwrapped (e.g. its version's passphrase is missing), nothing is changed."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> argparse.ArgumentParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def handle(self, *args, **options) -> None:
        try:
            keyring = crypto.keyring_from_settings()
            changed = secrets_rotate_kek(keyring=keyring)
        except (crypto.SecretsUnavailable, crypto.SecretDecryptionError) as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        self.stdout.write(f"Re-wrapped {changed} secret(s) under KEK version {keyring.current_version}.")
