"""Session-wide test setup shared by every test module."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker) -> Iterator[None]:
    """pytest-django's test database, with every connection to it closed before it is dropped; PostgreSQL
    refuses to drop a database anyone still uses ("database is being accessed by other users"). Async tests'
    `sync_to_async` calls run in asgiref's one shared worker thread, whose connections outlive the test, and
    psycopg's pool keeps an idle connection (min_size 1)."""
    yield
    with django_db_blocker.unblock():
        SyncToAsync.single_thread_executor.submit(connections.close_all).result()
        connections.close_all()
        for connection in connections.all():
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()
