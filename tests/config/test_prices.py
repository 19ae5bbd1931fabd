"""Prices: the built-in table, name normalisation, operator-loaded prices, model-definition overrides, and
what the snapshot, the cost function and the admin make of them."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from gateway.config import prices
from gateway.config.version import current_config_version
from gateway.models import ModelDefinition, PriceEntry
from gateway.config.snapshot import build_snapshot
from gateway.usage.records import cost_of
from providers.wire import TokenUsage
from providers.base import Prices


@pytest.fixture
def table() -> prices.PriceTable:
    return prices.builtin_table()


def test_builtin_table_covers_every_listed_provider_and_is_dated(table):
    assert {"openai", "anthropic", "gemini", "mistral", "groq", "deepseek", "xai"} <= set(table.entries)
    assert table.as_of
    for provider, models in table.entries.items():
        for name, price in models.items():
            assert price.input is not None and price.output is not None, (provider, name)


@pytest.mark.parametrize("provider, model_name, expected", [
    ("openai", "gpt-4o-mini", "gpt-4o-mini"),
    ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
    ("openai", "GPT-4o", "gpt-4o"),
    ("azure", "gpt-4.1-mini", "gpt-4.1-mini"),
    ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("gemini", "models/gemini-2.0-flash-001", "gemini-2.0-flash"),
    ("gemini", "gemini-2.5-flash", "gemini-2.5-flash"),
    ("mistral", "mistral-large-latest", "mistral-large"),
    ("mistral", "mistral-small-2503", "mistral-small"),
    ("xai", "grok-4-0709", "grok-4"),
    ("deepseek", "deepseek-chat", "deepseek-chat"),
    ("groq", "llama-3.3-70b-versatile", "llama-3.3-70b-versatile"),
])
def test_lookup_normalises_dated_and_versioned_names(table, provider, model_name, expected):
    home = prices.TABLE_ALIASES.get(provider, provider)
    assert table.lookup(provider, model_name) == table.entries[home][expected]


def test_an_exact_dated_entry_wins_over_the_alias(table):
    assert table.lookup("openai", "gpt-4o-2024-05-13").input == Decimal("5.00")
    assert table.lookup("openai", "gpt-4o").input == Decimal("2.50")


def test_vendor_prefixed_ids_use_the_vendor_table_unless_the_provider_prices_them(table):
    assert table.lookup("openrouter", "anthropic/claude-sonnet-4") == table.entries["anthropic"]["claude-sonnet-4"]
    assert table.lookup("groq", "openai/gpt-oss-120b") == table.entries["groq"]["openai/gpt-oss-120b"]


def test_a_different_model_sharing_a_prefix_is_not_priced_by_mistake(table):
    assert table.lookup("openai", "gpt-4o-mini-tts") is None
    assert table.lookup("openai", "no-such-model") is None
    assert table.lookup("fake", "fake-echo") is None


def test_cost_applies_the_cached_price_to_cached_tokens():
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=400_000)
    assert cost_of(usage, Prices(Decimal("2"), Decimal("8"), Decimal("0.5"))) == Decimal("2") * Decimal("0.6") + \
        Decimal("0.5") * Decimal("0.4") + Decimal("8")
    # No cached price: cached tokens are billed as ordinary input.
    assert cost_of(usage, Prices(Decimal("2"), Decimal("8"))) == Decimal("10")
    assert cost_of(usage, Prices()) is None


def test_own_prices_override_the_table_as_a_whole(table):
    model = ModelDefinition(provider="openai", model_name="gpt-4o", input_cost_per_million=Decimal("1"),
                            output_cost_per_million=Decimal("2"))
    assert prices.prices_for(model, table) == Prices(Decimal("1"), Decimal("2"), None)
    model.input_cost_per_million = model.output_cost_per_million = None
    assert prices.prices_for(model, table) == table.entries["openai"]["gpt-4o"]


@pytest.mark.parametrize("document, message", [
    ([], "'providers' object"),
    ({"providers": {"openai": []}}, "providers.openai"),
    ({"providers": {"openai": {"m": {"input": 1}}}}, "'input' and 'output' are required"),
    ({"providers": {"openai": {"m": {"input": -1, "output": 1}}}}, ">= 0"),
    ({"providers": {"openai": {"m": {"input": "abc", "output": 1}}}}, "not a number"),
    ({"providers": {"openai": {"m": {"input": 1, "output": 1, "batch": 1}}}}, "expected an object with keys"),
])
def test_a_bad_price_file_is_refused_with_its_location(document, message):
    with pytest.raises(prices.PriceFileError, match=message):
        prices.parse_price_file(document)


def _write(tmp_path, providers: dict) -> str:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"as_of": "2026-11-01", "providers": providers}))
    return str(path)


@pytest.mark.django_db(transaction=True)
def test_load_prices_upserts_replaces_and_tells_the_servers(tmp_path, capsys):
    before = current_config_version()
    call_command("load_prices", _write(tmp_path, {"openai": {"gpt-4o": {"input": 2, "output": 9},
                                                             "my-tune": {"input": 3, "output": 4}}}))
    assert "2 created" in capsys.readouterr().out
    assert current_config_version() > before
    call_command("load_prices", _write(tmp_path, {"openai": {"gpt-4o": {"input": 2, "output": 7}}}), "--replace")
    assert "1 updated" in capsys.readouterr().out
    assert list(PriceEntry.objects.values_list("model_name", "output_cost_per_million")) == [("gpt-4o", Decimal("7"))]
    with pytest.raises(CommandError, match="cannot read"):
        call_command("load_prices", str(tmp_path / "missing.json"))


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_resolves_loaded_over_builtin_and_own_over_both(tmp_path):
    ModelDefinition.objects.create(name="listed", provider="fake", model_name="gpt-4o")
    ModelDefinition.objects.create(name="tuned", provider="openai", model_name="gpt-4o-2024-08-06")
    ModelDefinition.objects.create(name="own", provider="openai", model_name="gpt-4o", input_cost_per_million=1,
                                   output_cost_per_million=1, cached_input_cost_per_million=Decimal("0.1"))
    call_command("load_prices", _write(tmp_path, {"openai": {"gpt-4o": {"input": 2, "output": 7, "cached_input": 1}}}))
    from gateway.models import Endpoint, EndpointModel

    endpoint = Endpoint.objects.create(name="e")
    for model in ModelDefinition.objects.all():
        EndpointModel.objects.create(endpoint=endpoint, model=model, linkage="primary")
    targets = {link.target.name: link.target for link in build_snapshot().endpoints["e"].primaries}
    assert targets["listed"].prices == Prices()  # the fake provider has no table
    assert targets["tuned"].prices == Prices(Decimal("2"), Decimal("7"), Decimal("1"))
    assert targets["own"].prices == Prices(Decimal("1"), Decimal("1"), Decimal("0.1"))


@pytest.mark.django_db
def test_the_admin_warns_about_a_model_without_a_price():
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    unknown = ModelDefinition.objects.create(name="mystery", provider="openai_compatible", model_name="local-llm")
    ModelDefinition.objects.create(name="known", provider="openai", model_name="gpt-4o-mini")
    listing = client.get(reverse("admin:gateway_modeldefinition_changelist")).content.decode()
    assert "No price is known for mystery" in listing
    assert "unknown: cost not recorded" in listing and "$0.15 / $0.6 / 0.075 (table)" in listing
    page = client.get(reverse("admin:gateway_modeldefinition_change", args=[unknown.pk])).content.decode()
    assert "No price known for &#x27;local-llm&#x27;" in page


REALTIME_LISTED = Prices(Decimal(4), Decimal(16), Decimal("0.4"), Decimal(32), Decimal(64))  # gpt-realtime's line


@pytest.mark.parametrize("own, expected", [
    ({}, REALTIME_LISTED),
    # Own text prices, no own audio prices: the text is negotiated, audio stays at the list price.
    ({"input_cost_per_million": 1, "output_cost_per_million": 2},
     Prices(Decimal(1), Decimal(2), None, Decimal(32), Decimal(64))),
    # Own audio prices win over the list's, as a whole (an empty one is unknown, not the list's).
    ({"audio_input_cost_per_million": 10},
     Prices(Decimal(4), Decimal(16), Decimal("0.4"), Decimal(10), None)),
    ({"input_cost_per_million": 1, "output_cost_per_million": 2, "audio_input_cost_per_million": 5,
      "audio_output_cost_per_million": 6}, Prices(Decimal(1), Decimal(2), None, Decimal(5), Decimal(6))),
])
def test_audio_prices_come_from_the_model_definition_before_the_table(table, own, expected):
    model = ModelDefinition(provider="openai", model_name="gpt-realtime", **own)
    assert prices.prices_for(model, table) == expected


def test_audio_price_stays_unknown_when_nothing_sets_one(table):
    model = ModelDefinition(provider="openai", model_name="gpt-4o", input_cost_per_million=1,
                            output_cost_per_million=2)
    found = prices.prices_for(model, table)
    assert (found.audio_input, found.audio_output) == (None, None)


@pytest.mark.django_db(transaction=True)
def test_loaded_audio_prices_are_kept_and_reach_the_snapshot(tmp_path):
    from gateway.models import Endpoint, EndpointModel

    call_command("load_prices", _write(tmp_path, {"openai": {"gpt-realtime": {
        "input": 3, "output": 12, "audio_input": 24, "audio_output": 48}}}))
    assert PriceEntry.objects.values_list("audio_input_cost_per_million", "audio_output_cost_per_million").get() == (
        Decimal(24), Decimal(48))
    listed = ModelDefinition.objects.create(name="listed", provider="openai", model_name="gpt-realtime")
    own = ModelDefinition.objects.create(name="own", provider="openai", model_name="gpt-realtime",
                                         audio_input_cost_per_million=Decimal("20.5"),
                                         audio_output_cost_per_million=40)
    endpoint = Endpoint.objects.create(name="voice")
    for model in (listed, own):
        EndpointModel.objects.create(endpoint=endpoint, model=model, linkage="primary")
    targets = {link.target.name: link.target for link in build_snapshot().endpoints["voice"].primaries}
    assert targets["listed"].prices == Prices(Decimal(3), Decimal(12), None, Decimal(24), Decimal(48))
    assert targets["own"].prices == Prices(Decimal(3), Decimal(12), None, Decimal("20.5"), Decimal(40))


@pytest.mark.django_db
def test_the_admin_form_edits_audio_prices():
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    model = ModelDefinition.objects.create(name="voice", provider="fake", model_name="rt")
    url = reverse("admin:gateway_modeldefinition_change", args=[model.pk])
    page = client.get(url).content.decode()
    assert 'name="audio_input_cost_per_million"' in page and 'name="audio_output_cost_per_million"' in page
    response = client.post(url, {"name": "voice", "provider": "fake", "model_name": "rt",
                                 "audio_input_cost_per_million": "32", "audio_output_cost_per_million": "-1"})
    assert response.status_code == 200 and "greater than or equal to 0" in response.content.decode()
    response = client.post(url, {"name": "voice", "provider": "fake", "model_name": "rt",
                                 "audio_input_cost_per_million": "32", "audio_output_cost_per_million": "64"})
    assert response.status_code == 302
    model.refresh_from_db()
    assert (model.audio_input_cost_per_million, model.audio_output_cost_per_million) == (Decimal(32), Decimal(64))
