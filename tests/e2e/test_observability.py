"""What an operator sees of each call, through the real server and the official SDK: request ids, JSON log
lines, traces exported to a real OTLP/HTTP receiver, Prometheus metrics, and HTTP Basic keys."""
from __future__ import annotations

import base64
import json
import secrets

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import provider_config
from tests.e2e.db import wait_rows
from tests.e2e.harness import free_port, make_gateway
from tests.fakes.otlp import FakeOTLP

SERVER, CLIENT = 2, 3  # OTLP span kinds


def model(name: str) -> dict:
    return {"name": name, "provider": "openai", "model_name": name, "secret": "openai-key",
            "input_cost_per_million": 1, "output_cost_per_million": 2}


@pytest.fixture(scope="module")
def otlp():
    server = FakeOTLP().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def config(fake_openai, fake_anthropic, fake_gemini) -> dict:
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["models"] += [model("o-primary"), model("o-backup")]
    config["guardrails"] = [{"name": "no-classified", "kind": "keywords", "stage": "before", "action": "block",
                             "settings": {"words": ["classified"]}},
                            {"name": "redact-pii", "kind": "pii", "stage": "before", "action": "sanitize"}]
    config["endpoints"] = [
        {"name": "traced", "models": [{"model": "o-primary"}]},
        {"name": "traced-fallback", "retries": 0,
         "models": [{"model": "o-primary"}, {"model": "o-backup", "linkage": "fallback", "order": 1}]},
        {"name": "traced-guarded", "models": [{"model": "o-primary"}], "guardrails": ["no-classified"]},
        {"name": "traced-claude", "models": [{"model": "claude"}]},
        {"name": "logged", "log_payloads": True, "models": [{"model": "o-primary"}], "guardrails": ["redact-pii"]},
        {"name": "logged-claude", "log_payloads": True, "models": [{"model": "claude"}]},
    ]
    return config


@pytest.fixture(scope="module")
def gateway(e2e_root, config, otlp):
    server = make_gateway(e2e_root, "observability", config, env={
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp.url}/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-mlflow-experiment-id=7",
        "OTEL_SERVICE_NAME": "gateway-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "GATEWAY_LOG_FORMAT": "json", "GATEWAY_LOG_LEVEL": "INFO",
        "GATEWAY_METRICS_TOKEN": "metrics-token-0123",
        "GATEWAY_REQUEST_LOG_MAX_BYTES": "4000",
    })
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_spans(otlp):
    otlp.reset()


@pytest.fixture(scope="module")
def sdk(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"],
                         max_retries=0, timeout=20)


def chat(sdk: openai.OpenAI, endpoint: str, text: str = "hello", **extra):
    return sdk.chat.completions.with_raw_response.create(
        model=endpoint, messages=[{"role": "user", "content": text}], **extra)


def server_span(otlp: FakeOTLP, request_id: str):
    return otlp.wait_for(lambda s: s.kind == SERVER and s.attributes.get("gateway.request_id") == request_id)[0]


