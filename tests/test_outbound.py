"""The outbound address policy: a provider's api_base may not point at link-local or cloud metadata
addresses, and a model whose api_base the policy forbids fails without any network call."""
from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async

from gateway.apikeys import api_key_create
from gateway.models import Endpoint, EndpointModel, ModelDefinition, Secret
from gateway.config.secrets import secret_create
from gateway.config.snapshot import BrokenAdapter, store
from providers.outbound import credential_endpoint_problem, url_problem


@pytest.mark.parametrize("url,problem", [
    ("http://169.254.169.254/latest/meta-data", "link-local or a cloud metadata service"),
    ("http://[::ffff:169.254.169.254]/", "link-local or a cloud metadata service"),
    ("http://[fd00:ec2::254]/", "link-local or a cloud metadata service"),
    ("http://100.100.100.200/", "link-local or a cloud metadata service"),
    ("http://metadata.google.internal/computeMetadata/v1", "is a cloud metadata service"),
    ("http://0.0.0.0:8000/v1", "not routable"),
    ("ftp://api.example.com/v1", "scheme 'ftp' is not allowed"),
    ("https://user:pw@api.example.com/v1", "embeds credentials"),
    ("https:///v1", "has no host"),
])
def test_forbidden_base_urls_are_refused_with_the_reason(url, problem):
    assert problem in (url_problem(url, resolve=False) or "")


@pytest.mark.parametrize("url", [
    "http://169.254.169.254", "http://[fd00:ec2::254]", "http://169.254.170.2/v2/credentials/abc",
    "http://169.254.170.23/v1/credentials", "metadata.google.internal", "http://metadata.google.internal",
])
def test_cloud_metadata_services_are_allowed_for_credential_fetching_only(url):
    assert credential_endpoint_problem(url) is None
    assert url_problem(url if "//" in url else f"http://{url}", resolve=False) is not None


@pytest.mark.parametrize("url", ["http://169.254.10.10", "http://100.100.100.200", "http://metadata.azure.internal"])
def test_other_link_local_credential_endpoints_are_refused(url):
    assert credential_endpoint_problem(url) is not None


def test_public_and_by_default_private_upstreams_are_allowed():
    assert url_problem("https://api.openai.com/v1", resolve=False) is None
    assert url_problem("http://127.0.0.1:11434/v1") is None
    assert url_problem("http://10.0.0.7:8000/v1") is None


def test_switches_for_private_and_link_local_addresses(settings):
    settings.GATEWAY_ALLOW_PRIVATE_UPSTREAMS = False
    assert "is private" in url_problem("http://10.0.0.7:8000/v1")
    assert "resolves to a forbidden address" in url_problem("http://localhost:11434/v1")
    settings.GATEWAY_ALLOW_LINK_LOCAL_UPSTREAMS = True
    assert url_problem("http://169.254.169.254/latest/meta-data") is None


@pytest.mark.django_db(transaction=True)
async def test_a_model_pointing_at_the_metadata_service_fails_without_calling_it():
    from gateway_project.asgi import application

    def setup() -> str:
        secret = secret_create(name="imds", provider="openai", values={"api_key": "sk-imds-0123456789"},
                               auth_config={"api_base": "https://api.openai.com/v1"})
        # Written before the policy existed (or behind its back): the runtime check must still hold.
        Secret.objects.filter(pk=secret.pk).update(auth_config={"api_base": "http://169.254.169.254/v1"})
        model = ModelDefinition.objects.create(name="imds", provider="openai", model_name="gpt-4o-mini", secret=secret)
        EndpointModel.objects.create(endpoint=Endpoint.objects.create(name="imds"), model=model)
        return api_key_create(name="k")[1]

    key = await sync_to_async(setup)()
    await store.refresh()
    assert isinstance(store.current.endpoints["imds"].primaries[0].adapter, BrokenAdapter)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/gateway/mlflow/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                     json={"model": "imds", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 503
    assert "blocked by the outbound policy" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_writing_a_secret_with_a_metadata_api_base_is_refused():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        secret_create(name="imds", provider="openai", values={"api_key": "sk-imds-0123456789"},
                      auth_config={"api_base": "http://169.254.169.254/v1"})
    assert "auth_config" in info.value.message_dict
    assert not Secret.objects.exists()
