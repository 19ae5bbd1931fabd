"""The benchmark's scenarios: what is sent, how the gateway is configured for it, and at which concurrency.

Every scenario gets its own endpoint, named after it, so scenarios with different gateway features
(fallbacks, budgets, guardrails) share one gateway process and one configuration file. Adding one is a
`register(Scenario(...))` call below; docs/benchmarks.md shows examples.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

UPSTREAM_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
SECTIONS = ("secrets", "models", "guardrails", "endpoints", "budgets", "rate_limits")


@dataclass(frozen=True)
class Upstreams:
    """Addresses a scenario's configuration can point at."""

    url: str          # the fast fake OpenAI upstream (its API lives under /v1)
    refused_url: str  # a loopback port nobody listens on: connections are refused at once


def base_config(upstreams: Upstreams) -> dict:
    """The secret and model definitions every scenario may link to: `bench-gpt` and `bench-embedder`."""
    return {
        "secrets": [{"name": "bench-upstream", "provider": "openai", "values": {"api_key": "sk-bench-0123456789"},
                     "auth_config": {"api_base": f"{upstreams.url}/v1"}}],
        "models": [
            {"name": "bench-gpt", "provider": "openai", "model_name": UPSTREAM_MODEL, "secret": "bench-upstream",
             "input_cost_per_million": 0.15, "output_cost_per_million": 0.60},
            {"name": "bench-embedder", "provider": "openai", "model_name": EMBEDDING_MODEL,
             "secret": "bench-upstream", "input_cost_per_million": 0.02, "output_cost_per_million": 0},
        ],
    }


def single_model(model: str) -> Callable[[str, Upstreams], dict]:
    """Configuration for the common case: the scenario's endpoint served by one model of base_config."""
    return lambda name, upstreams: {"endpoints": [{"name": name, "models": [{"model": model}]}]}


@dataclass(frozen=True)
class Scenario:
    """One workload, measured at each of `concurrency` against the upstream directly and through the gateway.

    `config(name, upstreams)` returns a `gateway_apply` fragment (any of secrets, models, guardrails,
    endpoints, budgets) that must define an endpoint called `name`; fragments of all scenarios and
    base_config are concatenated into one file. `body` is the request without `model` and `stream`: the
    runner puts the upstream model (direct) or the endpoint name (through the gateway) in `model`, and
    streaming scenarios ask for the usage chunk as the gateway does upstream, so both sides stream the same
    events. `api` is the OpenAI operation: `/v1/<api>` upstream, `/gateway/mlflow/v1/<api>` on the gateway.
    """

    name: str
    description: str
    body: dict
    stream: bool = False
    api: str = "chat/completions"
    upstream_model: str = UPSTREAM_MODEL
    concurrency: tuple[int, ...] = (1, 32)
    config: Callable[[str, Upstreams], dict] = single_model("bench-gpt")
    gateway_path: str = ""  # the gateway route when not /gateway/mlflow/v1/<api> ("{name}": the endpoint)

    def request_body(self, model: str) -> dict:
        body = {"model": model, **self.body}
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body


REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    if scenario.name in REGISTRY:
        raise ValueError(f"Scenario '{scenario.name}' is registered twice.")
    REGISTRY[scenario.name] = scenario
    return scenario


def gateway_config(scenarios: list[Scenario], upstreams: Upstreams) -> dict:
    """One configuration file for base_config plus every selected scenario's fragment."""
    merged: dict[str, list] = {section: [] for section in SECTIONS}
    for fragment in (base_config(upstreams), *(s.config(s.name, upstreams) for s in scenarios)):
        unknown = set(fragment) - set(SECTIONS)
        if unknown:
            raise ValueError(f"Unknown configuration section(s): {', '.join(sorted(unknown))}")
        for section, items in fragment.items():
            merged[section].extend(items)
    return {section: items for section, items in merged.items() if items}


CHAT_BODY = {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                          {"role": "user", "content": "Say hello in five words."}],
             "max_tokens": 16, "temperature": 0.2}

register(Scenario("chat", "chat completion, one model, usage tracking on", CHAT_BODY))
register(Scenario("chat-stream", "streaming chat: 7 chunk events, a usage event, [DONE]", CHAT_BODY,
                  stream=True))
register(Scenario("embeddings", "embeddings of two strings, 256 dimensions",
                  {"input": ["first text to embed", "second text to embed"], "dimensions": 256},
                  api="embeddings", upstream_model=EMBEDDING_MODEL, concurrency=(32,),
                  config=single_model("bench-embedder")))