# -- request ids ---------------------------------------------------------------------------------------
def test_a_clients_request_id_is_echoed_and_recorded(gateway, sdk):
    raw = sdk.chat.completions.with_raw_response.create(
        model="traced", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Request-Id": "job-42:a.b_c"})
    assert raw.headers["x-request-id"] == "job-42:a.b_c"
    assert wait_rows(gateway, "SELECT endpoint_name, status_code FROM gateway_usagerecord WHERE request_id = ?",
                     "job-42:a.b_c") == [("traced", 200)]


@pytest.mark.parametrize("sent", ["has space", "x" * 65, "semi;colon", ""])
def test_an_unsafe_request_id_is_replaced_by_a_generated_one(gateway, sent):
    response = httpx.post(f"{gateway.url}/gateway/mlflow/v1/chat/completions", headers={
        "X-Request-Id": sent, "Authorization": f"Bearer {gateway.keys['default']}"},
        json={"model": "traced", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    assert response.headers["x-request-id"] not in ("", sent)


def test_error_answers_carry_the_request_id_too(gateway):
    unauthenticated = httpx.post(f"{gateway.url}/gateway/mlflow/v1/chat/completions", headers={"X-Request-Id": "r-401"},
                                 json={"model": "traced", "messages": []})
    unknown_route = httpx.get(f"{gateway.url}/gateway/nowhere", headers={"X-Request-Id": "r-404"})
    assert (unauthenticated.status_code, unauthenticated.headers["x-request-id"]) == (401, "r-401")
    assert (unknown_route.status_code, unknown_route.headers["x-request-id"]) == (404, "r-404")


def test_json_log_lines_name_the_request(gateway, sdk):
    chat(sdk, "traced", extra_headers={"X-Request-Id": "logged-1"})
    wait_rows(gateway, "SELECT 1 FROM gateway_usagerecord WHERE request_id = ?", "logged-1")
    lines = [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "logged-1"]
    assert len(mine) == 1
    assert mine[0]["endpoint"] == "traced" and mine[0]["model"] == "o-primary" and mine[0]["status"] == 200
    assert mine[0]["duration_ms"] > 0 and mine[0]["overhead_ms"] >= 0


# -- traces ------------------------------------------------------------------------------------------
def test_a_chat_request_is_one_server_span_with_an_attempt_child(gateway, sdk, otlp, fake_openai):
    raw = chat(sdk, "traced", max_tokens=50, temperature=0.2)
    request_id = raw.headers["x-request-id"]
    span = server_span(otlp, request_id)
    assert span.name == "chat traced"
    assert span.resource["service.name"] == "gateway-under-test"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.provider.name"] == "openai"
    assert (attrs["gen_ai.request.model"], attrs["gen_ai.response.model"]) == ("traced", "o-primary")
    assert attrs["gen_ai.usage.input_tokens"] == raw.parse().usage.prompt_tokens > 0
    assert attrs["gen_ai.usage.output_tokens"] == raw.parse().usage.completion_tokens > 0
    assert (attrs["gen_ai.request.max_tokens"], attrs["gen_ai.request.temperature"]) == (50, 0.2)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gateway.key_name"] == "default" and attrs["gateway.cost_usd"] > 0
    assert gateway.keys["default"] not in json.dumps([s.attributes for s in otlp.spans])
    attempts = otlp.wait_for(lambda s: s.parent_id == span.span_id and s.kind == CLIENT)
    assert [(a.name, a.attributes["gateway.attempt"]) for a in attempts] == [("chat o-primary", 1)]
    # The provider was told its parent is the attempt span.
    sent = fake_openai.requests_for("o-primary")[-1].headers["traceparent"]
    assert sent.split("-")[1:3] == [span.trace_id, attempts[0].span_id]


def test_a_stream_span_ends_with_the_stream_and_records_time_to_first_token(gateway, sdk, otlp):
    raw = sdk.chat.completions.with_raw_response.create(model="traced", stream=True,
                                                        messages=[{"role": "user", "content": "stream it"}])
    request_id = raw.headers["x-request-id"]
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "echo: stream it"
    attrs = server_span(otlp, request_id).attributes
    assert attrs["gateway.streaming"] is True and attrs["gateway.time_to_first_token_ms"] > 0
    assert attrs["gen_ai.usage.output_tokens"] > 0


def test_a_failed_attempt_and_its_fallback_are_both_spans(gateway, sdk, otlp, fake_openai):
    fake_openai.fail("o-primary", 500)
    raw = chat(sdk, "traced-fallback")
    span = server_span(otlp, raw.headers["x-request-id"])
    assert span.attributes["gateway.attempts"] == 2 and span.attributes["gateway.fallback_reason"] == "500"
    attempts = sorted(otlp.wait_for(lambda s: s.parent_id == span.span_id and len(otlp.trace(s.trace_id)) >= 3),
                      key=lambda s: s.attributes["gateway.attempt"])
    assert [a.attributes["gateway.model"] for a in attempts] == ["o-primary", "o-backup"]
    assert attempts[0].attributes["error.type"] and attempts[0].status_code == 2  # STATUS_CODE_ERROR
    assert "error.type" not in attempts[1].attributes


def test_a_blocked_request_has_its_guardrail_span_and_no_attempt(gateway, sdk, otlp, fake_openai):
    with pytest.raises(openai.BadRequestError) as refused:
        chat(sdk, "traced-guarded", "this is classified")
    request_id = refused.value.response.headers["x-request-id"]
    span = server_span(otlp, request_id)
    assert span.attributes["error.type"] and span.attributes["gateway.guardrails"] == ["no-classified:block"]
    children = otlp.wait_for(lambda s: s.parent_id == span.span_id)
    assert [(c.name, c.attributes["gateway.guardrail.action"]) for c in children] == [("guardrail no-classified", "block")]
    assert not fake_openai.requests_for("o-primary")


def test_a_clients_traceparent_is_continued(gateway, sdk, otlp):
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    raw = chat(sdk, "traced", extra_headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    span = server_span(otlp, raw.headers["x-request-id"])
    assert (span.trace_id, span.parent_id) == (trace_id, parent)


def test_native_anthropic_requests_name_their_provider(gateway, otlp):
    import anthropic

    client = anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"],
                                 max_retries=0)
    raw = client.messages.with_raw_response.create(model="traced-claude", max_tokens=20,
                                                   messages=[{"role": "user", "content": "hi"}])
    attrs = server_span(otlp, raw.headers["x-request-id"]).attributes
    assert (attrs["gen_ai.provider.name"], attrs["gen_ai.response.model"]) == ("anthropic", "claude-haiku-4-5")
    assert attrs["gen_ai.request.max_tokens"] == 20 and attrs["gen_ai.usage.input_tokens"] > 0


def test_a_collector_that_is_down_fails_no_request(e2e_root, config):
    server = make_gateway(e2e_root, "observability-no-collector", config, env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}", "OTEL_BSP_SCHEDULE_DELAY": "10",
        "OTEL_BSP_MAX_QUEUE_SIZE": "8", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4", "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    try:
        for _ in range(30):  # more spans than the queue holds, while every export is refused
            response = httpx.post(f"{server.url}/gateway/mlflow/v1/chat/completions",
                                  headers={"Authorization": f"Bearer {server.keys['default']}"},
                                  json={"model": "traced", "messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 200
    finally:
        server.stop()


# -- request logs ------------------------------------------------------------------------------------
EMAIL = "jane.doe@example.com"
LOG_SQL = ("SELECT endpoint_name, api_key_name, status_code, streaming, request_body, response_body, truncated, "
           "attempts, guardrails FROM gateway_requestlog WHERE request_id = ?")


def test_request_logs_keep_the_sanitized_request_and_the_answer(gateway, sdk, otlp):
    raw = chat(sdk, "logged", f"mail {EMAIL} please")
    request_id = raw.headers["x-request-id"]
    [(endpoint, key, status, streaming, request, response, truncated, attempts, guardrails)] = wait_rows(
        gateway, LOG_SQL, request_id)
    assert (endpoint, key, status, streaming, truncated) == ("logged", "default", 200, 0, 0)
    assert json.loads(request)["messages"] == [{"role": "user", "content": "mail [EMAIL] please"}]
    assert json.loads(response)["choices"][0]["message"]["content"] == "echo: mail [EMAIL] please"
    assert json.loads(attempts)[0]["model"] == "o-primary"
    assert json.loads(guardrails)[0]["action"] == "sanitize"
    assert EMAIL not in request + response and gateway.keys["default"] not in request + response
    attrs = server_span(otlp, request_id).attributes
    assert json.loads(attrs["gen_ai.input.messages"]) == [{"role": "user", "content": "mail [EMAIL] please"}]
    assert json.loads(attrs["gen_ai.output.messages"])[0]["content"] == "echo: mail [EMAIL] please"


def test_a_streamed_answer_is_logged_as_the_final_message(gateway, sdk):
    raw = sdk.chat.completions.with_raw_response.create(model="logged", stream=True,
                                                        messages=[{"role": "user", "content": "stream to the log"}])
    list(raw.parse())
    [row] = wait_rows(gateway, LOG_SQL, raw.headers["x-request-id"])
    answer = json.loads(row[5])
    assert row[3] == 1
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "echo: stream to the log"}
    assert answer["choices"][0]["finish_reason"] == "stop"


def test_a_long_request_is_cut_at_the_cap_and_marked(gateway, sdk):
    raw = chat(sdk, "logged", "word " * 2000)
    [row] = wait_rows(gateway, LOG_SQL, raw.headers["x-request-id"])
    assert row[6] == 1 and len(row[4].encode()) <= 4000


def test_endpoints_without_log_payloads_keep_no_request_log(gateway, sdk, otlp):
    raw = chat(sdk, "traced", "not for the log")
    request_id = raw.headers["x-request-id"]
    assert "gen_ai.input.messages" not in server_span(otlp, request_id).attributes
    wait_rows(gateway, "SELECT 1 FROM gateway_usagerecord WHERE request_id = ?", request_id)
    assert wait_rows(gateway, LOG_SQL, request_id, timeout=1.0) == []


def test_native_streams_are_logged_as_relayed(gateway):
    import anthropic

    client = anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"],
                                 max_retries=0)
    with client.messages.stream(model="logged-claude", max_tokens=20,
                                messages=[{"role": "user", "content": "native stream"}]) as stream:
        text = "".join(stream.text_stream)
        request_id = stream.response.headers["x-request-id"]
    [row] = wait_rows(gateway, LOG_SQL, request_id)
    assert "message_stop" in row[5] and json.loads(row[4])["max_tokens"] == 20
    assert text.startswith("echo")


# -- metrics -----------------------------------------------------------------------------------------
def scrape(gateway, token: str | None = "metrics-token-0123") -> dict[tuple, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{gateway.url}/metrics", headers=headers)
    assert response.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def test_metrics_need_the_token_when_one_is_set(gateway):
    assert httpx.get(f"{gateway.url}/metrics").status_code == 401
    assert httpx.get(f"{gateway.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_metrics_move_as_requests_are_served(gateway, sdk, fake_openai):
    before = scrape(gateway)
    chat(sdk, "traced")
    fake_openai.fail("o-primary", 500)
    chat(sdk, "traced-fallback")
    with pytest.raises(openai.BadRequestError):
        chat(sdk, "traced-guarded", "classified")
    with pytest.raises(openai.NotFoundError):
        chat(sdk, "no-such-endpoint-" + secrets.token_hex(4))
    after = scrape(gateway)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("gateway_requests_total", endpoint="traced", model="o-primary", status_code="200") == 1
    assert moved("gateway_requests_total", endpoint="traced-fallback", model="o-backup", provider="openai",
                 route="unified/chat", status_code="200") == 1
    assert moved("gateway_requests_total", endpoint="traced-guarded", status_code="400") == 1
    assert moved("gateway_requests_total", endpoint="", status_code="404") == 1  # never the client's string
    assert moved("gateway_upstream_attempts_total", provider="openai", outcome="server_error") == 1
    assert moved("gateway_upstream_attempts_total", provider="openai", outcome="success") == 2
    assert moved("gateway_guardrail_results_total", guardrail="no-classified", outcome="blocked") == 1
    assert moved("gateway_tokens_total", endpoint="traced", kind="input") > 0
    assert moved("gateway_cost_usd_total", endpoint="traced") > 0
    assert moved("gateway_request_duration_seconds_count", endpoint="traced") == 1
    assert moved("gateway_overhead_seconds_count", endpoint="traced") == 1
    assert value(after, "gateway_inflight_requests") == 0
    assert not [key for key in after if "no-such-endpoint" in str(key)]


# -- HTTP Basic (MLflow's clients) -------------------------------------------------------------------
def test_basic_auth_with_the_key_as_password_is_accepted(gateway):
    credentials = base64.b64encode(f"mlflow-user:{gateway.keys['default']}".encode()).decode()
    response = httpx.post(f"{gateway.url}/gateway/mlflow/v1/chat/completions",
                          headers={"Authorization": f"Basic {credentials}"},
                          json={"model": "traced", "messages": [{"role": "user", "content": "judge this"}]})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "echo: judge this"
    wrong = base64.b64encode(b"mlflow-user:not-a-key").decode()
    refused = httpx.post(f"{gateway.url}/gateway/mlflow/v1/chat/completions", headers={"Authorization": f"Basic {wrong}"},
                         json={"model": "traced", "messages": [{"role": "user", "content": "x"}]})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


def test_metrics_add_up_across_worker_processes(e2e_root, config, tmp_path):
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    server = make_gateway(e2e_root, "observability-workers", config,
                          env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc)}, start=False).start(workers=2)
    try:
        served = 40
        with httpx.Client(base_url=f"{server.url}/gateway/mlflow/v1",
                          headers={"Authorization": f"Bearer {server.keys['default']}"}) as http:
            pids = set()
            for _ in range(served):
                # A new connection each time, so both workers take requests.
                response = httpx.post(f"{server.url}/gateway/mlflow/v1/chat/completions", headers=http.headers,
                                      json={"model": "traced", "messages": [{"role": "user", "content": "hi"}]})
                assert response.status_code == 200
                pids.add(response.headers["x-request-id"].split("-")[0])
        assert len(pids) == 2  # each worker's ids start with its own random prefix
        for _ in range(4):  # whichever worker answers the scrape reports both workers' requests
            samples = scrape(server, token=None)
            assert value(samples, "gateway_requests_total", endpoint="traced", status_code="200") == served
    finally:
        server.stop()
