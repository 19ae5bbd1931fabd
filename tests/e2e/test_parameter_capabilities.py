"""OpenAI parameters that providers take differently (providers/capabilities.py), through the real gateway with
the official OpenAI SDK, plain and streamed: what each fake upstream received when a parameter is mapped, and
the 400 naming a parameter the provider cannot honour (sent nowhere)."""
from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import endpoint
from tests.e2e.harness import make_gateway
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.mistral import FakeMistral

HI = [{"role": "user", "content": "hello there"}]
BEDROCK_CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture(scope="module")
def fake_bedrock():
    with FakeBedrock() as server:
        yield server


@pytest.fixture(scope="module")
def fake_mistral():
    with FakeMistral() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_mistral, fake_anthropic, fake_gemini, fake_bedrock):
    config = {
        "secrets": [
            {"name": "mistral", "provider": "mistral", "values": {"api_key": "mistral-upstream-0123456789"},
             "auth_config": {"api_base": f"{fake_mistral.url}/v1"}},
            {"name": "anthropic", "provider": "anthropic", "values": {"api_key": "sk-ant-upstream-0123456789"},
             "auth_config": {"api_base": f"{fake_anthropic.url}/v1"}},
            {"name": "gemini", "provider": "gemini", "values": {"api_key": "AIza-upstream-0123456789"},
             "auth_config": {"api_base": f"{fake_gemini.url}/v1beta"}},
            {"name": "bedrock", "provider": "bedrock", "values": {"api_key": "bedrock-0123456789"},
             "auth_config": {"api_base": fake_bedrock.url}},
        ],
        "models": [
            {"name": "mistral-small", "provider": "mistral", "model_name": "mistral-small-latest", "secret": "mistral"},
            {"name": "claude", "provider": "anthropic", "model_name": "claude-haiku-4-5", "secret": "anthropic"},
            {"name": "gemini-2", "provider": "gemini", "model_name": "gemini-2.5-flash", "secret": "gemini"},
            {"name": "gemini-3", "provider": "gemini", "model_name": "gemini-3-pro-preview", "secret": "gemini"},
            {"name": "bedrock-claude", "provider": "bedrock", "model_name": BEDROCK_CLAUDE, "secret": "bedrock"},
            {"name": "nova", "provider": "bedrock", "model_name": "amazon.nova-lite-v1:0", "secret": "bedrock"},
        ],
        "endpoints": [endpoint(name, name) for name in ("mistral-small", "claude", "gemini-2", "gemini-3",
                                                         "bedrock-claude", "nova")]
        + [{"name": "claude-then-mistral", "models": [{"model": "claude"},
                                                      {"model": "mistral-small", "linkage": "fallback", "order": 1}]}],
    }
    server = make_gateway(e2e_root, "capabilities", config)
    yield server
    server.stop()


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"], max_retries=0,
                         timeout=20)


@pytest.fixture(autouse=True)
def _reset_module_fakes(fake_bedrock, fake_mistral):
    fake_bedrock.reset()
    fake_mistral.reset()


def ask(client: openai.OpenAI, stream: bool, messages_: list | None = None, **fields) -> str:
    """The answer's text, read whole or reassembled from the stream."""
    answer = client.chat.completions.create(messages=messages_ or HI, stream=stream, **fields)
    if not stream:
        return answer.choices[0].message.content
    return "".join(chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices)


@pytest.mark.parametrize("stream", [False, True])
def test_mistral_receives_only_fields_its_api_declares(client, fake_mistral, stream):
    """Mistral answers 422 extra_forbidden to fields it does not declare (mistralai 3.7.0
    `ChatCompletionRequest`): its own names are used, bookkeeping is left out."""
    text = ask(client, stream, model="mistral-small", max_completion_tokens=20, seed=3, user="u-1", store=False,
               metadata={"team": "search"}, logprobs=True, top_logprobs=2,
               service_tier="default", prompt_cache_key="k-1", safety_identifier="h-1",
               stream_options={"include_usage": True} if stream else openai.NOT_GIVEN)
    assert text == "echo: hello there"
    expected = {"model": "mistral-small-latest", "messages": HI, "max_tokens": 20, "random_seed": 3,
                "metadata": {"team": "search"}, "logprobs": True, "top_logprobs": 2,
                "service_tier": "standard_only", "prompt_cache_key": "k-1"}
    assert fake_mistral.requests[-1].json == ({**expected, "stream": True} if stream else expected)


