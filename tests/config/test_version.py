"""One change, one configuration version: rows written together inside `one_config_version()` ask every
server to rebuild once, and a block that fails asks nothing."""
from __future__ import annotations

import pytest
from django.db import transaction

from gateway.config.version import current_config_version, one_config_version
from gateway.models import Endpoint, EndpointModel, ModelDefinition

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def test_several_rows_written_in_one_block_are_one_version():
    before = current_config_version()
    with transaction.atomic(), one_config_version():
        model = ModelDefinition.objects.create(name="echo", provider="fake", model_name="fake-echo")
        endpoint = Endpoint.objects.create(name="chat")
        EndpointModel.objects.create(endpoint=endpoint, model=model)
    assert current_config_version() == before + 1
    Endpoint.objects.create(name="other")
    assert current_config_version() == before + 2


def test_a_block_that_fails_bumps_nothing():
    before = current_config_version()
    with pytest.raises(RuntimeError), transaction.atomic(), one_config_version():
        Endpoint.objects.create(name="chat")
        raise RuntimeError("abandoned")
    assert current_config_version() == before and not Endpoint.objects.exists()
