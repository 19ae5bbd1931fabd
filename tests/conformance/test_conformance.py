"""The conformance table: recorded real provider responses (tests/fixtures/conformance/<provider>.json, each
case citing its source) replayed by a fake upstream on 127.0.0.1 and driven through a real gateway with the
official SDKs, on the unified route (OpenAI SDK) and on the provider's native route (OpenAI, Anthropic or
Google GenAI SDK).

A case names the model it calls (`model`, a model of the gateway configured below, each behind its own
endpoint), the `route`, the `call` (`chat`, `stream`, `tool_loop`, `embed` on either OpenAI route; `messages`,
`messages_stream`; `generate`, `generate_stream`), the SDK arguments (`request`), the recorded `upstream`
replies served in order, and what the client must see (`expect`: text, tool calls, finish reason, usage,
`embeddings` (how many vectors, of what length), or an error status and message; status null for an error
event ending a stream) and what the provider must have been
sent (`sent`: dotted paths into the upstream body, `"<absent>"` for a field that must not be there;
`sent_path`; `sigv4`: the call is signed with AWS access keys, checked as AWS checks them), and `billed`: the
input, output and cached tokens of the usage record the call left.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.e2e.harness import make_gateway
from tests.fakes.replay import ReplayUpstream

TABLE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
ABSENT = "<absent>"
KEYS = {"aws": "bedrock-api-key-0123456789"}
# AWS's documentation example keys: the replay checks signatures made with them (a case's `sigv4`).
AWS_KEYS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}


def _cases() -> list:
    params = []
    for path in sorted(TABLE.glob("*.json")):
        table = json.loads(path.read_text())
        for case in table["cases"]:
            assert case.get("source"), f"{path.name}: case {case['id']} cites no source"
            params.append(pytest.param({"provider": table["provider"], **case}, id=f"{path.stem}-{case['id']}"))
    return params


CASES = _cases()


def _service_account(token_uri: str) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {"type": "service_account", "project_id": "conformance", "private_key_id": "replay-key",
            "private_key": pem.decode(), "client_email": "gateway@conformance.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": token_uri}


MODELS = {  # gateway model name -> (provider, upstream model id, secret)
    "openai": ("openai", "gpt-4o-mini", "openai"),
    "azure": ("azure", "my-deployment", "azure"),
    "mistral": ("mistral", "mistral-large-latest", "mistral"),
    "groq": ("groq", "llama-3.3-70b-versatile", "groq"),
    "anthropic": ("anthropic", "claude-sonnet-4-5", "anthropic"),
    "gemini": ("gemini", "gemini-2.5-flash", "gemini"),
    "gemini-3": ("gemini", "gemini-3-pro-preview", "gemini"),
    "bedrock": ("bedrock", "amazon.nova-lite-v1:0", "bedrock"),
    "bedrock-claude": ("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock"),
    "bedrock-signed": ("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock-keys"),
    "vertex": ("vertex_ai", "gemini-2.5-flash", "vertex"),
    "vertex-claude": ("vertex_ai", "claude-sonnet-4-5@20250929", "vertex"),
    "vertex-mistral": ("vertex_ai", "mistral-medium-3@001", "vertex"),
    "vertex-llama": ("vertex_ai", "llama-3.3-70b-instruct-maas", "vertex"),
    "cohere": ("cohere", "command-a-03-2025", "cohere"),
    "cohere-embed": ("cohere", "embed-v4.0", "cohere"),
    "databricks": ("databricks", "databricks-meta-llama-3-3-70b-instruct", "databricks"),
    "azure-ai": ("azure_ai", "mistral-large-2411", "azure-ai"),
}


def endpoint_of(model: str) -> str:
    """The endpoint serving one model alone (some names, such as `openai`, are the gateway's own routes)."""
    return f"conformance-{model}"


@pytest.fixture(scope="module")
def e2e_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(scope="module")
def replay():
    with ReplayUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(e2e_root, replay):
    url = replay.url
    secrets = [
        {"name": "openai", "provider": "openai", "values": {"api_key": "sk-replay-0123456789"},
         "auth_config": {"api_base": f"{url}/v1"}},
        {"name": "azure", "provider": "azure", "values": {"api_key": "azure-replay-0123456789"},
         "auth_config": {"api_base": url, "api_version": "2024-10-21"}},
        {"name": "mistral", "provider": "mistral", "values": {"api_key": "mistral-replay-0123456789"},
         "auth_config": {"api_base": f"{url}/v1"}},
        {"name": "groq", "provider": "groq", "values": {"api_key": "gsk-replay-0123456789"},
         "auth_config": {"api_base": f"{url}/openai/v1"}},
        {"name": "anthropic", "provider": "anthropic", "values": {"api_key": "sk-ant-replay-0123456789"},
         "auth_config": {"api_base": f"{url}/v1"}},
        {"name": "gemini", "provider": "gemini", "values": {"api_key": "AIza-replay-0123456789"},
         "auth_config": {"api_base": f"{url}/v1beta"}},
        {"name": "bedrock", "provider": "bedrock", "values": {"api_key": KEYS["aws"]},
         "auth_config": {"api_base": url, "auth_mode": "api_key"}},
        {"name": "bedrock-keys", "provider": "bedrock", "auth_config": {"api_base": url, "auth_mode": "access_keys"},
         "values": {"aws_access_key_id": AWS_KEYS["access_key_id"], "aws_secret_access_key": AWS_KEYS["secret_access_key"]}},
        {"name": "vertex", "provider": "vertex_ai", "values": {"vertex_credentials": _service_account(f"{url}/token")},
         "auth_config": {"api_base": f"{url}/v1", "vertex_project": "conformance", "vertex_location": "us-central1"}},
        {"name": "cohere", "provider": "cohere", "values": {"api_key": "co-replay-0123456789"},
         "auth_config": {"api_base": f"{url}/v2"}},
        {"name": "databricks", "provider": "databricks", "values": {"api_key": "dapi-replay-0123456789"},
         "auth_config": {"api_base": url}},
        {"name": "azure-ai", "provider": "azure_ai", "values": {"api_key": "azure-ai-replay-0123456789"},
         "auth_config": {"api_base": url, "api_version": "2024-05-01-preview"}},
    ]
    models = [{"name": name, "provider": provider, "model_name": model_name, "secret": secret}
              for name, (provider, model_name, secret) in MODELS.items()]
    # One attempt per model except the same-model retry the 429 cases exercise; no open circuit carries one
    # case's scripted failure into the next.
    endpoints = [{"name": endpoint_of(name), "models": [{"model": name}], "circuit_breaker": {"threshold": 0}}
                 for name in MODELS]
    server = make_gateway(e2e_root, "conformance", {"secrets": secrets, "models": models, "endpoints": endpoints})
    yield server
    server.stop()


# -- the clients ---------------------------------------------------------------------------------------------

# The gateway's X-Request-Id of every answer the SDKs got, in order: it names the usage record a call left.
REQUEST_IDS: list[str] = []


def _remember(response) -> None:
    REQUEST_IDS.append(response.headers.get("x-request-id", ""))


def _http(client_class=httpx.Client):
    """The SDK's HTTP client with a hook noting each answer's request id (the Anthropic SDK has its own
    httpx package, so it passes its client class)."""
    return client_class(timeout=30, event_hooks={"response": [_remember]})


def _openai(gateway, route: str) -> openai.OpenAI:
    path = "/gateway/mlflow/v1" if route == "unified" else "/gateway/openai/v1"
    return openai.OpenAI(base_url=f"{gateway.url}{path}", api_key=gateway.keys["default"], max_retries=0,
                         http_client=_http())


def _anthropic(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"],
                               max_retries=0, http_client=_http(anthropic.DefaultHttpxClient))


def _genai(gateway) -> genai.Client:
    return genai.Client(api_key=gateway.keys["default"], http_options=genai_types.HttpOptions(
        base_url=f"{gateway.url}/gateway/gemini", api_version="v1beta", httpx_client=_http()))


# -- what the client saw, in one shape per API -----------------------------------------------------------------

def _openai_answer(completion) -> dict:
    choice = completion.choices[0]
    calls = [_openai_call(call.model_dump()) for call in choice.message.tool_calls or []]
    return {"text": choice.message.content, "tool_calls": calls, "finish": choice.finish_reason,
            "usage": completion.usage.model_dump(exclude_none=True) if completion.usage else None,
            "message": choice.message.model_dump(exclude_none=True)}


def _openai_call(call: dict) -> dict:
    """A tool call as a client uses it: the arguments must decode as JSON (json.loads of "" raises)."""
    out = {"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"])}
    if call.get("extra_content"):
        out["extra_content"] = call["extra_content"]
    return out


