"""Fixtures for black-box tests: fake upstream providers on 127.0.0.1 and real gateway servers."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import GatewayServer, make_gateway
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def fake_openai():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_anthropic():
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_gemini():
    server = FakeGemini().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset_fakes(request):
    """Scripted failures and recorded requests never leak from one test into the next."""
    for name in ("fake_openai", "fake_anthropic", "fake_gemini"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


def provider_config(fake_openai, fake_anthropic, fake_gemini) -> dict:
    """Secrets and model definitions for every fake provider; endpoints are added per test module."""
    return {
        "secrets": [
            {"name": "openai-key", "provider": "openai", "values": {"api_key": "sk-upstream-openai-0123456789"},
             "auth_config": {"api_base": f"{fake_openai.url}/v1"}},
            {"name": "azure-key", "provider": "azure", "values": {"api_key": "azure-upstream-0123456789"},
             "auth_config": {"api_base": fake_openai.url, "api_version": "2024-10-21"}},
            {"name": "groq-key", "provider": "groq", "values": {"api_key": "gsk-upstream-0123456789"},
             "auth_config": {"api_base": f"{fake_openai.url}/openai/v1"}},
            {"name": "anthropic-key", "provider": "anthropic", "values": {"api_key": "sk-ant-upstream-0123456789"},
             "auth_config": {"api_base": f"{fake_anthropic.url}/v1"}},
            {"name": "gemini-key", "provider": "gemini", "values": {"api_key": "AIza-upstream-0123456789"},
             "auth_config": {"api_base": f"{fake_gemini.url}/v1beta"}},
        ],
        "models": [
            {"name": "gpt", "provider": "openai", "model_name": "gpt-4o-mini", "secret": "openai-key",
             "input_cost_per_million": 0.15, "output_cost_per_million": 0.60},
            {"name": "gpt-backup", "provider": "openai", "model_name": "gpt-4o-backup", "secret": "openai-key"},
            {"name": "embedder", "provider": "openai", "model_name": "text-embedding-3-small", "secret": "openai-key"},
            {"name": "azure-gpt", "provider": "azure", "model_name": "my-deployment", "secret": "azure-key"},
            {"name": "groq-llama", "provider": "groq", "model_name": "llama-3.3-70b", "secret": "groq-key"},
            {"name": "claude", "provider": "anthropic", "model_name": "claude-haiku-4-5", "secret": "anthropic-key"},
            {"name": "gemini-flash", "provider": "gemini", "model_name": "gemini-2.5-flash", "secret": "gemini-key"},
            {"name": "gemini-embed", "provider": "gemini", "model_name": "text-embedding-004", "secret": "gemini-key"},
            {"name": "fake-echo", "provider": "fake", "model_name": "fake-echo"},
        ],
    }


def endpoint(name: str, *models: str, **extra) -> dict:
    return {"name": name, "models": [{"model": m} for m in models], **extra}


@pytest.fixture(scope="session")
def unified_gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini) -> GatewayServer:
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["endpoints"] = [
        endpoint("chat-openai", "gpt"),
        endpoint("chat-azure", "azure-gpt"),
        endpoint("chat-groq", "groq-llama"),
        endpoint("chat-anthropic", "claude"),
        endpoint("chat-gemini", "gemini-flash"),
        endpoint("embed-openai", "embedder"),
        endpoint("embed-gemini", "gemini-embed"),
        endpoint("chat-fake", "fake-echo"),
        {"name": "chat-fallback", "models": [{"model": "gpt"}, {"model": "gpt-backup", "linkage": "fallback", "order": 1}]},
    ]
    # Tests script failures on models these endpoints share; an open circuit would carry one test's failures
    # into the next. Circuit breakers have their own tests (test_resilience.py).
    for item in config["endpoints"]:
        item["circuit_breaker"] = {"threshold": 0}
    server = make_gateway(e2e_root, "unified", config, keys={"default": None, "limited": ["chat-fake"]})
    yield server
    server.stop()
