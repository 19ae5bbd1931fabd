"""Liveness (/health: answers without touching the database) and readiness (/ready: gateway/readiness.py)
for load balancers; neither needs a client key."""
from __future__ import annotations

import orjson
from django.http import HttpResponse

from gateway.config.snapshot import store
from gateway.readiness import readiness


async def health(request):
    snapshot = store.current
    body = b'{"status":"ok","config_version":%d}' % (snapshot.version if snapshot else -1)
    return HttpResponse(body, content_type="application/json")


async def ready(request):
    ok, report = await readiness()
    return HttpResponse(orjson.dumps(report), status=200 if ok else 503, content_type="application/json")