def budgeted(name: str, upstreams: Upstreams) -> dict:
    """One `reject` budget on the endpoint, too large to refuse anything: every request reserves and
    settles (GATEWAY_BUDGET_BACKEND picks where, as on a real server)."""
    return {**single_model("bench-gpt")(name, upstreams),
            "budgets": [{"name": f"{name}-daily", "scope": "endpoint", "target": name, "amount_usd": 1_000_000,
                         "window": {"unit": "days", "value": 1}, "action": "reject"}]}


register(Scenario("chat-budget", "chat with one endpoint budget active (compare with chat)", CHAT_BODY,
                  config=budgeted))


def rate_limited(name: str, upstreams: Upstreams) -> dict:
    """One endpoint rate limit on requests, tokens and concurrency, too large to refuse anything: every
    request is admitted against all three and settles its tokens (in Redis with --redis)."""
    return {**single_model("bench-gpt")(name, upstreams),
            "rate_limits": [{"name": f"{name}-limit", "scope": "endpoint", "target": name,
                             "requests_per_minute": 2_000_000_000, "tokens_per_minute": 2_000_000_000,
                             "max_concurrent": 100_000}]}


register(Scenario("chat-ratelimit", "chat with one endpoint rate limit (RPM, TPM, concurrency; compare with chat)",
                  CHAT_BODY, config=rate_limited))


def exactly_rate_limited(name: str, upstreams: Upstreams) -> dict:
    """One endpoint limit of 100 concurrent requests: too small for per-process allowances
    (gateway/ratelimits/allowance.py), so with --redis every request makes its own round trip."""
    return {**single_model("bench-gpt")(name, upstreams),
            "rate_limits": [{"name": f"{name}-limit", "scope": "endpoint", "target": name, "max_concurrent": 100}]}


register(Scenario("chat-ratelimit-exact", "chat with a limit too small for allowances (100 concurrent; compare with chat)",
                  CHAT_BODY, config=exactly_rate_limited))


def failover_config(name: str, upstreams: Upstreams) -> dict:
    """The primary's address refuses connections, so every request fails over to `bench-gpt`. The circuit
    breaker is off (`threshold: 0`): with it on, the dead model would be skipped after five failures and
    the run would measure skipping instead of the refused connection."""
    return {
        "secrets": [{"name": "bench-refused", "provider": "openai", "values": {"api_key": "sk-bench-0123456789"},
                     "auth_config": {"api_base": f"{upstreams.refused_url}/v1"}}],
        "models": [{"name": "bench-refused", "provider": "openai", "model_name": UPSTREAM_MODEL,
                    "secret": "bench-refused"}],
        "endpoints": [{"name": name, "circuit_breaker": {"threshold": 0}, "models": [
            {"model": "bench-refused"}, {"model": "bench-gpt", "linkage": "fallback", "order": 1}]}],
    }


register(Scenario("failover", "chat whose primary refuses connections; the fallback answers (compare with chat)",
                  CHAT_BODY, config=failover_config))


# A 2 KB prompt of ordinary prose with an e-mail address and a phone number in it, so the `pii` guardrail
# both scans and rewrites. `chat-2kb` sends the same prompt to an endpoint without guardrails: the difference
# between the two is what the guardrails cost.
PROMPT_2KB = {"messages": [{"role": "user", "content": (
    "Please summarise the following customer report in three sentences. " + "The customer explains that the "
    "dashboard loads slowly in the morning, that exports to CSV sometimes time out after 30 seconds, and that "
    "the new billing page shows the right totals but the wrong currency symbol for two of their 14 teams. " * 8
    + "They can be reached at jane.doe@example.org or +44 20 7946 0958 until Friday.")}], "max_tokens": 16}


def guarded(name: str, upstreams: Upstreams) -> dict:
    return {"guardrails": [{"name": f"{name}-pii", "kind": "pii", "stage": "before", "action": "sanitize"},
                           {"name": f"{name}-regex", "kind": "regex", "stage": "before", "action": "block",
                            "settings": {"patterns": ["(?i)ignore (all )?previous instructions"]}}],
            "endpoints": [{"name": name, "models": [{"model": "bench-gpt"}],
                           "guardrails": [f"{name}-pii", f"{name}-regex"]}]}


register(Scenario("chat-proxy", "chat completion through the raw proxy route (compare with chat)", CHAT_BODY,
                  gateway_path="/gateway/proxy/{name}/chat/completions"))
register(Scenario("chat-2kb", "chat with a 2 KB prompt, no guardrails (compare with chat-guardrails)", PROMPT_2KB,
                  concurrency=(1,)))
register(Scenario("chat-guardrails", "chat with pii (sanitize) + regex guardrails before the call, 2 KB prompt",
                  PROMPT_2KB, concurrency=(1,), config=guarded))
