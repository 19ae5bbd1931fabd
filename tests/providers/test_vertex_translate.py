"""Vertex AI shapes: model URLs per location and family, Claude bodies, :predict embeddings, and reading
the service-account key."""
from __future__ import annotations

import pytest

from providers.base import ProviderError
from providers.vertex.auth import service_account_info
from providers.vertex.translate import claude_body, embeddings_response, model_url, predict_bodies, publisher_of


@pytest.mark.parametrize(("config", "model", "url"), [
    pytest.param({"vertex_project": "p1"}, "gemini-2.5-flash",
                 "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/google/models/gemini-2.5-flash",
                 id="global-default"),
    pytest.param({"vertex_project": "p1", "vertex_location": "us-east5"}, "claude-sonnet-4@20250514",
                 "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5/publishers/anthropic/"
                 "models/claude-sonnet-4@20250514", id="regional-claude"),
    pytest.param({"vertex_project": "p1", "api_base": "http://127.0.0.1:8080/v1/"}, "text-embedding-005",
                 "http://127.0.0.1:8080/v1/projects/p1/locations/global/publishers/google/models/text-embedding-005",
                 id="api_base-override"),
])
def test_model_url(config, model, url):
    assert model_url(config, model) == url


@pytest.mark.parametrize(("config", "message"), [
    ({}, "vertex_project"),
    ({"vertex_project": "p/../q"}, "vertex_project"),
    ({"vertex_project": "p", "vertex_location": "us-central1/x"}, "is not a Google Cloud location"),
])
def test_model_url_refuses_values_that_change_the_path(config, message):
    with pytest.raises(ValueError, match=message):
        model_url(config, "gemini-2.5-flash")
    with pytest.raises(ValueError, match="not a Vertex AI publisher model id"):
        model_url({"vertex_project": "p"}, "projects/p/locations/l/endpoints/123")


def test_publishers():
    assert [publisher_of(m) for m in ("claude-opus-4", "gemini-2.5-pro", "text-embedding-005")] == \
        ["anthropic", "google", "google"]


def test_claude_body_moves_model_and_version():
    body = {"model": "endpoint", "stream": False, "max_tokens": 5, "messages": []}
    assert claude_body(body, stream=False) == {"max_tokens": 5, "messages": [], "anthropic_version": "vertex-2023-10-16"}
    assert claude_body(body, stream=True)["stream"] is True
    assert body["model"] == "endpoint"


def test_predict_batches_per_model_limit():
    many = [f"t{i}" for i in range(251)]
    assert [len(b["instances"]) for b in predict_bodies({"input": many}, "text-embedding-005")] == [250, 1]
    assert [len(b["instances"]) for b in predict_bodies({"input": many[:3]}, "gemini-embedding-001")] == [1, 1, 1]
    assert predict_bodies({"input": "x", "dimensions": 8}, "text-embedding-005") == [
        {"instances": [{"content": "x"}], "parameters": {"outputDimensionality": 8}}]
    for bad in ({"input": [[1, 2]]}, {"input": []}, {"input": "x", "encoding_format": "int8"}):
        with pytest.raises(ProviderError) as caught:
            predict_bodies(bad, "text-embedding-005")
        assert caught.value.status == 400


def test_embeddings_response_joins_batches_in_order():
    answers = [{"predictions": [{"embeddings": {"values": [0.5], "statistics": {"token_count": 2.0}}}]},
               {"predictions": [{"embeddings": {"values": [0.25], "statistics": {"token_count": 3}}}]}]
    assert embeddings_response(answers, "text-embedding-005") == {
        "object": "list", "model": "text-embedding-005", "usage": {"prompt_tokens": 5, "total_tokens": 5},
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]},
                 {"object": "embedding", "index": 1, "embedding": [0.25]}]}


def test_service_account_info_accepts_object_or_text_and_hides_the_key():
    key = {"type": "service_account", "client_email": "a@b", "private_key": "-----SECRET-----", "token_uri": "https://t"}
    assert service_account_info(key) == service_account_info('{"type": "service_account", "client_email": "a@b", '
                                                             '"private_key": "-----SECRET-----", "token_uri": "https://t"}')
    with pytest.raises(ValueError) as caught:
        service_account_info({**key, "type": "authorized_user"})
    assert "SECRET" not in str(caught.value)
