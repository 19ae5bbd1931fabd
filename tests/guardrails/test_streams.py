"""After-stage guardrails on streams: matches split across chunks are caught, redaction happens in flight
with only a short tail held back, blocks end the stream, and every streaming format gets the same."""
from __future__ import annotations

import random

import orjson
import pytest

from gateway.envelopes import stream_error
from gateway.errors import GuardrailBlocked, ServiceUnavailable
from guardrails import engine
from guardrails.kinds import build
from providers.wire import JSONArrayFrames, SSEParser
from tests.guardrails.helpers import context, spec

EMAIL_TEXT = "Please write to jane.doe@example.org today, or call +44 20 7946 0958 after six."
WORDS = spec("words", "keywords", "after", "block", words=["forbidden-term"])
PII = spec("pii", "pii", "after", "sanitize")


def chunk(text: str | None = None, finish: str | None = None, index: int = 0) -> dict:
    delta = {} if text is None else {"content": text}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def pieces(text: str, sizes: list[int]) -> list[str]:
    out, position = [], 0
    for size in sizes:
        out.append(text[position:position + size])
        position += size
    return out + ([text[position:]] if position < len(text) else [])


async def stream_text(ctx, parts: list[str], *, finish_chunk: dict | None = None) -> tuple[str, list[dict]]:
    """Run OpenAI chunks through the filter; returns the text the client got and every event sent."""
    guard = engine.stream_filter(ctx, "openai-chat")
    events = []
    for part in parts:
        events += guard.feed(chunk(part))
    events += guard.feed(finish_chunk or chunk(finish="stop"))
    events += await guard.finish()
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e.get("choices"))
    return text, events


async def test_email_split_across_chunks_is_redacted_in_flight():
    text, events = await stream_text(context(PII), ["Please write to jane.d", "oe@exam", "ple.org today."])
    assert text == "Please write to [EMAIL] today."
    assert "jane" not in orjson.dumps(events).decode()
    assert context(PII).guardrail_results == []  # results belong to the request they ran on


async def test_only_the_look_behind_tail_is_held_back():
    guard = engine.stream_filter(context(PII), "openai-chat")
    released = guard.feed(chunk("x" * 200))[0]["choices"][0]["delta"]["content"]
    assert released == "x" * (200 - build("pii", {}, sanitize=True).window)


async def test_keyword_split_across_chunks_blocks_before_any_part_is_released():
    ctx = context(WORDS)
    guard = engine.stream_filter(ctx, "openai-chat")
    sent = []
    with pytest.raises(GuardrailBlocked) as caught:
        for part in ["this is the forb", "idden-", "term, as you asked"]:
            sent += guard.feed(chunk(part))
        sent += guard.feed(chunk(finish="stop"))
        await guard.finish()
    assert caught.value.message == "Guardrail 'words' blocked the response: found a blocked keyword."
    assert "forb" not in orjson.dumps(sent).decode()
    assert ctx.guardrail_results == [{"name": "words", "stage": "after", "passed": False, "action": "block",
                                      "latency_ms": ctx.guardrail_results[0]["latency_ms"]}]
    assert stream_error(caught.value, "openai-chat") == b"data: " + orjson.dumps({"error": {
        "message": caught.value.message, "type": "guardrail_blocked", "param": None, "code": None}}) + b"\n\n"


async def test_word_boundary_decided_only_once_the_next_character_is_known():
    text, _ = await stream_text(context(WORDS), ["no forbidden-term", "s here"])
    assert text == "no forbidden-terms here"


@pytest.mark.parametrize("seed", range(25))
async def test_random_chunking_gives_the_same_text_as_the_whole_response(seed):
    rng = random.Random(seed)
    source = rng.choice([
        EMAIL_TEXT,
        "card 4111 1111 1111 1111, iban DE89 3704 0044 0532 0130 00 and key sk-proj-Abc123def456GHI789jkl012MNO",
        "ip 192.168.10.1 / 2001:db8::ff00:42:8329; ssn 123-45-6789; token e3b0c44298fc1c149afbf4c8996fb92427ae41e4.",
        "nothing to see here at all, version 1.2.3, 12:30:45, order 12345678 " * 3,
    ])
    whole = build("pii", {}, sanitize=True).check([source])
    parts = pieces(source, [rng.randint(1, 9) for _ in range(len(source))])
    text, _ = await stream_text(context(PII), parts)
    assert text == (whole.texts[0] if whole.texts else source)


async def test_tail_joins_the_finish_chunk_when_it_carries_text():
    _, events = await stream_text(context(PII), ["mail bob@"], finish_chunk=chunk("example.com", "stop"))
    assert events[-1]["choices"][0] == {"index": 0, "delta": {"content": "mail [EMAIL]"}, "finish_reason": "stop"}


