"""Every management API error as the OpenAI-style envelope the other gateway routes answer:
`{"error": {"message", "type", "param", "code"}}`."""
from __future__ import annotations

from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from gateway.envelopes import openai_error
from gateway.errors import GatewayError

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 405: "invalid_request_error", 406: "invalid_request_error",
         409: "conflict_error", 415: "invalid_request_error"}


def _gateway_error(exc: Exception) -> GatewayError | None:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, Http404):
        return GatewayError("Not found.", status=404, error_type="not_found_error", code="not_found")
    if isinstance(exc, exceptions.APIException):
        status = exc.status_code
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            status = 401
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else None
        return GatewayError(str(detail), status=status, error_type=TYPES.get(status, "api_error"), code=code)
    return None


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's hook; anything it does not know stays an error for Django to report (a 500 is a bug)."""
    error = _gateway_error(exc)
    if error is None:
        return None
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return Response(openai_error(error), status=error.status, headers=headers)
