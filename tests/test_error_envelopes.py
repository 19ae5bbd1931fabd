"""Whatever a client sends to a /gateway/ route, the answer is the route family's own error envelope with
the right status: never a 500, never a traceback."""
from __future__ import annotations

import ast
from pathlib import Path

import httpx
import orjson
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from gateway.apikeys import api_key_create
from gateway.envelopes import as_gateway_error, family_for, render_error, stream_error
from gateway.models import Endpoint, EndpointModel, ModelDefinition
from gateway.config.snapshot import store
from providers.errors import ProviderError

CHAT = "/gateway/mlflow/v1/chat/completions"
MESSAGES = "/gateway/anthropic/v1/messages"
GEMINI = "/gateway/gemini/v1beta/models/{}:generateContent"
HELLO = [{"role": "user", "content": "hi"}]


def is_openai(body: dict) -> bool:
    return set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}


def is_anthropic(body: dict) -> bool:
    return body["type"] == "error" and set(body["error"]) == {"type", "message"}


def is_google(body: dict) -> bool:
    return set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}


def js(value) -> bytes:
    return orjson.dumps(value)


TOO_BIG = b"x" * (settings.GATEWAY_MAX_REQUEST_BYTES + 1)

# (method, path, key: "default" | "limited" | None, body, status, envelope)
CASES = [
    ("GET", CHAT, "default", b"", 405, is_openai),
    ("OPTIONS", CHAT, "default", b"", 405, is_openai),
    ("POST", "/gateway/mlflow/v1/models", "default", b"{}", 405, is_openai),
    ("POST", CHAT, "default", b"[1, 2]", 400, is_openai),
    ("POST", CHAT, "default", b'{"model": "demo", "messages": "\xff\xfe"}', 400, is_openai),
    ("POST", CHAT, "default", b'{"model": "demo", "messages": [], "max_tokens": 1e400}', 400, is_openai),
    ("POST", CHAT, "default", js({"model": "demo", "messages": [{"role": ["user"], "content": "x"}]}), 400,
     is_openai),
    ("POST", CHAT, "default", js({"model": "demo", "messages": HELLO, "stream": True, "stream_options": "x"}), 400,
     is_openai),
    ("POST", CHAT, "default", js({"model": "demo", "messages": [{"role": "user", "content": [{"type": "text",
                                                                                               "text": 5}]}]}),
     400, is_openai),
    ("POST", CHAT, None, js({"model": "demo", "messages": HELLO}), 401, is_openai),
    ("POST", CHAT, "limited", js({"model": "demo", "messages": HELLO}), 403, is_openai),
    ("POST", CHAT, "default", js({"model": "nope", "messages": HELLO}), 404, is_openai),
    ("POST", "/gateway/nope", "default", b"{}", 404, is_openai),
    ("POST", CHAT, "default", TOO_BIG, 413, is_openai),
    ("GET", "/gateway/admin/v1/nope", "default", b"", 404, is_openai),
    ("POST", "/gateway/admin/v1/usage", None, b"{}", 405, is_openai),
    ("POST", "/gateway/openai/v1/chat/completions", "default", js({"model": "demo", "messages": "hi"}), 400,
     is_openai),
    ("POST", "/gateway/openai/v1/chat/completions", "default", js({"model": "demo", "messages": ["hi"],
                                                                   "stream": True}), 400, is_openai),
    ("GET", MESSAGES, "default", b"", 405, is_anthropic),
    ("POST", MESSAGES, "default", b"[]", 400, is_anthropic),
    ("POST", MESSAGES, None, js({"model": "demo"}), 401, is_anthropic),
    ("POST", MESSAGES, "limited", js({"model": "demo"}), 403, is_anthropic),
    ("POST", MESSAGES, "default", js({"model": "nope"}), 404, is_anthropic),
    ("POST", "/gateway/anthropic/v1/nope", "default", b"{}", 404, is_anthropic),
    ("POST", MESSAGES, "default", TOO_BIG, 413, is_anthropic),
    ("GET", GEMINI.format("demo"), "default", b"", 405, is_google),
    ("POST", GEMINI.format("demo"), "default", b"[]", 400, is_google),
    ("POST", GEMINI.format("demo"), None, b"{}", 401, is_google),
    ("POST", GEMINI.format("demo"), "limited", b"{}", 403, is_google),
    ("POST", GEMINI.format("nope"), "default", b"{}", 404, is_google),
    ("POST", "/gateway/gemini/v1beta/models/demo:explode", "default", b"{}", 404, is_google),
    ("POST", "/gateway/gemini/v1beta/models/a/b:generateContent", "default", b"{}", 404, is_google),
    ("POST", GEMINI.format("demo"), "default", TOO_BIG, 413, is_google),
]


