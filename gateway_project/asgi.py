"""ASGI entry point: gateway routes go to the lean handler, everything else (the admin) to Django's
standard handler with its full middleware stack; lifespan events start and stop background work. Every
HTTP request passes the observability layer first (its request id; for /gateway/ paths metrics, a span
and a log line)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402

from gateway.fast_asgi import GatewayASGIHandler  # noqa: E402  (needs Django set up)
from gateway.hosts import HostCheck, refusal  # noqa: E402
from gateway.lifecycle import lifespan  # noqa: E402
from gateway.observability.asgi import metrics_page, observed  # noqa: E402
from gateway.proxy import app as proxy  # noqa: E402
from gateway.realtime.consumer import PATH as REALTIME_PATH, RealtimeConsumer  # noqa: E402

gateway_application = GatewayASGIHandler()
realtime_application = RealtimeConsumer.as_asgi()
hosts = HostCheck.from_settings()
UNCHECKED_PATHS = frozenset(settings.GATEWAY_HOST_CHECK_EXEMPT_PATHS)
ADMIN_API = "/gateway/admin/v1/"


async def route(scope, receive, send):
    # The usage and management APIs accept a staff session, so they keep Django's middleware; every other
    # /gateway/ path, unknown ones included, gets the lean handler and its JSON errors.
    path = scope.get("path", "")
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send, path)
    if scope["type"] == "http" and path not in UNCHECKED_PATHS:
        host = hosts.host_of(scope)
        if not hosts.allows(host):
            return await gateway_application.send_response(refusal(path, host), send)
    if scope["type"] == "http" and path.startswith(proxy.PREFIX):
        return await proxy.application(scope, receive, send)
    if scope["type"] == "http" and (path.startswith("/gateway/") and not path.startswith(ADMIN_API)
                                    or path in ("/health", "/ready")):
        return await gateway_application(scope, receive, send)
    if scope["type"] == "http" and path == "/metrics":
        return await metrics_page(scope, receive, send)
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    return await django_application(scope, receive, send)


async def websocket(scope, receive, send, path: str) -> None:
    """The realtime route is the only WebSocket route, behind the same host check as HTTP."""
    if path == REALTIME_PATH and hosts.allows(hosts.host_of(scope)):
        return await realtime_application(scope, receive, send)
    await receive()  # websocket.connect; closing before accepting refuses the handshake (403)
    await send({"type": "websocket.close", "code": 1000})


application = observed(route)
