"""Secret services: each save tells running servers once that the configuration changed (the version is
what every process polls; a double bump would make them rebuild their snapshot twice)."""
from __future__ import annotations

import pytest

from gateway.config.secrets import secret_create, secret_update
from gateway.config.version import current_config_version


@pytest.mark.django_db
def test_creating_and_updating_a_secret_bumps_the_config_version_once_each(django_capture_on_commit_callbacks):
    before = current_config_version()
    with django_capture_on_commit_callbacks(execute=True):
        secret = secret_create(name="openai-main", provider="openai", values={"api_key": "sk-test-0123456789"})
    assert current_config_version() == before + 1
    with django_capture_on_commit_callbacks(execute=True):
        secret_update(secret=secret, values={"api_key": "sk-test-9876543210"})
    assert current_config_version() == before + 2
    with django_capture_on_commit_callbacks(execute=True):
        secret_update(secret=secret, name="openai-renamed")
    assert current_config_version() == before + 3
