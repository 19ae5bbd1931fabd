"""The native routes' translation branch: a vendor API's request to an endpoint whose models do not all
speak that API is served through the unified chat pipeline (guardrails, budgets, routing with fallback
across providers, usage), translated in and out by the pure functions in providers/<vendor>/inbound.py.

Errors keep the route's own envelope: whole answers through the view (envelopes.family_for), stream
failures as the API's own error event."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from gateway import pipeline, validation
from gateway.budgets.policies import input_tokens_estimate
from gateway.context import RequestContext
from gateway.envelopes import stream_error_event
from gateway.errors import BadRequest
from providers.anthropic import inbound as anthropic
from providers.base import TranslationError
from providers.completions import readable_chunk
from providers.gemini import inbound as gemini
from providers.openai import responses_inbound as responses
from providers.wire import Api, JSONArrayFrames, SSEFrames


class EventTranslator(Protocol):
    """Unified chunks in, the API's stream events out as (event name or None, data) pairs."""

    def feed(self, chunk: dict) -> list[tuple[str | None, dict]]: ...

    def end(self) -> list[tuple[str | None, dict]]: ...


@dataclass(frozen=True)
class Translation:
    """How one vendor API rides on unified chat: its request in (`to_chat`, raising TranslationError for
    what cannot be expressed), the answer out (`from_chat(answer, request)`), and a factory of stream event
    translators (`events(request)`; None keeps OpenAI chat's own stream)."""

    to_chat: Callable[[dict], dict]
    from_chat: Callable[[dict, dict], dict]
    events: Callable[[dict], EventTranslator | None]


def _unified(body: dict) -> dict:
    """An OpenAI body for the unified pipeline: the same shape, without the endpoint's name."""
    return {key: value for key, value in body.items() if key != "model"}


def _unified_chat(body: dict) -> dict:
    request = _unified(body)
    validation.check_chat(request)
    return request


_GEMINI = Translation(gemini.generate_to_chat, lambda answer, _: gemini.chat_to_generate(answer),
                      lambda _: gemini.GenerateChunks())
# OpenAI chat needs no translation, only the unified pipeline; its stream keeps pipeline.ChatSSE (events None).
TRANSLATIONS: dict[str, Translation] = {
    Api.OPENAI_CHAT: Translation(_unified_chat, lambda answer, _: answer, lambda _: None),
    Api.ANTHROPIC_MESSAGES: Translation(anthropic.messages_to_chat, lambda answer, _: anthropic.chat_to_message(answer),
                                        lambda _: anthropic.MessageEvents()),
    Api.GEMINI_GENERATE: _GEMINI,
    Api.GEMINI_STREAM: _GEMINI,
    Api.OPENAI_RESPONSES: Translation(responses.responses_to_chat, responses.chat_to_response,
                                      responses.ResponseEvents),
}


def serves(ctx: RequestContext, api: str) -> bool:
    """True when this request takes the translation branch: some model of the endpoint does not speak
    `api` natively. An endpoint all of whose models speak it keeps the untouched passthrough."""
    links = ctx.endpoint.primaries + ctx.endpoint.fallbacks
    return not all(api in link.adapter.passthrough_apis for link in links)


def _chat_request(api: str, body: dict) -> dict:
    try:
        return TRANSLATIONS[api].to_chat(body)
    except TranslationError as exc:
        raise BadRequest(exc.message, code="unsupported_for_model") from None


async def forward(ctx: RequestContext, api: str, body: dict) -> dict:
    """A non-streaming native request answered through unified chat, in the API's own shape."""
    if api == Api.ANTHROPIC_COUNT_TOKENS:
        return await count_tokens(ctx, body)
    if api == Api.OPENAI_EMBEDDINGS:
        request = _unified(body)
        validation.check_embeddings(request)
        return await pipeline.embeddings(ctx, request)
    chat = _chat_request(api, body)
    chat.pop("stream", None)
    answer = await pipeline.chat(ctx, chat)
    return TRANSLATIONS[api].from_chat(answer, body)


async def count_tokens(ctx: RequestContext, body: dict) -> dict:
    """Anthropic's token count for a model without a counter: the gateway's own estimate (the one budgets
    reserve with) of the request as the model would receive it. No provider is called, but rate limits
    apply and the request is recorded, as for a counted one."""
    ctx.body = body
    try:
        await pipeline.admit(ctx, Api.ANTHROPIC_COUNT_TOKENS, body)
        estimate = input_tokens_estimate(_chat_request(Api.ANTHROPIC_MESSAGES, {**body, "max_tokens": 1}))
    except (Exception, asyncio.CancelledError) as exc:
        ctx.fail(exc)
        raise
    finally:
        pipeline.finish(ctx)
    return {"input_tokens": estimate}


class EventWriter:
    """Writes a translated stream for pipeline.chat_stream: each chunk's events framed as the API expects
    (SSE, or Gemini's JSON array), the closing events at the end, the API's error event on failure."""

    def __init__(self, api: str, events: EventTranslator, frames: SSEFrames | JSONArrayFrames) -> None:
        self.api, self.events, self.frames = api, events, frames

    def _out(self, pairs: list[tuple[str | None, dict]]) -> bytes:
        return b"".join(self.frames.event(name, orjson.dumps(data)) for name, data in pairs)

    def chunk(self, chunk: dict) -> bytes:
        return self._out(self.events.feed(readable_chunk(chunk)))

    def end(self) -> bytes:
        return self._out(self.events.end()) + self.frames.end()

    def error(self, exc: BaseException) -> bytes:
        return self.frames.event(*stream_error_event(exc, self.api)) + self.frames.end()


async def forward_stream(ctx: RequestContext, api: str, body: dict, json_array: bool = False) -> AsyncIterator[bytes]:
    """A streaming native request served through unified chat, relayed as the API's own events."""
    chat = _chat_request(api, body)
    chat["stream"] = True
    events = TRANSLATIONS[api].events(body)
    frames = JSONArrayFrames() if json_array else SSEFrames()
    return await pipeline.chat_stream(ctx, chat, EventWriter(api, events, frames) if events else None)
