"""Envelope encryption of secrets: round trip, tamper detection, and refusing to run without a passphrase."""
from __future__ import annotations

import pytest

from gateway.config import crypto
from gateway.models import Secret
from gateway.config.secrets import secret_create, secret_values

pytestmark = pytest.mark.database

VALUES = {"api_key": "sk-test-roundtrip-0123456789"}


def _flip_byte(blob: bytes, index: int = -1) -> bytes:
    data = bytearray(blob)
    data[index] ^= 0x01
    return bytes(data)


def _sealed(secret: Secret) -> crypto.Sealed:
    return crypto.Sealed(bytes(secret.encrypted_value), bytes(secret.wrapped_dek), secret.kek_version)


def test_round_trip_without_database():
    sealed = crypto.encrypt_values(VALUES, uid="uid-1", name="openai-main")
    assert VALUES["api_key"].encode() not in sealed.encrypted_value
    assert crypto.decrypt_values(sealed, uid="uid-1", name="openai-main") == VALUES


def test_each_encryption_uses_a_fresh_data_key_and_nonce():
    first = crypto.encrypt_values(VALUES, uid="uid-1", name="same")
    second = crypto.encrypt_values(VALUES, uid="uid-1", name="same")
    assert first.encrypted_value != second.encrypted_value
    assert first.wrapped_dek != second.wrapped_dek


@pytest.mark.django_db
def test_secret_round_trip_and_masking():
    secret = secret_create(name="openai-main", provider="openai", values=VALUES)
    stored = Secret.objects.get(pk=secret.pk)
    assert secret_values(stored) == VALUES
    assert stored.masked_value == {"api_key": "sk-...6789"}
    assert VALUES["api_key"].encode() not in bytes(stored.encrypted_value)


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["encrypted_value", "wrapped_dek"])
@pytest.mark.parametrize("index", [0, 20, -1], ids=["nonce", "body", "tag"])
def test_changed_ciphertext_byte_is_detected(field, index):
    secret = secret_create(name="victim", provider="openai", values=VALUES)
    Secret.objects.filter(pk=secret.pk).update(**{field: _flip_byte(bytes(getattr(secret, field)), index)})
    with pytest.raises(crypto.SecretDecryptionError):
        secret_values(Secret.objects.get(pk=secret.pk))


@pytest.mark.django_db
def test_ciphertext_copied_to_another_secret_is_rejected():
    source = secret_create(name="prod-key", provider="openai", values=VALUES)
    target = secret_create(name="dev-key", provider="openai", values={"api_key": "sk-dev-0000000000"})
    Secret.objects.filter(pk=target.pk).update(
        encrypted_value=source.encrypted_value, wrapped_dek=source.wrapped_dek, kek_version=source.kek_version
    )
    with pytest.raises(crypto.SecretDecryptionError):
        secret_values(Secret.objects.get(pk=target.pk))


@pytest.mark.django_db
def test_value_ciphertext_swapped_under_own_data_key_is_rejected():
    """Even with a valid wrapped data key, a value sealed for another secret does not open."""
    secret = secret_create(name="a", provider="openai", values=VALUES)
    sealed = _sealed(secret)
    with pytest.raises(crypto.SecretDecryptionError):
        crypto.decrypt_values(sealed, uid=str(secret.uid), name="b")


@pytest.mark.django_db
def test_rename_without_reencryption_is_rejected():
    secret = secret_create(name="original", provider="openai", values=VALUES)
    Secret.objects.filter(pk=secret.pk).update(name="renamed")
    with pytest.raises(crypto.SecretDecryptionError):
        secret_values(Secret.objects.get(pk=secret.pk))


def test_wrong_passphrase_is_rejected():
    sealed = crypto.encrypt_values(VALUES, uid="uid-1", name="n")
    wrong = crypto.Keyring(current_version=1, passphrases={1: "not-the-passphrase"})
    with pytest.raises(crypto.SecretDecryptionError):
        crypto.decrypt_values(sealed, uid="uid-1", name="n", keyring=wrong)


def test_missing_passphrase_outside_debug_refuses_with_a_clear_message(settings):
    settings.DEBUG = False
    settings.GATEWAY_KEK_PASSPHRASE = ""
    with pytest.raises(crypto.SecretsUnavailable, match="GATEWAY_KEK_PASSPHRASE is not set"):
        crypto.encrypt_values(VALUES, uid="uid-1", name="n")


@pytest.mark.django_db
def test_missing_passphrase_stores_nothing(settings):
    settings.DEBUG = False
    settings.GATEWAY_KEK_PASSPHRASE = ""
    with pytest.raises(crypto.SecretsUnavailable):
        secret_create(name="openai-main", provider="openai", values=VALUES)
    assert not Secret.objects.exists()


def test_mask_value_never_reveals_a_usable_key():
    assert crypto.mask_value("sk-test-SUPERSECRET-1234567890abcdef") == "sk-...cdef"
    assert crypto.mask_value("short") == "***"
    assert crypto.mask_value({"nested": "value"}) == "***"