REFUSED = [
    ("mistral-small", "logit_bias", {"50256": -100}),
    ("mistral-small", "modalities", ["text", "audio"]),
    ("mistral-small", "verbosity", "low"),
    ("mistral-small", "reasoning_effort", "extreme"),
    ("claude", "prediction", {"type": "content", "content": "hello"}),
    ("claude", "logprobs", True),
    ("gemini-2", "logit_bias", {"1": 5}),
    ("gemini-2", "parallel_tool_calls", False),
    ("nova", "reasoning_effort", "high"),
    ("bedrock-claude", "seed", 7),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model, field, value", REFUSED)
def test_a_parameter_without_an_equivalent_is_a_400_naming_it_and_reaches_no_provider(
        client, fake_mistral, fake_anthropic, fake_gemini, fake_bedrock, model, field, value, stream):
    fakes = (fake_mistral, fake_anthropic, fake_gemini, fake_bedrock)
    before = [len(fake.requests) for fake in fakes]
    with pytest.raises(openai.BadRequestError) as refused:
        ask(client, stream, model=model, extra_body={field: value})
    assert refused.value.status_code == 400
    assert refused.value.body["message"].startswith(f"{field}: ")
    assert [len(fake.requests) for fake in fakes] == before


def test_a_field_mistral_does_not_declare_is_refused_by_name_not_422(client, fake_mistral):
    before = len(fake_mistral.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        ask(client, False, model="mistral-small", extra_body={"web_search_options": {}, "reasoning": {"effort": "low"}})
    assert refused.value.body["message"].startswith("web_search_options: ")
    with pytest.raises(openai.BadRequestError) as refused:
        ask(client, True, model="mistral-small", extra_body={"reasoning": {"effort": "low"}})
    assert refused.value.body["message"].startswith("reasoning: Mistral models do not take this parameter")
    assert len(fake_mistral.requests) == before


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_effort_makes_claude_think_and_the_thinking_stays_out_of_the_answer(client, fake_anthropic, stream):
    assert ask(client, stream, model="claude", reasoning_effort="low", user="u-7") == "echo: hello there"
    sent = fake_anthropic.requests[-1].json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048} and sent["max_tokens"] == 8192
    assert sent["metadata"] == {"user_id": "u-7"}
    answer = ask(client, stream, model="claude", reasoning_effort="high", max_completion_tokens=5000)
    assert answer == "echo: hello there"
    sent = fake_anthropic.requests[-1].json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2500} and sent["max_tokens"] == 5000


@pytest.mark.parametrize("stream", [False, True])
def test_claude_thinking_without_room_is_refused_before_any_call(client, fake_anthropic, stream):
    before = len(fake_anthropic.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        ask(client, stream, model="claude", reasoning_effort="medium", max_completion_tokens=800)
    assert refused.value.body["message"].startswith("reasoning_effort: Claude models think with at least 1024 tokens")
    assert len(fake_anthropic.requests) == before


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_effort_makes_claude_on_bedrock_think(client, fake_bedrock, stream):
    assert ask(client, stream, model="bedrock-claude", reasoning_effort="medium") == "echo: hello there"
    sent = fake_bedrock.requests[-1].json
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 8192}}
    assert sent["inferenceConfig"]["maxTokens"] == 12288


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model, config", [("gemini-2", {"thinkingBudget": 1024}),
                                           ("gemini-3", {"thinkingLevel": "LOW"})])
def test_reasoning_effort_becomes_geminis_thinking_config(client, fake_gemini, model, config, stream):
    assert ask(client, stream, model=model, reasoning_effort="low") == "echo: hello there"
    assert fake_gemini.requests[-1].json["generationConfig"]["thinkingConfig"] == config


def test_gemini_logprobs_come_back_in_openais_shape(client, fake_gemini):
    answer = client.chat.completions.create(model="gemini-2", messages=HI, logprobs=True, top_logprobs=2)
    assert fake_gemini.requests[-1].json["generationConfig"] == {"responseLogprobs": True, "logprobs": 2}
    tokens = answer.choices[0].logprobs.content
    assert [token.token for token in tokens] == ["echo: hello there"]
    assert tokens[0].logprob == -0.25 and tokens[0].bytes == list(b"echo: hello there")
    assert [(alt.token, alt.logprob) for alt in tokens[0].top_logprobs] == [("echo: hello there", -0.25),
                                                                             ("alt1", -4.0)]


