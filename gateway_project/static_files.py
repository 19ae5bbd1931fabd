"""WhiteNoise for the admin's CSS and JS, made safe to serve under ASGI.

WhiteNoise answers with a `FileResponse` over a plain file: Django's ASGI handler can only drain such a
synchronous iterator by warning ("StreamingHttpResponse must consume synchronous iterators") and reading it
on the event loop. Under ASGI the file is read in a worker thread instead, in large blocks so a typical admin
file costs one hop; under WSGI (`runserver`) WhiteNoise's response is left as it is.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

BLOCK_SIZE = 256 * 1024


async def _read_in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk


class AsgiWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """`whitenoise.middleware.WhiteNoiseMiddleware` whose file responses stream asynchronously under ASGI."""

    @staticmethod
    def serve(static_file, request: HttpRequest) -> HttpResponseBase:
        response = WhiteNoiseMiddleware.serve(static_file, request)
        if isinstance(request, ASGIRequest) and response.streaming and not response.is_async:
            response.block_size = BLOCK_SIZE
            response.streaming_content = _read_in_thread(iter(response.streaming_content))
        return response
