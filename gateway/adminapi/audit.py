"""Who changed what through the management API, written to the admin's History (LogEntry) so an operator
reads API changes beside the ones made in the admin."""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import models

# LogEntry needs a user; a key without an owner is recorded under this inactive account.
SERVICE_USERNAME = "gateway-api"
ACTIONS = {"create": ADDITION, "update": CHANGE, "delete": DELETION}
VERBS = {"create": "Created", "update": "Changed", "delete": "Deleted"}


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: an admin API key (with its owner, if any) or a staff user's session."""

    user: AbstractBaseUser | None
    key_name: str | None = None

    @property
    def actor(self) -> str:
        """What the audit fields (`created_by`, `updated_by`) record."""
        if self.key_name is not None:
            return f"api-key:{self.key_name}"[:150]
        return self.user.get_username() if self.user else ""

    def describe(self) -> str:
        if self.key_name is None:
            return "a staff session"
        owner = f" (owner {self.user.get_username()})" if self.user is not None else ""
        return f"API key '{self.key_name}'{owner}"


def _log_user(caller: Caller) -> AbstractBaseUser:
    if caller.user is not None:
        return caller.user
    user, created = get_user_model().objects.get_or_create(username=SERVICE_USERNAME, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def record_change(caller: Caller, action: str, obj: models.Model, fields: tuple[str, ...] = ()) -> None:
    """One History entry; the message names the key (and its owner) and the fields that changed, never
    their values."""
    changed = f" ({', '.join(fields)})" if fields else ""
    LogEntry.objects.create(
        user=_log_user(caller),
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=ACTIONS[action],
        change_message=f"{VERBS[action]}{changed} through the management API by {caller.describe()}.",
    )
