"""Error bodies in each client SDK's own format, so the SDK raises its matching exception."""
from __future__ import annotations

from gateway.errors import GatewayError

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


def openai_error(err: GatewayError) -> dict:
    return {"error": {"message": err.message, "type": err.error_type, "param": err.param, "code": err.code}}


def anthropic_error(err: GatewayError) -> dict:
    kind = ANTHROPIC_TYPES.get(err.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": err.message}}


def google_error(err: GatewayError) -> dict:
    return {"error": {"code": err.status, "message": err.message,
                      "status": GOOGLE_STATUS.get(err.status, "INTERNAL" if err.status >= 500 else "FAILED_PRECONDITION")}}


RENDERERS = {"openai": openai_error, "anthropic": anthropic_error, "google": google_error}


def render_error(err: GatewayError, family: str) -> dict:
    return RENDERERS[family](err)
