"""The request id: the client's `X-Request-Id` when it is a safe token, else one made here; and the
request's observation scope, which every log line, span, metric and record of the request reads."""
from __future__ import annotations

import itertools
import os
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# Unique per process start, then a counter: cheaper than a uuid4 per request.
_generated = map("{}-{:x}".format, itertools.repeat(os.urandom(6).hex()), itertools.count(1))


def new_id() -> str:
    return next(_generated)


def from_header(value: bytes | None) -> str:
    """The client's id when it matches `[A-Za-z0-9._:-]{1,64}`, else a new one (never an error: a bad id
    must not fail the request it was meant to help trace)."""
    if value:
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return new_id()
        if ACCEPTED.fullmatch(text):
            return text
    return new_id()


@dataclass(slots=True)
class Scope:
    """One HTTP request as observed: filled in by the pipeline when it finishes (`ctx`, `event`), read when
    the response is over to record metrics, end the span and write the request's log line."""

    request_id: str
    method: str
    path: str
    started: float
    span: Any = None
    status: int = 0
    ctx: Any = None     # gateway.pipeline.RequestContext, once the request reached one
    event: Any = None   # gateway.usage.records.UsageEvent, once accounted


current: ContextVar[Scope | None] = ContextVar("gateway_request", default=None)


def current_id() -> str:
    """The current request's id; a fresh one outside a request (internal calls, tests)."""
    scope = current.get()
    return scope.request_id if scope is not None else new_id()


def begin(request_id: str, method: str, path: str) -> Scope:
    scope = Scope(request_id, method, path, time.perf_counter())
    current.set(scope)
    return scope
