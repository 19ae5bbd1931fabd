"""Guardrails end to end: the official OpenAI, Anthropic and Google SDKs against the real server, fake
upstreams behind it, on the unified and the native (passthrough) routes.

The provider fakes echo the last user message (`echo: <text>`, streamed word by word), so an after-stage
guardrail sees whatever the test puts in the user message; the judge fake answers the gateway's judge
prompts.
"""
from __future__ import annotations

import json
import sqlite3
import time

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.harness import make_gateway
from tests.fakes.base import Behaviour
from tests.fakes.judge import FakeJudge

EMAIL = "jane.doe@example.org"
JUDGE = {"endpoint": "judge", "instruction": "The text must be polite."}


@pytest.fixture(scope="module")
def fake_judge():
    server = FakeJudge().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset_judge(fake_judge):
    fake_judge.reset()


def guardrail(name: str, kind: str, stage: str = "before", action: str = "block", **extra) -> dict:
    return {"name": name, "kind": kind, "stage": stage, "action": action, **extra}


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini, fake_judge):
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["secrets"].append({"name": "judge-key", "provider": "openai", "values": {"api_key": "sk-judge-0123456789"},
                              "auth_config": {"api_base": f"{fake_judge.url}/v1"}})
    config["models"].append({"name": "judge-gpt", "provider": "openai", "model_name": "judge-model",
                             "secret": "judge-key", "input_cost_per_million": 1, "output_cost_per_million": 2})
    config["guardrails"] = [
        # The example, verbatim.
        {"name": "redact-pii", "kind": "pii", "stage": "before", "action": "sanitize"},
        {"name": "banned-words", "kind": "keywords", "stage": "after", "action": "block",
         "settings": {"words": ["forbidden-term", "secret plan"]}},
        guardrail("block-pii", "pii"),
        guardrail("redact-words", "keywords", "after", "sanitize",
                  settings={"words": ["forbidden-term", "secret plan"]}),
        guardrail("after-pii", "pii", "after", "sanitize"),
        guardrail("size", "max_tokens", settings={"max_chars": 200}),
        guardrail("polite", "llm_judge", settings=JUDGE),
        guardrail("polite-rewrite", "llm_judge", action="sanitize", settings=JUDGE),
        guardrail("polite-after", "llm_judge", "after", settings=JUDGE),
        guardrail("judge-missing", "llm_judge", settings={**JUDGE, "endpoint": "no-such-endpoint"}),
        guardrail("judge-missing-open", "llm_judge", fail_mode="open", settings={**JUDGE, "endpoint": "gone"}),
        # On the judge endpoint itself: it would block every judge prompt if internal calls ran it.
        guardrail("no-instructions", "keywords", settings={"words": ["instruction"]}),
    ]
    config["endpoints"] = [
        endpoint("judge", "judge-gpt", guardrails=["no-instructions"]),
        endpoint("guarded", "gpt", guardrails=["redact-pii", "banned-words"]),
        endpoint("pii-block", "gpt", guardrails=["block-pii"]),
        endpoint("after-sanitize", "gpt", guardrails=["redact-words", "after-pii"]),
        endpoint("sized", "gpt", guardrails=["size"]),
        endpoint("judged", "gpt", guardrails=["polite"]),
        endpoint("judged-rewrite", "gpt", guardrails=["polite-rewrite"]),
        endpoint("judged-after", "gpt", guardrails=["polite-after"]),
        endpoint("judge-missing", "gpt", guardrails=["judge-missing"]),
        endpoint("judge-missing-open", "gpt", guardrails=["judge-missing-open"]),
        endpoint("embed-guarded", "embedder", guardrails=["redact-pii"]),
        endpoint("plain", "gpt"),
        endpoint("claude-guarded", "claude", guardrails=["redact-pii", "banned-words"]),
        endpoint("claude-redact", "claude", guardrails=["redact-words", "after-pii"]),
        endpoint("gemini-guarded", "gemini-flash", guardrails=["redact-pii", "banned-words"]),
        endpoint("gemini-redact", "gemini-flash", guardrails=["redact-words", "after-pii"]),
    ]
    server = make_gateway(e2e_root, "guardrails", config)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"],
                         max_retries=0, timeout=20)