def _openai_stream(client: openai.OpenAI, model: str, request: dict) -> dict:
    text, finish, usage, calls = "", None, None, {}
    stream = client.chat.completions.create(model=model, stream=True, stream_options={"include_usage": True},
                                            **request)
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage.model_dump(exclude_none=True)
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"function": {"name": "", "arguments": ""}})
                dumped = call.model_dump(exclude_none=True)
                entry["function"]["name"] += (dumped.get("function") or {}).get("name") or ""
                entry["function"]["arguments"] += (dumped.get("function") or {}).get("arguments") or ""
                if dumped.get("extra_content"):
                    entry["extra_content"] = dumped["extra_content"]
    return {"text": text or None, "tool_calls": [_openai_call(calls[i]) for i in sorted(calls)], "finish": finish,
            "usage": usage}


def _anthropic_answer(message) -> dict:
    blocks = message.content
    return {"text": "".join(b.text for b in blocks if b.type == "text") or None,
            "tool_calls": [{"name": b.name, "arguments": b.input} for b in blocks if b.type == "tool_use"],
            "finish": message.stop_reason, "usage": message.usage.model_dump(exclude_none=True)}


def _genai_answer(responses: list) -> dict:
    text, calls, finish, usage = "", [], None, None
    for response in responses:
        for candidate in response.candidates or []:
            finish = candidate.finish_reason.value if candidate.finish_reason else finish
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.text and not part.thought:
                    text += part.text
                if part.function_call:
                    call = {"name": part.function_call.name, "arguments": part.function_call.args or {}}
                    if part.thought_signature:
                        call["thought_signature"] = part.thought_signature.decode("latin-1")
                    calls.append(call)
        if response.usage_metadata:
            usage = response.usage_metadata.model_dump(exclude_none=True)
    return {"text": text or None, "tool_calls": calls, "finish": finish, "usage": usage}


