"""Bedrock with the credentials operators already have: botocore's default chain (environment, shared files,
web identity, container and instance metadata) and assume-role, each against fake AWS credential services
on 127.0.0.1 reached through the SDK's own endpoint overrides, and the fake Bedrock checking every
signature against the keys those services issued."""
from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest

from providers.base import CallStats, ModelTarget, ProviderError
from providers.bedrock import credentials
from providers.bedrock.adapter import BedrockAdapter
from tests.fakes.aws_credentials import CONTAINER_TOKEN, FakeAwsCredentials
from tests.fakes.base import Behaviour
from tests.fakes.bedrock import FakeBedrock

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
HELLO = {"messages": [{"role": "user", "content": "Hello there"}]}
ROLE = "arn:aws:iam::123456789012:role/bedrock-invoker"
STATIC = {"aws_access_key_id": "AKIDSTATIC0001", "aws_secret_access_key": "static-secret"}


@pytest.fixture(scope="module")
def upstream():
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture(scope="module")
def aws_server():
    with FakeAwsCredentials() as server:
        yield server


@pytest.fixture
def aws(aws_server, fake, monkeypatch, tmp_path):
    """A clean AWS environment: no real credentials, files or metadata reachable; the fake Bedrock accepts
    exactly the keys the fake credential services issue (plus STATIC)."""
    aws_server.reset()
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(credentials, "_sources", {})
    fake.aws_keys = aws_server.issued
    aws_server.issued[STATIC["aws_access_key_id"]] = (STATIC["aws_secret_access_key"], None)
    return aws_server


def adapter_for(fake: FakeBedrock, client, values: dict | None = None, **auth_config) -> BedrockAdapter:
    return BedrockAdapter(ModelTarget(id=1, name="b", provider="bedrock", model_name=MODEL, credentials=values or {},
                                      auth_config={"api_base": fake.url, **auth_config}), client)


async def signed_chat(fake: FakeBedrock, client, values: dict | None = None, **auth_config) -> str:
    """The key id that signed the accepted request."""
    await adapter_for(fake, client, values, **auth_config).chat(HELLO, CallStats())
    return fake.signed_by[-1]


async def test_chain_reads_environment_variables(aws, fake, client, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", STATIC["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", STATIC["aws_secret_access_key"])
    assert await signed_chat(fake, client, auth_mode="default_chain") == STATIC["aws_access_key_id"]


async def test_no_secret_values_means_the_default_chain(aws, fake, client, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", STATIC["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", STATIC["aws_secret_access_key"])
    assert await signed_chat(fake, client) == STATIC["aws_access_key_id"]


async def test_chain_reads_a_named_profile_from_the_shared_credentials_file(aws, fake, client, tmp_path):
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n"
        f"[bedrock]\naws_access_key_id = {STATIC['aws_access_key_id']}\n"
        f"aws_secret_access_key = {STATIC['aws_secret_access_key']}\n")
    assert await signed_chat(fake, client, auth_mode="default_chain", aws_profile_name="bedrock") == \
        STATIC["aws_access_key_id"]


async def test_profile_in_config_file_assumes_a_role_through_sts(aws, fake, client, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)
    (tmp_path / "credentials").write_text(
        f"[base]\naws_access_key_id = {STATIC['aws_access_key_id']}\n"
        f"aws_secret_access_key = {STATIC['aws_secret_access_key']}\n")
    (tmp_path / "config").write_text(f"[profile invoker]\nrole_arn = {ROLE}\nsource_profile = base\n")
    signer = await signed_chat(fake, client, auth_mode="default_chain", aws_profile_name="invoker")
    assert aws.issued_for[signer] == "AssumeRole"


async def test_web_identity_token_file_as_eks_irsa_sets_it(aws, fake, client, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)
    signer = await signed_chat(fake, client, auth_mode="default_chain")
    assert aws.issued_for[signer] == "AssumeRoleWithWebIdentity"
    [sts_call] = [r for r in aws.requests if r.path == "/"]
    assert b"projected-service-account-token" in sts_call.body


async def test_container_credentials_endpoint(aws, fake, client, monkeypatch):
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{aws.url}/container-credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN)
    assert aws.issued_for[await signed_chat(fake, client, auth_mode="default_chain")] == "container"