def ask(client: openai.OpenAI, model: str, text: str) -> str:
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content


def stream_text(client: openai.OpenAI, model: str, text: str) -> str:
    chunks = client.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": text}])
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def raw_stream_events(gateway, model: str, text: str) -> list[str]:
    with httpx.stream("POST", f"{gateway.url}/gateway/mlflow/v1/chat/completions",
                      headers={"Authorization": f"Bearer {gateway.keys['default']}"},
                      json={"model": model, "stream": True,
                            "messages": [{"role": "user", "content": text}]}) as response:
        assert response.status_code == 200
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def usage_rows(gateway, where: str, *args, expect=lambda rows: bool(rows)) -> list[tuple]:
    """Usage rows matching `where`, once the server's writer has flushed them (or after 5 s)."""
    db = gateway.env["DATABASE_URL"].removeprefix("sqlite:///")
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("select endpoint_name, route, status_code, input_tokens, guardrails, error_type "
                                f"from gateway_usagerecord where {where} order by id", args).fetchall()
        if expect(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


# -- before the model call ---------------------------------------------------------------------

def test_block_names_the_guardrail_never_the_pii_and_nothing_goes_upstream(client, fake_openai):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "pii-block", f"my address is {EMAIL}")
    message = caught.value.body["message"]
    assert message == "Guardrail 'block-pii' blocked the request: found an e-mail address."
    assert EMAIL not in str(caught.value) and caught.value.body["type"] == "guardrail_blocked"
    assert fake_openai.requests == []


@pytest.mark.parametrize("header", ["X-MLflow-Guardrail-Bypass", "X-Gateway-Internal", "X-Guardrail-Bypass"])
def test_no_client_header_skips_guardrails(gateway, fake_openai, header):
    response = httpx.post(f"{gateway.url}/gateway/mlflow/v1/chat/completions",
                          headers={"Authorization": f"Bearer {gateway.keys['default']}", header: "1"},
                          json={"model": "pii-block", "messages": [{"role": "user", "content": EMAIL}]})
    assert response.status_code == 400 and fake_openai.requests == []


def test_sanitize_sends_placeholders_upstream(client, fake_openai):
    answer = ask(client, "guarded", f"mail {EMAIL} or call +44 20 7946 0958")
    sent = fake_openai.requests[-1].json["messages"][-1]["content"]
    assert sent == "mail [EMAIL] or call [PHONE]" and EMAIL not in json.dumps(fake_openai.requests[-1].json)
    assert answer == "echo: mail [EMAIL] or call [PHONE]"


def test_embeddings_inputs_are_sanitized(client, fake_openai):
    client.embeddings.create(model="embed-guarded", input=["plain", f"who is {EMAIL}?"])
    assert fake_openai.requests[-1].json["input"] == ["plain", "who is [EMAIL]?"]


def test_size_limit_refuses_long_prompts(client):
    assert ask(client, "sized", "short") == "echo: short"
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "sized", "x" * 201)
    assert "Guardrail 'size' blocked the request: the text is 201 characters" in caught.value.body["message"]


# -- after the model call ----------------------------------------------------------------------

def test_after_block_withholds_the_providers_answer(client, fake_openai):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "guarded", "please say forbidden-term")
    assert caught.value.body["message"] == "Guardrail 'banned-words' blocked the response: found a blocked keyword."
    assert len(fake_openai.requests) == 1  # the provider did answer; the client never sees it


def test_after_sanitize_rewrites_the_answer(client):
    assert ask(client, "after-sanitize", f"the secret plan is forbidden-term, mail {EMAIL}") == \
        "echo: the [REDACTED] is [REDACTED], mail [EMAIL]"


def test_streamed_answer_is_redacted_in_flight_even_across_chunks(client):
    # The fake streams word by word: "secret" and "plan" arrive in different chunks.
    text = stream_text(client, "after-sanitize", f"our secret plan: write {EMAIL} forbidden-term")
    assert text == "echo: our [REDACTED]: write [EMAIL] [REDACTED]"


