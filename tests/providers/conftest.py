"""Fixtures for the adapter tests: a module starts its fake upstream once (its own module-scoped `upstream`
fixture), and each test gets that fake reset, and an HTTP client for the adapter."""
from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def fake(upstream):
    """The module's fake upstream, with no recorded request or scripted behaviour left by another test."""
    upstream.reset()
    yield upstream
    upstream.reset()


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5) as client:
        yield client
