"""The engine: guardrails run in order on requests and responses, sanitize rewrites in place, blocks and
fail modes become the right errors, results land in the usage record, and compiling happens once."""
from __future__ import annotations

import pytest

from gateway.errors import GuardrailBlocked, ServiceUnavailable
from gateway.config.snapshot import Snapshot, store
from guardrails import compiled, engine
from tests.guardrails.helpers import context, endpoint, spec

PII_SANITIZE = spec("redact-pii", "pii", action="sanitize")
PII_BLOCK = spec("no-pii", "pii")
EMAIL_WORD = spec("no-email-word", "keywords", words=["[EMAIL]"], word_boundary=False)


def chat(*texts: str) -> dict:
    return {"messages": [{"role": "user", "content": t} for t in texts]}


async def test_sanitize_rewrites_the_request_in_place():
    body = chat("I am jane@example.org", "card 4111 1111 1111 1111")
    ctx = context(PII_SANITIZE)
    await engine.run_before(ctx, body, "openai-chat")
    assert [m["content"] for m in body["messages"]] == ["I am [EMAIL]", "card [CARD]"]
    assert ctx.guardrail_results == [{"name": "redact-pii", "stage": "before", "passed": False,
                                      "action": "sanitize", "latency_ms": ctx.guardrail_results[0]["latency_ms"]}]
    assert ctx.guardrail_results[0]["latency_ms"] >= 0


async def test_block_names_the_guardrail_and_never_the_value():
    with pytest.raises(GuardrailBlocked) as caught:
        await engine.run_before(context(PII_BLOCK), chat("my key is sk-proj-Abc123def456GHI789jkl012MNO"),
                                "openai-chat")
    assert caught.value.status == 400
    assert caught.value.message == "Guardrail 'no-pii' blocked the request: found an API key or secret."
    assert "sk-proj" not in caught.value.message


async def test_guardrails_run_in_order_each_seeing_the_previous_rewrite():
    with pytest.raises(GuardrailBlocked):
        await engine.run_before(context(PII_SANITIZE, EMAIL_WORD), chat("jane@example.org"), "openai-chat")
    ctx = context(EMAIL_WORD, PII_SANITIZE)
    await engine.run_before(ctx, chat("jane@example.org"), "openai-chat")
    assert [r["name"] for r in ctx.guardrail_results] == ["no-email-word", "redact-pii"]


async def test_stages_are_separate():
    after = spec("after-words", "keywords", "after", words=["echo"])
    ctx = context(after)
    await engine.run_before(ctx, chat("echo"), "openai-chat")
    assert ctx.guardrail_results == []
    with pytest.raises(GuardrailBlocked) as caught:
        await engine.run_after(ctx, {"choices": [{"message": {"content": "echo: hi"}}]}, "openai-chat")
    assert caught.value.message == "Guardrail 'after-words' blocked the response: found a blocked keyword."


async def test_after_stage_sanitizes_the_response():
    response = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ask bob@example.com"}}]}
    await engine.run_after(context(spec("p", "pii", "after", "sanitize")), response, "openai-chat")
    assert response["choices"][0]["message"]["content"] == "ask [EMAIL]"


async def test_embeddings_inputs_are_guarded():
    body = {"input": ["plain", "reach 192.168.1.1"]}
    await engine.run_before(context(PII_SANITIZE), body, "openai-embeddings")
    assert body["input"] == ["plain", "reach [IP]"]


@pytest.mark.parametrize("fail_mode,raises", [("closed", ServiceUnavailable), ("open", None)])
async def test_unusable_guardrail_follows_its_fail_mode(fail_mode, raises, caplog):
    broken = spec("broken", "regex", fail_mode=fail_mode, patterns=["("])
    ctx = context(broken, PII_SANITIZE)
    body = chat("bob@example.com")
    if raises:
        with pytest.raises(raises) as caught:
            await engine.run_before(ctx, body, "openai-chat")
        assert caught.value.status == 503 and "broken" in caught.value.message
        assert ctx.guardrail_results[0]["action"] == "error"
    else:
        await engine.run_before(ctx, body, "openai-chat")
        assert [r["action"] for r in ctx.guardrail_results] == ["skipped", "sanitize"]
        assert body["messages"][0]["content"] == "[EMAIL]"
        assert "guardrail broken failed" in caplog.text


async def test_internal_calls_skip_guardrails():
    ctx = context(PII_BLOCK)
    ctx.internal = True
    await engine.run_before(ctx, chat("bob@example.com"), "openai-chat")
    assert ctx.guardrail_results == []


def test_compiled_once_per_snapshot_spec_tuple():
    ep = endpoint(PII_BLOCK, spec("after", "keywords", "after", words=["x"]))
    first = compiled.for_endpoint(ep)
    assert compiled.for_endpoint(ep) is first
    assert [c.name for c in first.before] == ["no-pii"] and [c.name for c in first.after] == ["after"]
    copy = endpoint(PII_BLOCK, spec("after", "keywords", "after", words=["x"]))
    assert compiled.for_endpoint(copy) is not first


def test_new_snapshot_replaces_the_cache_with_its_endpoints_precompiled():
    ep = endpoint(PII_BLOCK)
    stale = compiled.for_endpoint(endpoint(PII_BLOCK))
    compiled._precompile(Snapshot(version=9, endpoints={"guarded": ep}))
    assert list(compiled._cache) == [id(ep.guardrails)]
    assert compiled.for_endpoint(ep) is not stale


def test_snapshot_store_notifies_the_compiler():
    assert compiled._precompile in store._listeners
