"""A graceful stop for realtime sessions.

uvicorn closes every WebSocket with 1012 the moment it is told to stop, cutting a spoken answer in the
middle. So the gateway takes SIGTERM / SIGINT first: new sessions are refused (503), each open session may
finish its in-flight response for up to GATEWAY_REALTIME_DRAIN_SECONDS, is then closed with 1012 (service
restart: clients reconnect), and only then is the signal handed to the server's own handler. A second
signal goes straight to the server."""
from __future__ import annotations

import asyncio
import logging
import signal
import time

from django.conf import settings

logger = logging.getLogger(__name__)

sessions: set = set()  # open RealtimeSessions of this process
_draining = False
SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_SECONDS = 0.05


def draining() -> bool:
    return _draining


def install() -> None:
    """Put the drain in front of the server's signal handlers (call from the running loop at startup)."""
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig, handler in previous.items():
        if not callable(handler):
            continue
        try:
            loop.add_signal_handler(sig, lambda s=sig: loop.create_task(_drain_then(s, previous)))
        except (RuntimeError, ValueError):  # not the main thread (an embedded server): nothing to chain
            return


async def _drain_then(sig: int, previous: dict) -> None:
    global _draining
    loop = asyncio.get_running_loop()
    for other, handler in previous.items():  # a second signal goes straight to the server
        loop.remove_signal_handler(other)
        signal.signal(other, handler)
    _draining = True
    if sessions:
        logger.info("draining %d realtime sessions before stopping", len(sessions))
        await drain(settings.GATEWAY_REALTIME_DRAIN_SECONDS)
    previous[sig](sig, None)


async def drain(timeout: float) -> None:
    """Wait (at most `timeout` s) until no session has a response in flight, then close them all."""
    from gateway.realtime.session import RESTART_CODE

    deadline = time.monotonic() + timeout
    while any(s.responding for s in sessions) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
    open_sessions = list(sessions)
    for session in open_sessions:
        await session.end(RESTART_CODE)
    if open_sessions:
        await asyncio.wait([asyncio.ensure_future(s.ended.wait()) for s in open_sessions], timeout=5)