# -- driving one case -------------------------------------------------------------------------------------------

def _run(gateway, case: dict) -> dict:
    call, model, request = case["call"], endpoint_of(case["model"]), case.get("request") or {}
    if call == "embed":
        answer = _openai(gateway, case["route"]).embeddings.create(model=model, **request)
        dimensions = sorted({len(item.embedding) for item in answer.data})
        return {"embeddings": {"count": len(answer.data), "dimensions": dimensions},
                "usage": answer.usage.model_dump(exclude_none=True)}
    if call in ("chat", "stream", "tool_loop"):
        client = _openai(gateway, case["route"])
        if call == "stream":
            return _openai_stream(client, model, request)
        first = _openai_answer(client.chat.completions.create(model=model, **request))
        if call == "chat":
            return first
        follow_up = [*request["messages"], first["message"],
                     *({"role": "tool", "tool_call_id": c["id"], "content": case["tool_result"]}
                       for c in first["message"]["tool_calls"])]
        return _openai_answer(client.chat.completions.create(model=model, **{**request, "messages": follow_up}))
    if call in ("messages", "messages_stream"):
        client = _anthropic(gateway)
        if call == "messages":
            return _anthropic_answer(client.messages.create(model=model, **request))
        with client.messages.stream(model=model, **request) as stream:
            return _anthropic_answer(stream.get_final_message())
    if call in ("generate", "generate_stream"):
        client = _genai(gateway)
        config = genai_types.GenerateContentConfig(**request["config"]) if request.get("config") else None
        if call == "generate":
            return _genai_answer([client.models.generate_content(model=model, contents=request["contents"],
                                                                 config=config)])
        return _genai_answer(list(client.models.generate_content_stream(model=model, contents=request["contents"],
                                                                        config=config)))
    raise AssertionError(f"unknown call {call}")


