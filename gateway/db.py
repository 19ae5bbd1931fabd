"""Database work from async code: each call runs in a worker thread and hands its connection back when done.

Worker threads outlive the call, and a connection left open in one holds a slot of PostgreSQL's pool for
good; with a handful of threads the pool runs dry. Closing after each unit of work (returning the
connection to the pool, or closing an SQLite handle) keeps the number in use bounded by the work in flight.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
T = TypeVar("T")


def db_task(fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return sync_to_async(run, thread_sensitive=False)
