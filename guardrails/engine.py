"""Running an endpoint's guardrails on a request: the entry points every route calls.

- `run_before(ctx, body, fmt)`: before-stage guardrails, in order, on the request body (sanitize rewrites
  it in place, so the rewritten request is what goes upstream).
- `run_after(ctx, response, fmt)`: after-stage guardrails on a complete response, rewritten in place.
- `stream_filter(ctx, fmt)`: a `StreamFilter` for a streamed response as parsed events, and
  `sse_guard(ctx, fmt)`: the same over raw SSE bytes (passthrough relays); None when there is nothing to do.

A block raises GuardrailBlocked (400) naming the guardrail and its reason, never the matched text; a
guardrail that fails raises ServiceUnavailable (503) when its fail mode is closed, and is skipped and
logged when it is open. Every guardrail that ran gets an entry in `ctx.guardrail_results`. Endpoints
without guardrails, and internal calls (the judge's own), cost one attribute check.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.observability import tracing
from guardrails.compiled import CompiledGuardrail, Run, for_endpoint
from guardrails.sse import SSEGuard
from guardrails.streams import StreamFilter
from guardrails.text import Slot, request_slots, response_slots

if TYPE_CHECKING:
    from gateway.context import RequestContext


async def run_before(ctx: "RequestContext", body: dict, fmt: str) -> None:
    await _run_stage(ctx, "before", lambda: request_slots(body, fmt), "request")


async def run_after(ctx: "RequestContext", response: dict, fmt: str) -> None:
    await _run_stage(ctx, "after", lambda: response_slots(response, fmt), "response")


async def _run_stage(ctx: "RequestContext", stage: str, slots: Callable[[], list[Slot]], subject: str) -> None:
    if ctx.internal or not ctx.endpoint.guardrails:
        return
    guardrails = getattr(for_endpoint(ctx.endpoint), stage)
    if guardrails:
        await _run(ctx, guardrails, slots(), subject)


def stream_filter(ctx: "RequestContext", fmt: str) -> StreamFilter | None:
    if ctx.internal or not ctx.endpoint.guardrails:
        return None
    guardrails = for_endpoint(ctx.endpoint).after
    return StreamFilter(ctx, guardrails, fmt) if guardrails else None


def sse_guard(ctx: "RequestContext", fmt: str, frames=None) -> SSEGuard | None:
    filtered = stream_filter(ctx, fmt)
    return SSEGuard(filtered, fmt, frames) if filtered is not None else None


async def _run(ctx: "RequestContext", guardrails: tuple[CompiledGuardrail, ...], slots: list[Slot],
               subject: str) -> None:
    for compiled in guardrails:
        run = Run(compiled, ctx)
        with tracing.guardrail_span(run.result):
            _apply(run, await _evaluate(run, compiled, slots, ctx), slots, subject)


async def _evaluate(run: Run, compiled: CompiledGuardrail, slots: list[Slot], ctx: "RequestContext"):
    """The guardrail's verdict, or None when it failed and its fail mode is open (raises when closed)."""
    started = time.perf_counter()
    try:
        return await compiled.ready().evaluate([slot.text for slot in slots], ctx)
    except Exception as exc:  # noqa: BLE001 - any failure of the guardrail itself goes to its fail mode
        error = run.failed(exc)
        if error is not None:
            raise error from None
        return None
    finally:
        run.clock(started)


def _apply(run: Run, verdict, slots: list[Slot], subject: str) -> None:
    if verdict is None or verdict.passed:
        return
    if not run.compiled.sanitize or verdict.texts is None:
        raise run.blocked(verdict.reason, subject)
    for slot, text in zip(slots, verdict.texts):
        if text != slot.text:
            slot.set(text)
    run.sanitized()