def test_streamed_block_ends_with_an_error_event_and_no_done(gateway):
    events = raw_stream_events(gateway, "guarded", "reveal the secret plan now please")
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error == {"message": "Guardrail 'banned-words' blocked the response: found a blocked keyword.",
                     "type": "guardrail_blocked", "param": None, "code": None}
    streamed = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert "secret" not in streamed and streamed.startswith("echo: reveal")


def test_streamed_block_raises_in_the_sdk(client):
    with pytest.raises(openai.APIError):
        stream_text(client, "guarded", "say forbidden-term")


def test_clean_streams_pass_through_whole(client):
    assert stream_text(client, "guarded", "nothing to see here") == "echo: nothing to see here"


# -- llm_judge ---------------------------------------------------------------------------------

def test_judge_passes_polite_requests_and_blocks_rude_ones(client, fake_judge):
    assert ask(client, "judged", "hello there") == "echo: hello there"
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "judged", "answer me, you idiot")
    assert caught.value.body["message"] == "Guardrail 'polite' blocked the request: it contains an insult."
    assert len(fake_judge.requests) == 2


def test_judge_call_is_usage_of_the_judge_endpoint(gateway, client):
    ask(client, "judged", "count this judge call")
    rows = usage_rows(gateway, "endpoint_name = 'judge'")
    assert rows and all(r[1] == "guardrail/judge" and r[2] == 200 and r[3] == 11 for r in rows)
    assert all(json.loads(r[4]) == [] for r in rows)  # the judge endpoint's own guardrail was skipped


def test_judge_sanitize_sends_the_rewrite_upstream(client, fake_openai):
    assert ask(client, "judged-rewrite", "you stupid machine") == "echo: you ****** machine"
    assert fake_openai.requests[-1].json["messages"][-1]["content"] == "you ****** machine"


def test_judge_after_stream_errors_before_the_terminator(gateway, client):
    events = raw_stream_events(gateway, "judged-after", "call me an idiot")
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["message"] == \
        "Guardrail 'polite-after' blocked the response: it contains an insult."
    assert stream_text(client, "judged-after", "be nice") == "echo: be nice"


def test_judge_after_non_streaming_blocks(client):
    with pytest.raises(openai.BadRequestError):
        ask(client, "judged-after", "such an idiot")


# -- fail modes --------------------------------------------------------------------------------

def test_failing_judge_fails_closed_with_503(client, fake_judge, fake_openai):
    fake_judge.behave("judge-model", Behaviour(status=500))  # every attempt, retries included
    with pytest.raises(openai.InternalServerError) as caught:
        ask(client, "judged", "hello")
    assert caught.value.status_code == 503
    assert caught.value.body["message"] == "Guardrail 'polite' could not run, so the request was refused."
    assert fake_openai.requests == []


def test_misconfigured_judge_fails_closed_or_open(client):
    with pytest.raises(openai.InternalServerError) as caught:
        ask(client, "judge-missing", "hello")
    assert caught.value.status_code == 503
    assert ask(client, "judge-missing-open", "hello") == "echo: hello"


# -- accounting --------------------------------------------------------------------------------

def test_guardrail_results_are_in_the_usage_record(gateway, client):
    raw = client.chat.completions.with_raw_response.create(
        model="guarded", messages=[{"role": "user", "content": f"usage record {EMAIL}"}])
    rows = usage_rows(gateway, "request_id = ?", raw.headers["x-request-id"])
    results = json.loads(rows[0][4])
    assert [(r["name"], r["stage"], r["passed"], r["action"]) for r in results] == [
        ("redact-pii", "before", False, "sanitize"), ("banned-words", "after", True, "none")]
    assert all(r["latency_ms"] >= 0 for r in results)
    blocked = usage_rows(gateway, "error_type = 'guardrail_blocked'")
    assert any(json.loads(r[4])[-1]["action"] == "block" for r in blocked)


def test_endpoints_without_guardrails_record_none(gateway, client):
    ask(client, "plain", "no guardrails here")
    rows = usage_rows(gateway, "endpoint_name = 'plain'")
    assert rows and json.loads(rows[-1][4]) == []


