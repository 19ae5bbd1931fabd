"""Client API keys: only a hash and a display prefix are stored, and the raw key is printed exactly once."""
from __future__ import annotations

import hashlib
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection

from gateway.apikeys import api_key_create, hash_api_key
from gateway.models import ApiKey, Endpoint

KEY_RE = re.compile(r"^gw-[A-Za-z0-9_-]{43}$")


def _create_key_via_command(*args: str) -> tuple[str, str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    lines = out.getvalue().splitlines()
    return lines[-1], "\n".join(lines[:-1])


def test_hash_is_sha256_hex():
    assert hash_api_key("gw-abc") == hashlib.sha256(b"gw-abc").hexdigest()


@pytest.mark.django_db
def test_create_stores_hash_and_prefix_not_the_key():
    api_key, raw = api_key_create(name="ci")
    assert KEY_RE.match(raw)
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.key_hash == hash_api_key(raw)
    assert stored.prefix == raw[:10]
    assert raw not in {stored.key_hash, stored.prefix, stored.name}


@pytest.mark.django_db
def test_each_key_is_different():
    raws = {api_key_create(name=f"k{i}")[1] for i in range(5)}
    assert len(raws) == 5


@pytest.mark.django_db
def test_create_sets_scope_owner_and_admin_flag():
    user = get_user_model().objects.create_user("alice")
    chat = Endpoint.objects.create(name="chat")
    Endpoint.objects.create(name="embed")
    api_key, _ = api_key_create(name="alice-chat", endpoints=[chat], owner=user, is_admin=True)
    assert list(api_key.endpoints.values_list("name", flat=True)) == ["chat"]
    assert api_key.owner == user
    assert api_key.is_admin


@pytest.mark.django_db
def test_duplicate_name_is_refused():
    api_key_create(name="ci")
    with pytest.raises(ValidationError):
        api_key_create(name="ci")
    assert ApiKey.objects.count() == 1


@pytest.mark.django_db
def test_command_prints_the_key_as_the_last_line():
    raw, before = _create_key_via_command("ci")
    assert KEY_RE.match(raw)
    assert "cannot be shown again" in before
    assert ApiKey.objects.get(name="ci").key_hash == hash_api_key(raw)


@pytest.mark.django_db
def test_command_scopes_key_to_endpoints_owner_and_admin():
    Endpoint.objects.create(name="chat")
    Endpoint.objects.create(name="embed")
    get_user_model().objects.create_user("bob")
    raw, _ = _create_key_via_command("bob-key", "--endpoints", "chat, embed", "--owner", "bob", "--admin")
    api_key = ApiKey.objects.get(key_hash=hash_api_key(raw))
    assert sorted(api_key.endpoints.values_list("name", flat=True)) == ["chat", "embed"]
    assert api_key.owner.username == "bob"
    assert api_key.is_admin


@pytest.mark.django_db
def test_command_lists_unknown_endpoints_and_creates_nothing():
    Endpoint.objects.create(name="chat")
    with pytest.raises(CommandError, match="Unknown endpoint\\(s\\): nope, other"):
        _create_key_via_command("k", "--endpoints", "chat,nope,other")
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_command_rejects_unknown_owner_and_duplicate_name():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        _create_key_via_command("k", "--owner", "ghost")
    _create_key_via_command("k")
    with pytest.raises(CommandError, match="already exists"):
        _create_key_via_command("k")


@pytest.mark.django_db(transaction=True)
def test_raw_key_is_nowhere_in_the_database():
    raw, _ = _create_key_via_command("ci")
    api_key_raw = api_key_create(name="service")[1]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            cells = " ".join(str(cell) for row in cursor.fetchall() for cell in row)
            assert raw not in cells and api_key_raw not in cells, table
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        image = connection.connection.serialize()
        assert raw.encode() not in image and api_key_raw.encode() not in image
        assert hash_api_key(raw).encode() in image
