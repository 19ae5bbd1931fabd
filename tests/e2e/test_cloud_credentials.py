"""Cloud providers with the credentials the workload already has, through the real gateway and the official
SDKs: Bedrock signing with instance-metadata credentials (IMDSv2) and with a role assumed on top of them,
the fake Bedrock verifying each signature against the keys the fake metadata service and STS issued; and
Vertex AI with Application Default Credentials from the GCE metadata server (GCE_METADATA_HOST)."""
from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.e2e.harness import make_gateway
from tests.fakes.aws_credentials import FakeAwsCredentials
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.vertex import FakeVertex

ROLE = "arn:aws:iam::123456789012:role/bedrock-invoker"
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"


@pytest.fixture(scope="module")
def aws():
    with FakeAwsCredentials() as server:
        yield server


@pytest.fixture(scope="module")
def bedrock(aws):
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture(scope="module")
def vertex():
    with FakeVertex() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(e2e_root, aws, bedrock, vertex, tmp_path_factory):
    home = tmp_path_factory.mktemp("cloud-home")
    metadata = vertex.url.removeprefix("http://")
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": aws.url, "AWS_ENDPOINT_URL_STS": aws.url,
           "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"), "AWS_CONFIG_FILE": str(home / "config"),
           "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
           "GCE_METADATA_HOST": metadata, "GCE_METADATA_IP": metadata, "GOOGLE_APPLICATION_CREDENTIALS": "",
           "CLOUDSDK_CONFIG": str(home / "gcloud")}
    config = {
        "secrets": [
            {"name": "gce", "provider": "vertex_ai", "values": {},
             "auth_config": {"vertex_project": "my-project", "api_base": f"{vertex.url}/v1"}},
            {"name": "instance", "provider": "bedrock", "values": {},
             "auth_config": {"auth_mode": "default_chain", "api_base": bedrock.url}},
            {"name": "invoker", "provider": "bedrock", "values": {},
             "auth_config": {"auth_mode": "default_chain", "aws_role_arn": ROLE, "api_base": bedrock.url}},
        ],
        "models": [{"name": "claude-instance", "provider": "bedrock", "model_name": CLAUDE, "secret": "instance"},
                   {"name": "claude-role", "provider": "bedrock", "model_name": CLAUDE, "secret": "invoker"},
                   {"name": "gemini-gce", "provider": "vertex_ai", "model_name": "gemini-2.5-flash", "secret": "gce"},
                   {"name": "mistral-gce", "provider": "vertex_ai", "model_name": "mistral-small-2503", "secret": "gce"},
                   {"name": "llama-gce", "provider": "vertex_ai", "model_name": "llama-3.3-70b-instruct-maas",
                    "secret": "gce"}],
        "endpoints": [{"name": "instance", "models": [{"model": "claude-instance"}]},
                      {"name": "gce", "models": [{"model": "gemini-gce"}]},
                      {"name": "mistral", "models": [{"model": "mistral-gce"}]},
                      {"name": "llama", "models": [{"model": "llama-gce"}]},
                      {"name": "role", "models": [{"model": "claude-role"}]}],
    }
    server = make_gateway(e2e_root, "cloud-credentials", config, env=env)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _verified_signatures(aws, bedrock):
    bedrock.reset()
    bedrock.aws_keys = aws.issued


def test_openai_sdk_through_instance_metadata_credentials(gateway, aws, bedrock):
    client = openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"])
    answer = client.chat.completions.create(model="instance", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "echo: hi"
    stream = client.chat.completions.create(model="instance", messages=[{"role": "user", "content": "again"}],
                                            stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "echo: again"
    assert {aws.issued_for[key] for key in bedrock.signed_by} == {"imds"} and len(bedrock.signed_by) == 2
    assert len(set(bedrock.signed_by)) == 1  # fetched once, cached


def test_anthropic_sdk_through_a_role_assumed_from_the_instance(gateway, aws, bedrock):
    client = anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"])
    with client.messages.stream(model="role", max_tokens=50, messages=[{"role": "user", "content": "hello"}]) as stream:
        text = "".join(stream.text_stream)
    assert "hello" in text
    [signer] = set(bedrock.signed_by)
    assert aws.issued_for[signer] == "AssumeRole"
    [assume] = [r for r in aws.requests if r.path == "/" and b"Action=AssumeRole" in r.body]
    assert aws.issued_for[assume.headers["authorization"].split("Credential=")[1].split("/")[0]] == "imds"


def test_genai_sdk_through_vertex_with_gce_metadata_credentials(gateway, vertex):
    client = genai.Client(api_key=gateway.keys["default"], http_options=genai_types.HttpOptions(
        base_url=f"{gateway.url}/gateway/gemini", api_version="v1beta", retry_options=None))
    answer = client.models.generate_content(model="gce", contents="hello")
    assert answer.text == "echo: hello"
    streamed = "".join(chunk.text or "" for chunk in client.models.generate_content_stream(model="gce", contents="again"))
    assert streamed == "echo: again"
    tokens = [r for r in vertex.requests if r.path.endswith("/service-accounts/default/token")]
    assert len(tokens) == 1 and tokens[0].headers["metadata-flavor"] == "Google"
    assert {r.headers["authorization"] for r in vertex.api_requests} == {"Bearer ya29.metadata-1"}


@pytest.mark.parametrize("route", ["mlflow/v1", "openai/v1"])
@pytest.mark.parametrize("endpoint", ["mistral", "llama"])
def test_openai_sdk_on_mistral_and_llama_hosted_on_vertex(gateway, vertex, route, endpoint):
    client = openai.OpenAI(base_url=f"{gateway.url}/gateway/{route}", api_key=gateway.keys["default"], max_retries=0)
    answer = client.chat.completions.create(model=endpoint, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "echo: hi" and answer.usage.total_tokens > 0
    stream = client.chat.completions.create(model=endpoint, messages=[{"role": "user", "content": "more"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: more"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
