"""ASGI entry point: gateway routes go to the lean handler, everything else (the admin) to Django's
standard handler with its full middleware stack; lifespan events start and stop background work."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402

from gateway.fast_asgi import GatewayASGIHandler  # noqa: E402  (needs Django set up)
from gateway.hosts import HostCheck, refusal  # noqa: E402
from gateway.lifecycle import lifespan  # noqa: E402

gateway_application = GatewayASGIHandler()
hosts = HostCheck.from_settings()
UNCHECKED_PATHS = frozenset(settings.GATEWAY_HOST_CHECK_EXEMPT_PATHS)
USAGE_API = "/gateway/admin/v1/usage"


async def application(scope, receive, send):
    # The usage API accepts a staff session, so it keeps Django's middleware; every other /gateway/ path,
    # unknown ones included, gets the lean handler and its JSON errors.
    path = scope.get("path", "")
    if scope["type"] == "http" and path not in UNCHECKED_PATHS:
        host = hosts.host_of(scope)
        if not hosts.allows(host):
            return await gateway_application.send_response(refusal(path, host), send)
    if scope["type"] == "http" and (path.startswith("/gateway/") and path != USAGE_API or path in ("/health", "/ready")):
        return await gateway_application(scope, receive, send)
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    return await django_application(scope, receive, send)