async def test_instance_metadata_with_imdsv2_token(aws, fake, client, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws.url)
    assert aws.issued_for[await signed_chat(fake, client, auth_mode="default_chain")] == "imds"
    assert [r.method for r in aws.requests][:1] == ["PUT"]


async def test_access_keys_assume_a_role_once_and_reuse_it(aws, fake, client, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)
    adapter = adapter_for(fake, client, STATIC, aws_role_arn=ROLE, aws_role_session_name="gw", aws_external_id="x-1")
    await asyncio.gather(*(adapter.chat(HELLO, CallStats()) for _ in range(3)))
    [sts_call] = aws.requests  # cached: three requests, one AssumeRole
    assert b"RoleSessionName=gw" in sts_call.body and b"ExternalId=x-1" in sts_call.body
    assert sts_call.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={STATIC['aws_access_key_id']}/")
    assert {aws.issued_for[key] for key in fake.signed_by} == {"AssumeRole"} and len(set(fake.signed_by)) == 1


async def test_credentials_near_expiry_are_refreshed_in_the_background(aws, fake, client, monkeypatch):
    """Credentials with less than REFRESH_AHEAD but more than MIN_VALIDITY left are used while a refresh
    runs; the refreshed ones sign the next request."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)
    aws.lifetime = timedelta(seconds=(credentials.REFRESH_AHEAD + credentials.MIN_VALIDITY) / 2)
    adapter = adapter_for(fake, client, STATIC, aws_role_arn=ROLE)
    await adapter.chat(HELLO, CallStats())
    first = fake.signed_by[-1]
    await adapter.chat(HELLO, CallStats())
    assert fake.signed_by[-1] == first  # not waited for
    await adapter.aws_credentials._refreshing
    await adapter.chat(HELLO, CallStats())
    assert fake.signed_by[-1] != first and aws.issued_for[fake.signed_by[-1]] == "AssumeRole"


async def test_no_credentials_anywhere_is_a_clear_error(aws, fake, client):
    with pytest.raises(ProviderError) as caught:
        await adapter_for(fake, client, auth_mode="default_chain").chat(HELLO, CallStats())
    assert caught.value.status == 502 and "No AWS credentials were found" in caught.value.message
    assert not fake.requests


async def test_sts_refusal_names_the_error_not_the_keys(aws, fake, client, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)
    adapter = adapter_for(fake, client, STATIC, aws_role_arn=ROLE)
    aws.fail("/", status=403, body=(b'<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>'
                                   b'<Message>not authorized to perform sts:AssumeRole</Message></Error>'
                                   b'</ErrorResponse>'))
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert "AccessDenied" in caught.value.message and STATIC["aws_secret_access_key"] not in caught.value.message
    assert not caught.value.retryable and not fake.requests


@pytest.mark.parametrize(("variable", "values", "auth_config"), [
    ("AWS_EC2_METADATA_SERVICE_ENDPOINT", {}, {"auth_mode": "default_chain"}),
    ("AWS_ENDPOINT_URL_STS", {}, {"auth_mode": "default_chain"}),
    ("AWS_ENDPOINT_URL_STS", STATIC, {"aws_role_arn": ROLE}),
])
def test_an_override_to_another_link_local_address_makes_the_model_unusable(aws, fake, monkeypatch, variable,
                                                                            values, auth_config):
    monkeypatch.setenv(variable, "http://169.254.10.10")
    with pytest.raises(ValueError, match=f"{variable} is blocked by the outbound policy"):
        adapter_for(fake, None, values, **auth_config)


def test_the_instance_metadata_address_itself_is_allowed_for_credentials(aws, fake, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254")
    assert adapter_for(fake, None, auth_mode="default_chain").problem is None


async def test_a_slow_credential_service_does_not_block_the_event_loop(aws, fake, client, monkeypatch):
    """botocore's fetch is blocking HTTP; it runs in a worker thread, so other requests keep being served."""
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{aws.url}/container-credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN)
    aws.behave("/container-credentials", Behaviour(delay=0.5), times=1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.get_running_loop().create_task(ticker())
    try:
        await adapter_for(fake, client, auth_mode="default_chain").chat(HELLO, CallStats())
    finally:
        running.cancel()
    assert ticks >= 10  # a blocked loop would not have ticked at all during the half-second fetch
