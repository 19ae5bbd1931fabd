"""Read a test gateway's SQLite database from the outside, the way an operator's report would."""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable


def rows(server, sql: str, *args) -> list[tuple]:
    path = server.env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


def wait_rows(server, sql: str, *args, expect: Callable[[list[tuple]], bool] = bool, timeout: float = 5.0) -> list[tuple]:
    """Rows once `expect(rows)` holds (the usage writer flushes every half second), or the last read."""
    deadline = time.monotonic() + timeout
    while True:
        found = rows(server, sql, *args)
        if expect(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