@pytest.mark.django_db(transaction=True)
async def test_every_bad_request_gets_its_familys_envelope_and_status():
    from gateway_project.asgi import application

    def setup() -> dict[str, str]:
        model = ModelDefinition.objects.create(name="fake", provider="fake", model_name="fake-echo")
        for name in ("demo", "other"):
            EndpointModel.objects.create(endpoint=Endpoint.objects.create(name=name), model=model)
        return {"default": api_key_create(name="default")[1],
                "limited": api_key_create(name="limited", endpoints=[Endpoint.objects.get(name="other")])[1]}

    keys = await sync_to_async(setup)()
    await store.refresh()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for method, path, key, body, status, envelope in CASES:
            headers = {"authorization": f"Bearer {keys[key]}"} if key else {}
            response = await client.request(method, path, content=body, headers=headers)
            assert (response.status_code, envelope(response.json())) == (status, True), (method, path, body[:80])


# -- one owner for every error body --------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def builds_an_error_body(node: ast.AST) -> bool:
    """A dict literal shaped like an error body: an "error" key, or "type": "error"."""
    if not isinstance(node, ast.Dict):
        return False
    keys = [key.value for key in node.keys if isinstance(key, ast.Constant)]
    typed_error = any(isinstance(key, ast.Constant) and key.value == "type" and isinstance(value, ast.Constant)
                      and value.value == "error" for key, value in zip(node.keys, node.values))
    return "error" in keys or typed_error


def test_no_module_but_envelopes_builds_an_error_body():
    builders = []
    for package in ("gateway", "guardrails", "providers", "gateway_project"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            builders += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                         if builds_an_error_body(node)]
    assert builders and all(place.startswith("gateway/envelopes.py:") for place in builders), builders


def sse_fields(raw: bytes) -> list[tuple[str, dict | str]]:
    """(field, value) per line of one event; data lines parsed as JSON. Every field is on its own line."""
    assert raw.endswith(b"\n\n") and b"\r" not in raw
    return [(name, orjson.loads(value) if name == "data" else value)
            for name, _, value in (line.decode().partition(": ") for line in raw[:-2].split(b"\n"))]


UPSTREAM = ProviderError(502, "The provider ended the stream before its terminator.", error_type="incomplete_stream")


@pytest.mark.parametrize("api, expected", [
    ("openai-chat", [("data", {"error": {"message": UPSTREAM.message, "type": "incomplete_stream", "param": None,
                                         "code": None}})]),
    ("openai-responses", [("event", "error"), ("data", {"type": "error", "code": "incomplete_stream",
                                                        "message": UPSTREAM.message, "param": None})]),
    ("anthropic-messages", [("event", "error"), ("data", {"type": "error", "error": {
        "type": "api_error", "message": UPSTREAM.message}})]),
    ("gemini-stream", [("data", {"error": {"code": 502, "message": UPSTREAM.message, "status": "UNAVAILABLE"}})]),
])
def test_a_stream_ends_with_its_apis_own_error_event(api, expected):
    assert sse_fields(stream_error(UPSTREAM, api)) == expected


def test_an_unexpected_failure_mid_stream_is_reported_without_its_details():
    [(_, body)] = sse_fields(stream_error(RuntimeError("secret detail"), "openai-chat"))
    assert body == {"error": {"message": "The gateway failed while streaming.", "type": "api_error", "param": None,
                              "code": None}}


@pytest.mark.parametrize("status, google", [
    (422, "FAILED_PRECONDITION"), (405, "FAILED_PRECONDITION"), (418, "FAILED_PRECONDITION"), (507, "INTERNAL"),
    (429, "RESOURCE_EXHAUSTED"),
])
def test_an_unmapped_status_has_one_google_status_whole_or_streamed(status, google):
    error = ProviderError(status, "no")
    assert render_error(as_gateway_error(error), "google")["error"]["status"] == google
    assert sse_fields(stream_error(error, "gemini-stream"))[0][1]["error"]["status"] == google


def test_the_error_family_of_a_route_is_decided_by_its_path():
    assert [family_for(path) for path in (CHAT, "/gateway/openai/v1/responses", MESSAGES, GEMINI.format("x"),
                                          "/gateway/admin/v1/usage")] == \
        ["openai", "openai", "anthropic", "google", "openai"]
