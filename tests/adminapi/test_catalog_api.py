"""The provider list and the model catalog: derived from the providers package and the price file, with
the operator's loaded entries on top."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client

from gateway.apikeys import api_key_create
from gateway.models import Provider
from providers.registry import ADAPTERS

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> Client:
    _, raw = api_key_create(name="catalog", is_admin=True)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def by_name(items: list[dict], key: str) -> dict[str, dict]:
    return {item[key]: item for item in items}


def test_every_provider_is_listed_with_what_its_secret_holds_and_what_it_serves(admin):
    providers = by_name(admin.get("/gateway/admin/v1/providers").json()["data"], "name")
    assert set(providers) == set(Provider.values) == set(ADAPTERS)
    bedrock = providers["bedrock"]
    assert [mode["name"] for mode in bedrock["credential_modes"]] == ["api_key", "access_keys", "default_chain"]
    assert [mode["name"] for mode in providers["vertex_ai"]["credential_modes"]] == ["service_account", "adc"]
    assert [mode["name"] for mode in providers["databricks"]["credential_modes"]] == ["api_key", "oauth_m2m"]
    assert "/gateway/mlflow/v1/embeddings" in providers["cohere"]["routes"]
    assert {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"} <= {
        field["name"] for field in bedrock["credential_fields"]}
    assert all(field["secret"] for field in bedrock["credential_fields"])
    region = by_name(bedrock["auth_config_fields"], "name")["aws_region_name"]
    assert region["default"] == "us-east-1" and region["secret"] is False
    anthropic = providers["anthropic"]
    assert "embeddings" not in anthropic["operations"]
    assert "/gateway/anthropic/v1/messages" in anthropic["routes"]
    assert "/gateway/openai/v1/responses" in providers["openai"]["routes"]
    # Groq speaks no Responses API of its own: the route is served by translation, not relayed untouched.
    assert "/gateway/openai/v1/responses" in providers["groq"]["routes"]
    assert "/gateway/openai/v1/responses" not in providers["groq"]["passthrough_routes"]
    assert "/gateway/anthropic/v1/messages" in providers["anthropic"]["passthrough_routes"]
    assert by_name(providers["azure"]["auth_config_fields"], "name")["api_base"]["required"] is True


def test_catalog_models_carry_prices_limits_and_capabilities(admin):
    models = by_name(admin.get("/gateway/admin/v1/catalog/models?provider=openai").json()["data"], "model_name")
    mini = models["gpt-4o-mini"]
    assert (mini["input_cost_per_million"], mini["output_cost_per_million"]) == (0.15, 0.60)
    assert mini["context_window"] == 128000 and {"chat", "tools", "vision"} <= set(mini["capabilities"])
    assert models["text-embedding-3-small"]["capabilities"] == ["embeddings"]
    azure = admin.get("/gateway/admin/v1/catalog/models?provider=azure").json()["data"]
    assert {item["provider"] for item in azure} == {"azure"} and "gpt-4o-mini" in by_name(azure, "model_name")
    assert admin.get("/gateway/admin/v1/catalog/models?provider=nope").status_code == 400


def test_load_prices_updates_the_catalog(admin, tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"providers": {"openai": {
        "gpt-4o-mini": {"input": 0.1, "output": 0.4, "context_window": 256000, "capabilities": ["chat"]},
        "in-house-model": {"input": 1, "output": 2, "max_output_tokens": 4096, "capabilities": ["chat", "tools"]},
    }}}))
    call_command("load_prices", str(path))
    models = by_name(admin.get("/gateway/admin/v1/catalog/models?provider=openai").json()["data"], "model_name")
    assert models["gpt-4o-mini"]["input_cost_per_million"] == 0.1
    assert models["gpt-4o-mini"]["context_window"] == 256000
    assert models["in-house-model"]["max_output_tokens"] == 4096


def test_a_price_file_with_a_bad_capability_is_refused(tmp_path):
    from gateway.config.prices import PriceFileError, parse_price_file

    with pytest.raises(PriceFileError, match="capabilities"):
        parse_price_file({"providers": {"openai": {"m": {"input": 1, "output": 1, "capabilities": ["telepathy"]}}}})


def test_catalog_models_carry_audio_prices(admin):
    models = by_name(admin.get("/gateway/admin/v1/catalog/models?provider=openai").json()["data"], "model_name")
    realtime, chat = models["gpt-realtime"], models["gpt-4o-mini"]
    assert (realtime["audio_input_cost_per_million"], realtime["audio_output_cost_per_million"]) == (32, 64)
    assert (chat["audio_input_cost_per_million"], chat["audio_output_cost_per_million"]) == (None, None)
