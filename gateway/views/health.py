"""Liveness for load balancers: answers without touching the database."""
from __future__ import annotations

from django.http import HttpResponse

from gateway.config.snapshot import store


async def health(request):
    snapshot = store.current
    body = b'{"status":"ok","config_version":%d}' % (snapshot.version if snapshot else -1)
    return HttpResponse(body, content_type="application/json")