async def test_tail_gets_its_own_chunk_before_the_finish_chunk():
    _, events = await stream_text(context(PII), ["the end"])
    assert [e["choices"][0]["delta"] for e in events[-2:]] == [{"content": "the end"}, {}]
    assert events[-1]["choices"][0]["finish_reason"] == "stop" and events[-2]["id"] == "c1"


async def test_stream_ending_without_finish_reason_still_releases_the_tail():
    guard = engine.stream_filter(context(PII), "openai-chat")
    assert guard.feed(chunk("short"))[0]["choices"][0]["delta"]["content"] == ""
    assert (await guard.finish())[0]["choices"][0]["delta"] == {"content": "short"}


async def test_tool_call_arguments_are_a_channel_of_their_own():
    guard = engine.stream_filter(context(PII), "openai-chat")
    call = lambda args: {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [  # noqa: E731
        {"index": 0, "function": {"arguments": args}}]}, "finish_reason": None}]}
    events = guard.feed(call('{"to": "bob@exa')) + guard.feed(call('mple.com"}'))
    events += guard.feed(chunk(finish="tool_calls")) + await guard.finish()
    arguments = "".join(tc["function"]["arguments"] for e in events
                        for tc in e["choices"][0]["delta"].get("tool_calls", []))
    assert arguments == '{"to": "[EMAIL]"}'


async def test_guardrails_run_in_order_on_each_others_output():
    redact_word = spec("redact", "keywords", "after", "sanitize", words=["secret"], replacement="forbidden-term")
    with pytest.raises(GuardrailBlocked):
        await stream_text(context(redact_word, WORDS), ["a secret here"])
    text, _ = await stream_text(context(WORDS, redact_word), ["a secret here"])
    assert text == "a forbidden-term here"


async def test_judge_rules_on_the_whole_stream_before_the_terminator(judge_snapshot):
    judge = spec("judge", "llm_judge", "after", "sanitize", endpoint="judge", instruction="Be kind.")
    judge_snapshot('{"pass": false, "reason": "unkind"}')
    ctx = context(judge)
    guard = engine.stream_filter(ctx, "openai-chat")
    assert guard.feed(chunk("you fool"))[0]["choices"][0]["delta"]["content"] == "you fool"
    guard.feed(chunk(finish="stop"))
    with pytest.raises(GuardrailBlocked) as caught:
        await guard.finish()
    assert caught.value.message == "Guardrail 'judge' blocked the response: unkind."
    judge_snapshot('{"pass": true}')
    text, _ = await stream_text(context(judge), ["you are kind"])
    assert text == "you are kind"


async def test_unusable_guardrail_fails_closed_before_the_stream_or_is_skipped_open():
    broken = dict(kind="keywords", stage="after", action="block")
    with pytest.raises(ServiceUnavailable):
        engine.stream_filter(context(spec("broken", **broken)), "openai-chat")
    ctx = context(spec("broken", fail_mode="open", **broken), WORDS)
    with pytest.raises(GuardrailBlocked):
        await stream_text(ctx, ["forbidden-term"])
    assert [r["action"] for r in ctx.guardrail_results] == ["skipped", "block"]


async def test_internal_calls_and_endpoints_without_after_guardrails_get_no_filter():
    assert engine.stream_filter(context(), "openai-chat") is None
    assert engine.stream_filter(context(spec("b", "pii")), "openai-chat") is None
    ctx = context(PII)
    ctx.internal = True
    assert engine.stream_filter(ctx, "openai-chat") is None


# -- native formats ------------------------------------------------------------------------------

def sse(event: dict, named: bool = False) -> bytes:
    prefix = f"event: {event['type']}\n".encode() if named else b""
    return prefix + b"data: " + orjson.dumps(event) + b"\n\n"


def parse(raw: bytes) -> list[dict]:
    return [orjson.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]


async def run_sse(ctx, fmt: str, chunks: list[bytes]) -> bytes:
    guard, parser = engine.sse_guard(ctx, fmt), SSEParser()
    out = b""
    try:
        for raw in chunks:
            out += guard.feed(parser.feed(raw))
        out += guard.feed(parser.close()) + await guard.finish()
    except GuardrailBlocked as exc:
        out += stream_error(exc, fmt)
    return out


