"""A lean ASGI handler for the gateway's client routes.

Django's ASGIHandler sends request_started/finished signals and closes responses through sync_to_async,
and every MiddlewareMixin middleware adds more thread hops: about a millisecond per request on a small
machine, on a path that must add almost nothing. These routes need none of that (no sessions, cookies,
CSRF or database connection), so this handler builds Django's own request object, resolves the URL and
calls the async view directly. Client disconnects still cancel the view, exactly as in Django's handler.
"""
from __future__ import annotations

import asyncio
import io
import logging

import orjson
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpResponse
from django.urls import Resolver404, get_resolver

from gateway import pipeline
from gateway.envelopes import family_for, render_error
from gateway.errors import GatewayError, NotFound, PayloadTooLarge

logger = logging.getLogger(__name__)


def error_response(exc: GatewayError, path: str) -> HttpResponse:
    return HttpResponse(orjson.dumps(render_error(exc, family_for(path))), status=exc.status,
                        content_type="application/json")


class BodyTooLarge(Exception):
    pass


class GatewayASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)  # no middleware chain for these routes
        self.resolver = get_resolver()
        self.max_body = settings.GATEWAY_MAX_REQUEST_BYTES

    async def __call__(self, scope, receive, send) -> None:
        path = scope["path"]
        try:
            body = await self.read_limited_body(scope, receive)
        except BodyTooLarge:
            limit = PayloadTooLarge(f"The request body is larger than the limit of {self.max_body} bytes.",
                                    code="request_too_large")
            # Refused before any view ran, so recorded here, like every refusal: no key or endpoint known yet.
            pipeline.account_refusal(None, limit, route=self.route_of(path), endpoint_name="", key_name="")
            await self.send_response(error_response(limit, path), send)
            return
        except ConnectionAbortedError:
            return
        request = self.request_class(scope, io.BytesIO(body))
        # Already read and held to GATEWAY_MAX_REQUEST_BYTES; Django's own reading would apply its
        # DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB) and fail bodies between the two limits.
        request._body = body
        try:
            match = self.resolver.resolve(request.path_info)
        except Resolver404:
            await self.send_response(error_response(NotFound(f"No route for {path}."), path), send)
            return

        async def respond() -> None:
            response = await match.func(request, *match.args, **match.kwargs)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass
            finally:
                abandon = getattr(response, "gateway_abandon", None)
                if abandon is not None:
                    await abandon()

        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), asyncio.create_task(respond())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            elif not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if type(exc).__name__ != "RequestAborted":
                    logger.error("gateway request failed", exc_info=exc)

    def route_of(self, path: str) -> str:
        """The usage-record route of the view serving `path` ('' for a path no view serves)."""
        try:
            match = self.resolver.resolve(path)
        except Resolver404:
            return ""
        return getattr(getattr(match.func, "view_class", None), "route", "")

    async def read_limited_body(self, scope, receive) -> bytes:
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise BodyTooLarge
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionAbortedError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)
