"""Rotating the key-encryption key while secrets are live: old rows stay readable during the switch,
`rotate_kek` re-wraps all of them at once, and afterwards only the new passphrase is needed."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from gateway.config import crypto
from gateway.models import Secret
from gateway.config.secrets import secret_create, secret_values

pytestmark = pytest.mark.database

NEW_PASSPHRASE = "rotated-kek-passphrase"
VALUES = {name: {"api_key": f"sk-{name}-0123456789abcdef"} for name in ("openai-main", "anthropic-main", "groq")}


@pytest.fixture
def live_secrets(settings, monkeypatch) -> str:
    """Secrets written under KEK version 1; returns the version-1 passphrase."""
    monkeypatch.setenv("GATEWAY_KEK_VERSION", "1")
    settings.GATEWAY_KEK_OLD_PASSPHRASES = []
    for name, values in VALUES.items():
        secret_create(name=name, provider="openai", values=values)
    assert set(Secret.objects.values_list("kek_version", flat=True)) == {1}
    return settings.GATEWAY_KEK_PASSPHRASE


def _switch_to_version_2(settings, monkeypatch, old_passphrase: str) -> None:
    monkeypatch.setenv("GATEWAY_KEK_VERSION", "2")
    settings.GATEWAY_KEK_PASSPHRASE = NEW_PASSPHRASE
    settings.GATEWAY_KEK_OLD_PASSPHRASES = [f"1:{old_passphrase}"]


def _all_values() -> dict[str, dict]:
    return {secret.name: secret_values(secret) for secret in Secret.objects.all()}


def _rotate() -> str:
    out = StringIO()
    call_command("rotate_kek", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_rotation_with_live_data(live_secrets, settings, monkeypatch):
    ciphertexts_before = dict(Secret.objects.values_list("name", "encrypted_value"))
    _switch_to_version_2(settings, monkeypatch, live_secrets)
    assert _all_values() == VALUES

    assert "Re-wrapped 3 secret(s) under KEK version 2." in _rotate()

    assert set(Secret.objects.values_list("kek_version", flat=True)) == {2}
    assert {name: bytes(blob) for name, blob in Secret.objects.values_list("name", "encrypted_value")} == {
        name: bytes(blob) for name, blob in ciphertexts_before.items()
    }
    settings.GATEWAY_KEK_OLD_PASSPHRASES = []
    assert _all_values() == VALUES
    assert "Re-wrapped 0 secret(s)" in _rotate()


@pytest.mark.django_db
def test_secrets_written_during_rollout_use_the_new_version(live_secrets, settings, monkeypatch):
    _switch_to_version_2(settings, monkeypatch, live_secrets)
    secret_create(name="added-mid-rotation", provider="openai", values={"api_key": "sk-new-0123456789"})

    assert "Re-wrapped 3 secret(s)" in _rotate()

    settings.GATEWAY_KEK_OLD_PASSPHRASES = []
    assert _all_values()["added-mid-rotation"] == {"api_key": "sk-new-0123456789"}


@pytest.mark.django_db
def test_old_rows_need_the_old_passphrase_until_rotated(live_secrets, settings, monkeypatch):
    _switch_to_version_2(settings, monkeypatch, live_secrets)
    settings.GATEWAY_KEK_OLD_PASSPHRASES = []
    with pytest.raises(crypto.SecretDecryptionError, match="GATEWAY_KEK_OLD_PASSPHRASES"):
        _all_values()


@pytest.mark.django_db
def test_rotation_changes_nothing_when_a_row_cannot_be_unwrapped(live_secrets, settings, monkeypatch):
    Secret.objects.filter(name="groq").update(kek_version=7)
    before = list(Secret.objects.order_by("name").values_list("wrapped_dek", "kek_version"))
    _switch_to_version_2(settings, monkeypatch, live_secrets)

    with pytest.raises(CommandError, match="No passphrase for KEK version 7"):
        _rotate()

    assert list(Secret.objects.order_by("name").values_list("wrapped_dek", "kek_version")) == before
