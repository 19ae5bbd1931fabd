"""Configuration errors say what is wrong, once: secrets the server cannot decrypt and providers it may not
call are named at start-up, the models needing them are skipped without a call or a retry, a fallback that
can serve still serves, and otherwise the client is refused at once with a 503 naming what to fix. A
missing DJANGO_SECRET_KEY stops the server with one line, not a traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import anthropic
import openai
import pytest

from tests.e2e.conftest import provider_config
from tests.e2e.harness import BASE_ENV, ROOT, make_gateway

UPSTREAM_KEY = "sk-upstream-openai-0123456789"


def gateway_with(e2e_root, name, fakes, env):
    config = provider_config(*fakes)
    config["endpoints"] = [
        {"name": "locked", "models": [{"model": "gpt"}]},
        {"name": "locked-then-open", "models": [{"model": "gpt"},
                                                {"model": "fake-echo", "linkage": "fallback", "order": 1}]},
        {"name": "forbidden", "models": [{"model": "claude"}]},
    ]
    server = make_gateway(e2e_root, name, config, start=False)
    server.env.update(env)  # the secrets were sealed with the harness's passphrase; the server gets another
    return server.start()


@pytest.fixture(scope="module")
def fakes(fake_openai, fake_anthropic, fake_gemini):
    return fake_openai, fake_anthropic, fake_gemini


@pytest.fixture(scope="module")
def wrong_kek(e2e_root, fakes):
    server = gateway_with(e2e_root, "wrong-kek", fakes, {"GATEWAY_KEK_PASSPHRASE": "not-the-one-it-was-sealed-with",
                                                         "GATEWAY_ALLOWED_PROVIDERS": "openai,fake"})
    yield server
    server.stop()


def sdk(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/gateway/mlflow/v1", api_key=server.keys["default"], max_retries=0,
                         timeout=20)


def ask(server, endpoint: str):
    return sdk(server).chat.completions.with_raw_response.create(
        model=endpoint, messages=[{"role": "user", "content": "hi"}])


def test_start_up_names_the_variable_and_the_unreadable_secrets_once(wrong_kek):
    ask(wrong_kek, "locked-then-open")
    log = wrong_kek.log()
    lines = [line for line in log.splitlines() if "GATEWAY_KEK_PASSPHRASE" in line]
    assert len(lines) == 1, log
    assert "'openai-key'" in lines[0]
    assert "GATEWAY_ALLOWED_PROVIDERS" in log
    assert UPSTREAM_KEY not in log and "not-the-one-it-was-sealed-with" not in log


def test_a_model_with_an_undecryptable_secret_is_refused_at_once_with_503(wrong_kek, fake_openai):
    with pytest.raises(openai.InternalServerError) as info:
        ask(wrong_kek, "locked")
    error = info.value
    assert error.status_code == 503
    assert error.response.headers["x-gateway-attempts"] == "0"
    message = error.body["message"]
    assert "'openai-key'" in message and "GATEWAY_KEK_PASSPHRASE" in message
    assert error.body["type"] == "configuration_error"
    assert UPSTREAM_KEY not in message
    assert fake_openai.requests == []


def test_a_fallback_that_can_serve_still_serves_without_retrying_the_broken_model(wrong_kek, fake_openai):
    for _ in range(8):  # more than the breaker's default threshold: skipping is no failure
        raw = ask(wrong_kek, "locked-then-open")
        assert raw.parse().choices[0].message.content == "echo: hi"
        assert (raw.headers["x-gateway-model"], raw.headers["x-gateway-attempts"]) == ("fake-echo", "1")
    assert fake_openai.requests == []


def test_a_forbidden_provider_is_refused_at_once_in_the_routes_own_envelope(wrong_kek, fake_anthropic):
    client = anthropic.Anthropic(base_url=f"{wrong_kek.url}/gateway/anthropic", api_key=wrong_kek.keys["default"],
                                 max_retries=0, timeout=20)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="forbidden", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503
    body = info.value.body
    assert body["type"] == "error"
    assert "provider 'anthropic' is not in GATEWAY_ALLOWED_PROVIDERS" in body["error"]["message"]
    assert info.value.response.headers["x-gateway-attempts"] == "0"
    assert fake_anthropic.requests == []


def test_a_missing_passphrase_is_named_at_start_up(e2e_root, fakes):
    server = gateway_with(e2e_root, "no-kek", fakes, {"GATEWAY_KEK_PASSPHRASE": ""})
    try:
        with pytest.raises(openai.InternalServerError) as info:
            ask(server, "locked")
        assert "GATEWAY_KEK_PASSPHRASE is not set" in info.value.body["message"]
    finally:
        server.stop()
    lines = [line for line in server.log().splitlines() if "GATEWAY_KEK_PASSPHRASE is not set" in line]
    assert len(lines) == 1 and "'openai-key'" in lines[0]


@pytest.mark.parametrize("command", [
    [sys.executable, "manage.py", "check"],
    [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--port", "0"],
])
def test_a_missing_secret_key_stops_with_one_line(command, tmp_path):
    env = {**os.environ, **BASE_ENV, "DJANGO_DEBUG": "false", "GATEWAY_DATA_DIR": str(tmp_path)}
    env.pop("DJANGO_SECRET_KEY")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip().splitlines()
    assert len(output) == 1, output
    assert "DJANGO_SECRET_KEY is not set" in output[0]
