"""Envelope encryption for provider secrets.

Each secret gets a random 256-bit data key (DEK) that encrypts its values with AES-256-GCM; the DEK is
wrapped by a key-encryption key (KEK) derived from a passphrase in the environment. The row stores which
KEK version wrapped its DEK, so a rotation can run while servers keep serving: servers hold the current
and the previous passphrases, and `rotate_kek` re-wraps every DEK to the current version.
"""
from __future__ import annotations

import functools
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings

logger = logging.getLogger(__name__)

KDF_ITERATIONS = 600_000
NONCE_BYTES = 12


class SecretsUnavailable(Exception):
    """The gateway has no usable key-encryption key, so it can neither store nor read secrets."""


class SecretDecryptionError(Exception):
    """A stored secret failed authentication: wrong passphrase, tampered ciphertext or swapped row data."""


@dataclass(frozen=True)
class Keyring:
    current_version: int
    passphrases: dict[int, str]

    def kek(self, version: int) -> bytes:
        try:
            passphrase = self.passphrases[version]
        except KeyError:
            raise SecretDecryptionError(
                f"No passphrase for KEK version {version}: set it in GATEWAY_KEK_OLD_PASSPHRASES as '{version}:<passphrase>'."
            ) from None
        return derive_kek(passphrase, version)


@functools.lru_cache(maxsize=16)
def derive_kek(passphrase: str, version: int) -> bytes:
    """PBKDF2 is deliberately slow; the result is memoised so each process pays it once per version."""
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"django-ai-gateway/kek/v" + version.to_bytes(4, "big"),
        iterations=KDF_ITERATIONS,
    )
    return kdf.derive(passphrase.encode())


def keyring_from_settings() -> Keyring:
    passphrase = settings.GATEWAY_KEK_PASSPHRASE
    version = int(os.environ.get("GATEWAY_KEK_VERSION", "1") or 1)
    if not passphrase:
        if not settings.DEBUG:
            raise SecretsUnavailable(
                "GATEWAY_KEK_PASSPHRASE is not set, so provider secrets can be neither stored nor read. "
                "Set it to a long random string (scripts/start.sh writes one into .env)."
            )
        passphrase = _debug_passphrase()
    passphrases = {version: passphrase}
    for entry in settings.GATEWAY_KEK_OLD_PASSPHRASES:
        old_version, sep, old_passphrase = entry.partition(":")
        if not sep or not old_version.strip().isdigit() or not old_passphrase:
            raise SecretsUnavailable("GATEWAY_KEK_OLD_PASSPHRASES entries must look like '<version>:<passphrase>'.")
        passphrases.setdefault(int(old_version), old_passphrase)
    return Keyring(current_version=version, passphrases=passphrases)


def _debug_passphrase() -> str:
    """DEBUG only: a random passphrase kept in the data folder (owner-readable), never a public default,
    so a developer can try the admin without configuring one."""
    path = Path(settings.DATA_DIR) / "debug-kek-passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    logger.warning("GATEWAY_KEK_PASSPHRASE is not set; DEBUG is on, so secrets are keyed from %s.", path)
    return path.read_text().strip()


@dataclass(frozen=True)
class Sealed:
    encrypted_value: bytes
    wrapped_dek: bytes
    kek_version: int


def _aad(uid: str, name: str) -> bytes:
    return f"{uid}|{name}".encode()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(bytes(blob[:NONCE_BYTES]), bytes(blob[NONCE_BYTES:]), aad)
    except (InvalidTag, ValueError):
        raise SecretDecryptionError("Secret failed authentication (wrong passphrase or tampered data).") from None


def encrypt_values(values: dict, *, uid: str, name: str, keyring: Keyring | None = None) -> Sealed:
    keyring = keyring or keyring_from_settings()
    dek = AESGCM.generate_key(bit_length=256)
    version = keyring.current_version
    return Sealed(
        encrypted_value=_seal(dek, orjson.dumps(values), _aad(uid, name)),
        wrapped_dek=_seal(keyring.kek(version), dek, b"dek|" + str(uid).encode()),
        kek_version=version,
    )


def decrypt_values(sealed: Sealed, *, uid: str, name: str, keyring: Keyring | None = None) -> dict:
    keyring = keyring or keyring_from_settings()
    dek = _open(keyring.kek(sealed.kek_version), sealed.wrapped_dek, b"dek|" + str(uid).encode())
    return orjson.loads(_open(dek, sealed.encrypted_value, _aad(uid, name)))


def rewrap_dek(sealed: Sealed, *, uid: str, keyring: Keyring) -> Sealed:
    """The same DEK wrapped under the current KEK; the value ciphertext is untouched."""
    dek = _open(keyring.kek(sealed.kek_version), sealed.wrapped_dek, b"dek|" + str(uid).encode())
    version = keyring.current_version
    return Sealed(sealed.encrypted_value, _seal(keyring.kek(version), dek, b"dek|" + str(uid).encode()), version)


def mask_value(value: object) -> str:
    """Enough to recognise a key, never enough to use it."""
    if not isinstance(value, str) or len(value) < 12:
        return "***"
    return f"{value[:3]}...{value[-4:]}"