# -- native routes -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def native_openai(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["default"],
                         max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def claude(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"],
                               max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def gem(gateway) -> genai.Client:
    return genai.Client(api_key=gateway.keys["default"], http_options=genai_types.HttpOptions(
        base_url=f"{gateway.url}/gateway/gemini", api_version="v1beta", retry_options=None))


def claude_ask(claude: anthropic.Anthropic, model: str, text: str) -> str:
    message = claude.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": text}])
    return message.content[0].text


def test_anthropic_sanitize_and_after_block(claude, fake_anthropic):
    assert claude_ask(claude, "claude-guarded", f"reach {EMAIL}") == "echo: reach [EMAIL]"
    assert fake_anthropic.requests[-1].json["messages"][-1]["content"] == "reach [EMAIL]"
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude_ask(claude, "claude-guarded", "say forbidden-term")
    assert caught.value.body["error"]["message"] == \
        "Guardrail 'banned-words' blocked the response: found a blocked keyword."


def test_anthropic_stream_is_redacted_in_flight(claude):
    with claude.messages.stream(model="claude-redact", max_tokens=100, messages=[
            {"role": "user", "content": f"our secret plan: write {EMAIL}"}]) as stream:
        assert stream.get_final_text() == "echo: our [REDACTED]: write [EMAIL]"


def test_anthropic_stream_block_raises_in_the_sdk(claude):
    with pytest.raises(anthropic.APIError) as caught:
        with claude.messages.stream(model="claude-guarded", max_tokens=100, messages=[
                {"role": "user", "content": "the secret plan"}]) as stream:
            stream.get_final_text()
    assert "banned-words" in str(caught.value)


def test_gemini_sanitize_block_and_stream(gem, fake_gemini):
    answer = gem.models.generate_content(model="gemini-guarded", contents=f"reach {EMAIL}")
    assert answer.text == "echo: reach [EMAIL]"
    assert EMAIL not in json.dumps(fake_gemini.requests[-1].json)
    with pytest.raises(genai_errors.ClientError) as caught:
        gem.models.generate_content(model="gemini-guarded", contents="say forbidden-term")
    assert caught.value.code == 400 and "banned-words" in caught.value.message
    chunks = gem.models.generate_content_stream(model="gemini-redact", contents=f"the secret plan for {EMAIL}")
    assert "".join(c.text or "" for c in chunks) == "echo: the [REDACTED] for [EMAIL]"


def test_openai_native_chat_stream_and_responses(native_openai, fake_openai):
    chunks = native_openai.chat.completions.create(model="after-sanitize", stream=True, messages=[
        {"role": "user", "content": f"the secret plan for {EMAIL}"}])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "echo: the [REDACTED] for [EMAIL]"
    response = native_openai.responses.create(model="guarded", input=f"mail {EMAIL}")
    assert response.output_text == "echo: mail [EMAIL]"
    assert fake_openai.requests[-1].json["input"] == "mail [EMAIL]"
    with native_openai.responses.stream(model="after-sanitize", input=f"the secret plan for {EMAIL}") as stream:
        final = stream.get_final_response()
    assert final.output_text == "echo: the [REDACTED] for [EMAIL]"
    with pytest.raises(openai.BadRequestError):
        native_openai.responses.create(model="guarded", input="forbidden-term")


def test_every_other_native_route_is_guarded_too(gateway, native_openai, claude, fake_openai, fake_anthropic):
    with pytest.raises(openai.BadRequestError, match="block-pii"):
        native_openai.chat.completions.create(model="pii-block", messages=[{"role": "user", "content": EMAIL}])
    native_openai.embeddings.create(model="embed-guarded", input=[f"who is {EMAIL}?"])
    assert fake_openai.requests[-1].json["input"] == ["who is [EMAIL]?"]
    claude.messages.count_tokens(model="claude-guarded", messages=[{"role": "user", "content": f"count {EMAIL}"}])
    assert fake_anthropic.requests[-1].json["messages"][-1]["content"] == "count [EMAIL]"
    invocations = httpx.post(f"{gateway.url}/gateway/pii-block/mlflow/invocations",
                             headers={"Authorization": f"Bearer {gateway.keys['default']}"},
                             json={"messages": [{"role": "user", "content": EMAIL}]})
    assert invocations.status_code == 400 and EMAIL not in invocations.text
    assert len(fake_openai.requests) == 1  # only the sanitized embeddings call went upstream
