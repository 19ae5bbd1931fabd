"""Background tasks that run while they have work and are started again on demand.

A per-process helper (an allowance sweeper, a batch writer) keeps one task; it ends when its work is done
and must be started again by the next piece of work, on whichever event loop is running then (tests run
several loops in one process, and a task belongs to the loop that created it).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine


def running(task: asyncio.Task | None, start: Callable[[], Coroutine]) -> asyncio.Task:
    """`task` while it is still running on the current event loop, else a new task of `start()`."""
    loop = asyncio.get_running_loop()
    if task is None or task.done() or task.get_loop() is not loop:
        return loop.create_task(start())
    return task
