"""Services that write secrets (always encrypted) and the one reader that decrypts them."""
from __future__ import annotations

from django.db import transaction

from gateway.config import crypto
from gateway.config.version import bump_config_version
from gateway.models import Secret


def _seal_into(secret: Secret, values: dict, keyring: crypto.Keyring | None = None) -> None:
    sealed = crypto.encrypt_values(values, uid=str(secret.uid), name=secret.name, keyring=keyring)
    secret.encrypted_value = sealed.encrypted_value
    secret.wrapped_dek = sealed.wrapped_dek
    secret.kek_version = sealed.kek_version
    secret.masked_value = {key: crypto.mask_value(value) for key, value in values.items()}


def secret_values(secret: Secret) -> dict:
    """The decrypted credentials; for the provider layer only, never for display."""
    sealed = crypto.Sealed(bytes(secret.encrypted_value), bytes(secret.wrapped_dek), secret.kek_version)
    return crypto.decrypt_values(sealed, uid=str(secret.uid), name=secret.name)


@transaction.atomic
def secret_create(*, name: str, provider: str, values: dict, auth_config: dict | None = None,
                  description: str = "", actor: str = "") -> Secret:
    secret = Secret(name=name, provider=provider, auth_config=auth_config or {}, description=description,
                    created_by=actor, updated_by=actor)
    _seal_into(secret, values)
    secret.full_clean(exclude=["encrypted_value", "wrapped_dek"])
    secret.save()  # the post_save signal bumps the config version (gateway/config/signals.py)
    return secret


@transaction.atomic
def secret_update(*, secret: Secret, values: dict | None = None, actor: str = "", **fields) -> Secret:
    """Update fields; `values=None` keeps the stored values. A rename re-encrypts, since the name is
    bound into the ciphertext."""
    old_name = Secret.objects.filter(pk=secret.pk).values_list("name", flat=True).first() if secret.pk else None
    if values is None and old_name is not None and old_name != fields.get("name", secret.name):
        renamed = Secret(pk=secret.pk, uid=secret.uid, name=old_name, encrypted_value=secret.encrypted_value,
                         wrapped_dek=secret.wrapped_dek, kek_version=secret.kek_version)
        values = secret_values(renamed)
    for key, value in fields.items():
        setattr(secret, key, value)
    if values is not None:
        _seal_into(secret, values)
    secret.updated_by = actor
    secret.full_clean(exclude=["encrypted_value", "wrapped_dek"])
    secret.save()  # the post_save signal bumps the config version (gateway/config/signals.py)
    return secret


@transaction.atomic
def secrets_rotate_kek(*, keyring: crypto.Keyring | None = None) -> int:
    """Re-wrap every data key under the current KEK in one transaction; returns how many rows changed."""
    keyring = keyring or crypto.keyring_from_settings()
    changed = 0
    for secret in Secret.objects.select_for_update().all():
        if secret.kek_version == keyring.current_version:
            continue
        sealed = crypto.Sealed(bytes(secret.encrypted_value), bytes(secret.wrapped_dek), secret.kek_version)
        resealed = crypto.rewrap_dek(sealed, uid=str(secret.uid), keyring=keyring)
        Secret.objects.filter(pk=secret.pk).update(wrapped_dek=resealed.wrapped_dek, kek_version=resealed.kek_version)
        changed += 1
    if changed:  # queryset updates send no signals
        bump_config_version()
    return changed
