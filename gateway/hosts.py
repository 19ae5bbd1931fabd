"""DJANGO_ALLOWED_HOSTS for every route: the lean gateway handler has no middleware to apply it, and the
admin's own check logs a long DisallowedHost traceback. One check in front of both answers 400 in the
route's own error format and logs one line; the paths load balancers and scrapers call by IP are exempt."""
from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host

from gateway.errors import BadRequest
from gateway.fast_asgi import error_response

logger = logging.getLogger(__name__)

# Distinct Host values remembered with their verdict; bounded so junk headers cannot grow it without end.
MAX_REMEMBERED = 1024


class HostCheck:
    """Django's own host rules (exact names, `.example.com` for a domain and its subdomains, `*`), with each
    Host value's verdict remembered: after the first request from a name, the check is one dict lookup."""

    def __init__(self, allowed: list[str], *, debug: bool, forwarded: bool) -> None:
        if debug and not allowed:  # Django's own DEBUG default
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        self.allowed = list(allowed)
        self.forwarded = forwarded
        self.verdicts: dict[bytes, bool] = {}

    @classmethod
    def from_settings(cls) -> HostCheck:
        return cls(settings.ALLOWED_HOSTS, debug=settings.DEBUG, forwarded=settings.USE_X_FORWARDED_HOST)

    def host_of(self, scope) -> bytes:
        """The Host the request names, as Django's `get_host()` reads it."""
        found = b""
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-host" and self.forwarded:
                return value.split(b",")[-1].strip()
            if name == b"host":
                found = value
        if not found and scope.get("server"):
            host, port = scope["server"]
            found = f"{host}:{port}".encode() if port else str(host).encode()
        return found

    def allows(self, host: bytes) -> bool:
        verdict = self.verdicts.get(host)
        if verdict is None:
            domain, _ = split_domain_port(host.decode("latin-1"))
            verdict = bool(domain) and validate_host(domain, self.allowed)
            if len(self.verdicts) < MAX_REMEMBERED:
                self.verdicts[host] = verdict
        return verdict


def refusal(path: str, host: bytes) -> HttpResponse:
    """The 400 for a Host outside DJANGO_ALLOWED_HOSTS, logged in one line."""
    shown = host.decode("latin-1")[:100]
    logger.warning("refused %s: Host %r is not in DJANGO_ALLOWED_HOSTS", path[:200], shown)
    if path.startswith("/gateway/"):
        return error_response(BadRequest(f"Host '{shown}' is not served here (DJANGO_ALLOWED_HOSTS).",
                                         code="disallowed_host"), path)
    return HttpResponse(b"Bad Request (400): this host name is not served here.", status=400,
                        content_type="text/plain; charset=utf-8")
