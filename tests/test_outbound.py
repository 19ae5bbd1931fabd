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
from providers.outbound import PolicyResolver, credential_endpoint_problem, url_problem


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


@pytest.mark.parametrize("host", ["2852039166", "0xA9FEA9FE", "0xa9.0xfe.0xa9.0xfe", "0251.0376.0251.0376",
                                  "169.254.43518", "169.16689662"])
def test_numeric_spellings_of_the_metadata_address_are_refused_without_resolving(host):
    assert "169.254.169.254 is link-local" in url_problem(f"http://{host}/latest", resolve=False)


def test_ipv6_loopback_is_a_private_upstream_not_an_unroutable_one(settings):
    assert url_problem("http://[::1]:11434/v1", resolve=False) is None


def test_public_and_by_default_private_upstreams_are_allowed():
    assert url_problem("https://api.openai.com/v1", resolve=False) is None
    assert url_problem("http://127.0.0.1:11434/v1") is None
    assert url_problem("http://10.0.0.7:8000/v1") is None


def test_switches_for_private_and_link_local_addresses(settings):
    settings.GATEWAY_ALLOW_PRIVATE_UPSTREAMS = False
    assert "is private" in url_problem("http://10.0.0.7:8000/v1")
    assert "loopback name" in url_problem("http://localhost:11434/v1", resolve=False)
    assert "loopback name" in url_problem("http://ollama.localhost./v1", resolve=False)
    assert "is private" in url_problem("http://[::1]:11434/v1", resolve=False)
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
@pytest.mark.parametrize("api_base", ["http://169.254.169.254/v1", "http://2852039166/v1", "http://0xA9FEA9FE/v1"])
def test_writing_a_secret_with_a_metadata_api_base_is_refused(api_base):
    """The admin and gateway_apply write through the same service and model validation."""
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        secret_create(name="imds", provider="openai", values={"api_key": "sk-imds-0123456789"},
                      auth_config={"api_base": api_base})
    assert "auth_config" in info.value.message_dict
    assert not Secret.objects.exists()


def test_gateway_apply_refuses_a_numeric_metadata_address_and_localhost_at_write_time(tmp_path, settings, db):
    from django.core.management import CommandError, call_command

    settings.GATEWAY_ALLOW_PRIVATE_UPSTREAMS = False
    for base in ("http://2852039166/v1", "http://localhost:8000/v1"):
        path = tmp_path / "gateway.yaml"
        path.write_text(f"secrets:\n  - name: s\n    provider: openai\n    values: {{api_key: sk-0123456789}}\n"
                        f"    auth_config: {{api_base: '{base}'}}\n")
        with pytest.raises(CommandError) as info:
            call_command("gateway_apply", str(path))
        assert "outbound policy" in str(info.value)
    assert not Secret.objects.exists()


class _Answers:
    """A stand-in DNS: the addresses a name resolves to right now (a rebinding attacker controls them)."""

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(self, host, port=0, family=0):
        return [{"hostname": host, "host": ip, "port": port, "family": family, "proto": 0, "flags": 0}
                for ip in self.hosts]

    async def close(self):
        pass


async def test_the_policy_holds_on_the_address_actually_connected_to(settings):
    settings.GATEWAY_ALLOW_PRIVATE_UPSTREAMS = False
    resolver = PolicyResolver(_Answers("93.184.215.14", "169.254.169.254", "10.1.2.3"))
    assert [r["host"] for r in await resolver.resolve("api.example.com", 443)] == ["93.184.215.14"]
    with pytest.raises(OSError, match="forbidden address"):
        await PolicyResolver(_Answers("169.254.169.254")).resolve("rebound.example.com", 443)


async def test_the_pooled_client_refuses_a_name_rebound_to_the_metadata_address(settings, monkeypatch):
    from aiohttp.resolver import ThreadedResolver

    from providers import http
    from providers.errors import ProviderError

    async def rebound(self, host, port=0, family=0):
        return [{"hostname": host, "host": "169.254.169.254", "port": port, "family": 2, "proto": 0, "flags": 0}]

    monkeypatch.setattr(ThreadedResolver, "resolve", rebound)
    client = httpx.AsyncClient(transport=http._transport(httpx.Limits(max_connections=2)))
    try:
        with pytest.raises(ProviderError) as info:
            await http.send(client, client.build_request("GET", "http://rebound.example.com/v1"), None, "openai")
    finally:
        await client.aclose()
    assert info.value.status == 502