def _error_of(exc: Exception) -> tuple[int | None, str]:
    """The HTTP status and message a client got; the status is None for an error event that ended a stream
    which had already answered 200."""
    if isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError)):
        return exc.status_code, str(exc)
    if isinstance(exc, genai_errors.APIError):
        return exc.code, str(exc)
    if isinstance(exc, (openai.APIError, anthropic.APIError)):
        return None, str(exc)
    raise exc


def _billed(gateway, request_id: str) -> list[int] | None:
    """The tokens of the usage record request `request_id` left, once the batched writer has flushed it (None
    if it did not come within 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(gateway.env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
            row = db.execute("select input_tokens, output_tokens, cached_tokens from gateway_usagerecord "
                             "where request_id = ?", (request_id,)).fetchone()
        if row is not None:
            return list(row)
        time.sleep(0.05)
    return None


def _at(body: Any, path: str) -> Any:
    for key in path.split("."):
        if isinstance(body, list) and key.lstrip("-").isdigit() and -len(body) <= int(key) < len(body):
            body = body[int(key)]
        elif isinstance(body, dict) and key in body:
            body = body[key]
        else:
            return ABSENT
    return body


def _subset(expected: Any, actual: Any) -> bool:
    """Every key the case states has its value; fields the case leaves out may be anything."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(_subset(v, actual.get(k, ABSENT)) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(map(_subset, expected, actual))
    return expected == actual


@pytest.mark.parametrize("case", CASES)
def test_recorded_case(gateway, replay, case):
    replies = case["upstream"] if isinstance(case["upstream"], list) else [case["upstream"]]
    replay.load(replies, case.get("reject_fields"), case.get("rejection"), AWS_KEYS if case.get("sigv4") else None)
    expect = case["expect"]
    REQUEST_IDS.clear()
    if "status" in expect:
        with pytest.raises(Exception) as raised:
            _run(gateway, case)
        status, message = _error_of(raised.value)
        assert status == expect["status"], message
        assert expect.get("message", "") in message
    else:
        seen = _run(gateway, case)
        for key in ("text", "finish", "embeddings"):
            if key in expect:
                assert seen[key] == expect[key], (key, seen)
        if "tool_calls" in expect:
            assert _subset(expect["tool_calls"], seen["tool_calls"]), seen["tool_calls"]
        if "usage" in expect:
            assert _subset(expect["usage"], seen["usage"]), seen["usage"]
    if "billed" in expect:
        assert REQUEST_IDS and REQUEST_IDS[-1], "the gateway's answer carried no X-Request-Id"
        assert _billed(gateway, REQUEST_IDS[-1]) == expect["billed"]
    if "upstream_calls" in expect:
        assert len(replay.calls) == expect["upstream_calls"]
    if "min_gap_seconds" in expect:
        assert replay.times[1] - replay.times[0] >= expect["min_gap_seconds"]
    sent = replay.calls[case.get("sent_index", -1)] if case.get("sent") or case.get("sent_path") else None
    for path, value in (case.get("sent") or {}).items():
        assert _at(sent.json, path) == value, (path, sent.json)
    if case.get("sent_path"):
        assert sent.path == case["sent_path"], sent.path
