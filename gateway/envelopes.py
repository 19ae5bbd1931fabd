"""Every error body the gateway sends, in each client SDK's own format so the SDK raises its matching
exception: whole answers (`render_error`) and the error event that ends a stream (`stream_error`). Which
family a route answers in is decided here too (`family_for`); no other module builds an error body."""
from __future__ import annotations

from enum import StrEnum

import orjson

from gateway.errors import GatewayError, UpstreamError
from providers.errors import ProviderError
from providers.wire import Api, sse_event

ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error",
}
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED", 409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
STREAM_FAILED = "The gateway failed while streaming."


class Family(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GOOGLE = "google"


def family_for(path: str) -> Family:
    """The error family of a route, from its path: the native Anthropic and Gemini routes answer in their
    vendor's format, every other /gateway/ route (unified, native OpenAI, admin API) in OpenAI's."""
    if path.startswith("/gateway/anthropic/"):
        return Family.ANTHROPIC
    if path.startswith("/gateway/gemini/"):
        return Family.GOOGLE
    return Family.OPENAI


def google_status(status: int) -> str:
    """Google's canonical status for an HTTP status; one without its own maps by class."""
    return GOOGLE_STATUS.get(status) or ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def openai_error(err: GatewayError) -> dict:
    """OpenAI's `code` is a string or null, never the HTTP status."""
    return {"error": {"message": err.message, "type": err.error_type, "param": err.param, "code": err.code}}


def anthropic_error(err: GatewayError) -> dict:
    return {"type": "error", "error": {"type": ANTHROPIC_TYPES.get(err.status, "api_error"), "message": err.message}}


def google_error(err: GatewayError) -> dict:
    return {"error": {"code": err.status, "message": err.message, "status": google_status(err.status)}}


RENDERERS = {Family.OPENAI: openai_error, Family.ANTHROPIC: anthropic_error, Family.GOOGLE: google_error}


def render_error(err: GatewayError, family: str) -> dict:
    return RENDERERS[Family(family)](err)


def as_gateway_error(exc: BaseException) -> GatewayError:
    """What a client is told about any failure: a provider's error as the upstream error it is, anything
    unexpected as the gateway's own failure, without its details."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ProviderError):
        return UpstreamError(exc.message, status=exc.status, error_type=exc.error_type)
    return GatewayError(STREAM_FAILED, status=500, error_type="api_error")


def _responses_error(err: GatewayError) -> dict:
    return {"type": "error", "code": err.code or err.error_type, "message": err.message, "param": err.param}


# The error event that ends a stream of each API: (its `event:` name or None, its payload).
STREAM_ERRORS = {
    Api.OPENAI_CHAT: (None, openai_error),
    Api.OPENAI_RESPONSES: ("error", _responses_error),
    Api.ANTHROPIC_MESSAGES: ("error", anthropic_error),
    Api.GEMINI_GENERATE: (None, google_error),
    Api.GEMINI_STREAM: (None, google_error),
}


def stream_error_event(exc: BaseException, api: str) -> tuple[str | None, bytes]:
    """The event that ends a stream of `api` with `exc`: its `event:` name (None for unnamed) and its JSON
    data. OpenAI chat's `{"error": ...}`, Responses' and Anthropic's named `error` event, Google's error
    object."""
    name, payload = STREAM_ERRORS[Api(api)]
    return name, orjson.dumps(payload(as_gateway_error(exc)))


def stream_error(exc: BaseException, api: str) -> bytes:
    """`stream_error_event` as Server-Sent Event bytes, each field on its own line."""
    return sse_event(*stream_error_event(exc, api))


def realtime_error(exc: BaseException) -> str:
    """The OpenAI Realtime `error` event (a text frame) that reports a failure on a WebSocket session."""
    err = as_gateway_error(exc)
    return orjson.dumps({"type": "error", "error": {"type": err.error_type, "code": err.code or err.error_type,
                                                    "message": err.message, "param": err.param,
                                                    "event_id": None}}).decode()