def test_gemini_logprobs_stream_with_each_piece_of_text(client, fake_gemini):
    chunks = list(client.chat.completions.create(model="gemini-2", messages=HI, logprobs=True, stream=True))
    pieces = [(chunk.choices[0].delta.content, [t.token for t in chunk.choices[0].logprobs.content])
              for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert pieces == [("echo:", ["echo:"]), (" hello", [" hello"]), (" there", [" there"])]
    assert fake_gemini.requests[-1].json["generationConfig"] == {"responseLogprobs": True}


@pytest.mark.parametrize("stream", [False, True])
def test_the_native_openai_route_applies_the_same_table(gateway, fake_mistral, stream):
    native = openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["default"],
                           max_retries=0, timeout=20)
    assert ask(native, stream, model="mistral-small", max_completion_tokens=9, user="u-1") == "echo: hello there"
    sent = fake_mistral.requests[-1].json
    assert sent["max_tokens"] == 9 and not {"max_completion_tokens", "user", "stream_options"} & set(sent)
    before = len(fake_mistral.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        ask(native, stream, model="mistral-small", logit_bias={"50256": -100})
    assert refused.value.body["message"].startswith("logit_bias: ")
    assert len(fake_mistral.requests) == before


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model, fake, first_block", [
    ("claude", "fake_anthropic", {"type": "thinking", "thinking": "Thinking it over.", "signature": "sig_fake"}),
    ("bedrock-claude", "fake_bedrock", {"reasoningContent": {"reasoningText": {"text": "Hmm.", "signature": "sig"}}}),
])
def test_a_thinking_claude_tool_loop_continues_with_the_thinking_given_back(request, client, model, fake, first_block,
                                                                            stream):
    """Claude refuses the next turn of a tool loop unless its thinking comes back first (the fakes answer 400
    as Anthropic does): it travels on the first tool call (`extra_content.anthropic.thinking_blocks`), which
    the SDK's message object keeps."""
    first = client.chat.completions.create(model=model, messages=HI, tools=[WEATHER], reasoning_effort="low")
    message = first.choices[0].message
    assert message.content is None and message.tool_calls[0].function.name == "get_weather"
    follow_up = [*HI, message, {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "sunny"}]
    ask(client, stream, model=model, tools=[WEATHER], reasoning_effort="low", messages_=follow_up)
    sent = request.getfixturevalue(fake).requests[-1].json["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["content"][0] == first_block


def native_client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["default"],
                         max_retries=0, timeout=20)


@pytest.mark.parametrize("route", ["unified", "native"])
@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_effort_makes_mistral_think_and_the_thinking_stays_out_of_the_answer(gateway, client, fake_mistral,
                                                                                       route, stream):
    """Mistral answers reasoning with content chunks (mistralai 3.7.0 `ThinkChunk`, `TextChunk`); the client
    reads OpenAI's content string, the thinking left out as Claude's is, and the usage Mistral reported."""
    sdk = client if route == "unified" else native_client(gateway)
    answer = sdk.chat.completions.create(model="mistral-small", messages=HI, reasoning_effort="high", stream=stream,
                                         **({"stream_options": {"include_usage": True}} if stream else {}))
    if stream:
        chunks = list(answer)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        usage = next(chunk.usage for chunk in chunks if chunk.usage)
    else:
        text, usage = answer.choices[0].message.content, answer.usage
    assert text == "echo: hello there"
    assert (usage.prompt_tokens, usage.completion_tokens) == (11, 7)
    assert fake_mistral.requests[-1].json["reasoning_effort"] == "high"


@pytest.mark.parametrize("route", ["unified", "native"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_loop_started_on_claude_continues_on_mistral_without_the_gateways_carry_data(
        gateway, client, fake_mistral, route, stream):
    """Claude's thinking rides on the tool call as `extra_content` (providers/anthropic/thinking.py); Mistral
    answers 422 `extra_forbidden` to a field its `ToolCall` does not declare, so it must never get it."""
    first = client.chat.completions.create(model="claude", messages=HI, tools=[WEATHER], reasoning_effort="low")
    message = first.choices[0].message
    assert message.tool_calls[0].model_extra["extra_content"]["anthropic"]["thinking_blocks"]
    follow_up = [*HI, message, {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "sunny"}]
    sdk = client if route == "unified" else native_client(gateway)
    assert ask(sdk, stream, model="mistral-small", tools=[WEATHER], messages_=follow_up) == "echo: hello there"
    sent = fake_mistral.requests[-1].json["messages"][1]
    assert sent["tool_calls"] == [{"id": message.tool_calls[0].id, "type": "function",
                                   "function": {"name": "get_weather",
                                                "arguments": message.tool_calls[0].function.arguments}}]


def test_a_tool_loop_falls_back_from_claude_to_mistral_and_each_gets_what_it_reads(client, fake_anthropic, fake_mistral):
    """One body, two attempts: Claude's attempt gets its thinking back, Mistral's the same turn without it."""
    first = client.chat.completions.create(model="claude", messages=HI, tools=[WEATHER], reasoning_effort="low")
    message = first.choices[0].message
    follow_up = [*HI, message, {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "sunny"}]
    before = len(fake_anthropic.requests)
    fake_anthropic.fail("claude-haiku-4-5", 503)
    answer = client.chat.completions.create(model="claude-then-mistral", messages=follow_up, tools=[WEATHER])
    assert len(fake_anthropic.requests) == before + 1
    assert answer.choices[0].message.content == "echo: hello there"
    assert fake_anthropic.requests[-1].json["messages"][1]["content"][0]["type"] == "thinking"
    assert "extra_content" not in fake_mistral.requests[-1].json["messages"][1]["tool_calls"][0]