async def test_anthropic_stream_redacts_and_holds_message_stop():
    events = [
        {"type": "message_start", "message": {"id": "m", "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "mail jane@exa"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "mple.org ok"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
    ]
    raw = b"".join(sse(e, named=True) for e in events)
    out = await run_sse(context(PII), "anthropic-messages", [raw[i:i + 7] for i in range(0, len(raw), 7)])
    sent = parse(out)
    text = "".join(e["delta"].get("text", "") for e in sent if e["type"] == "content_block_delta")
    assert text == "mail [EMAIL] ok"
    assert [e["type"] for e in sent][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert b"event: content_block_delta\ndata: " in out


async def test_anthropic_block_ends_with_its_error_event_and_no_message_stop():
    events = [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "forbidden-term!"}},
              {"type": "content_block_stop", "index": 0}, {"type": "message_stop"}]
    out = await run_sse(context(WORDS), "anthropic-messages", [sse(e, named=True) for e in events])
    assert out.endswith(b"event: error\ndata: " + orjson.dumps({"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "Guardrail 'words' blocked the response: found a blocked keyword."}}) + b"\n\n")
    assert b"message_stop" not in out and b"forbidden" not in out.replace(b"blocked", b"")


async def test_openai_sse_bytes_hold_done_until_finish():
    raw = sse(chunk("a b@c.io z")) + sse(chunk(finish="stop")) + b"data: [DONE]\n\n"
    out = await run_sse(context(PII), "openai-chat", [raw])
    assert out.endswith(b"data: [DONE]\n\n")
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in parse(out)) == "a [EMAIL] z"


async def test_responses_stream_rewrites_deltas_done_events_and_renumbers():
    base = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events = [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "r"}},
        {"type": "response.output_text.delta", "sequence_number": 1, **base, "delta": "mail bob@exa"},
        {"type": "response.output_text.delta", "sequence_number": 2, **base, "delta": "mple.com"},
        {"type": "response.output_text.done", "sequence_number": 3, **base, "text": "mail bob@example.com"},
        {"type": "response.content_part.done", "sequence_number": 4, **base,
         "part": {"type": "output_text", "text": "mail bob@example.com"}},
        {"type": "response.output_item.done", "sequence_number": 5, "output_index": 0, "item": {
            "type": "message", "content": [{"type": "output_text", "text": "mail bob@example.com"}]}},
        {"type": "response.completed", "sequence_number": 6, "response": {"output": [
            {"type": "message", "content": [{"type": "output_text", "text": "mail bob@example.com"}]}]}},
    ]
    out = await run_sse(context(PII), "openai-responses", [sse(e, named=True) for e in events])
    assert b"bob" not in out
    sent = parse(out)
    assert [e["sequence_number"] for e in sent] == list(range(len(sent)))
    assert sent[-1]["response"]["output"][0]["content"][0]["text"] == "mail [EMAIL]"
    deltas = "".join(e["delta"] for e in sent if e["type"] == "response.output_text.delta")
    assert deltas == "mail [EMAIL]" and sent[-1]["type"] == "response.completed"


async def test_gemini_stream_appends_the_tail_to_the_finishing_chunk():
    def candidate(text: str, finish: str | None = None) -> dict:
        entry = {"index": 0, "content": {"role": "model", "parts": [{"text": text}]}}
        return {"candidates": [{**entry, **({"finishReason": finish} if finish else {})}]}

    chunks = [sse(candidate("call +44 20 79")), sse(candidate("46 0958 now", "STOP"))]
    out = await run_sse(context(PII), "gemini-stream", chunks)
    sent = parse(out)
    text = "".join(p["text"] for e in sent for p in e["candidates"][0]["content"]["parts"])
    assert text == "call [PHONE] now" and sent[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_gemini_json_array_stream_is_redacted_from_the_same_events():
    chunks = [sse({"candidates": [{"index": 0, "content": {"parts": [{"text": "call +44 20 79"}]}}]}),
              sse({"candidates": [{"index": 0, "content": {"parts": [{"text": "46 0958 now"}]},
                                   "finishReason": "STOP"}]})]
    frames, parser = JSONArrayFrames(), SSEParser()
    guard = engine.sse_guard(context(PII), "gemini-stream", frames)
    out = b"".join(guard.feed(parser.feed(chunk)) for chunk in chunks)
    out += guard.feed(parser.close()) + await guard.finish() + frames.end()
    sent = orjson.loads(out)
    assert "".join(p["text"] for e in sent for p in e["candidates"][0]["content"]["parts"]) == "call [PHONE] now"


async def test_gemini_block_uses_the_google_error_shape():
    out = await run_sse(context(WORDS), "gemini-generate", [sse({"candidates": [
        {"content": {"parts": [{"text": "forbidden-term"}]}, "finishReason": "STOP"}]})])
    assert parse(out) == [{"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                     "message": "Guardrail 'words' blocked the response: found a blocked keyword."}}]


async def test_non_json_events_pass_through():
    out = await run_sse(context(PII), "anthropic-messages",
                        [b": keep-alive\n\n", b"event: ping\ndata: {\"type\": \"ping\"}\n\n"])
    assert out.startswith(b": keep-alive\n\n") and b"ping" in out
