"""The gateway's one exception hierarchy. Views never build error bodies themselves: they raise these,
and gateway/envelopes.py renders them in the calling SDK's own format."""
from __future__ import annotations


class GatewayError(Exception):
    status = 500
    error_type = "api_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status: int | None = None, error_type: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        self.headers = headers or {}


class BadRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class Unauthenticated(GatewayError):
    status = 401
    error_type = "authentication_error"


class PermissionDenied(GatewayError):
    status = 403
    error_type = "permission_error"


class NotFound(GatewayError):
    status = 404
    error_type = "not_found_error"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "request_too_large"


class BudgetExceeded(GatewayError):
    status = 429
    error_type = "budget_exceeded"


class GuardrailBlocked(GatewayError):
    status = 400
    error_type = "guardrail_blocked"


class ServiceUnavailable(GatewayError):
    status = 503
    error_type = "service_unavailable"


class UpstreamError(GatewayError):
    """A provider failure as the client sees it (status already mapped by the provider layer)."""

    error_type = "upstream_error"
