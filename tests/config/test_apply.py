"""gateway_apply: declarative configuration applied idempotently, validated whole, pruned and dry-run."""
from __future__ import annotations

import io
import sys
import textwrap
import types
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateway.apikeys import api_key_create
from gateway.config.apply import ConfigError, apply_config, load_config_file
from gateway.models import BudgetPolicy, Endpoint, EndpointModel, ModelDefinition, Secret
from gateway.config.secrets import secret_create, secret_values
from guardrails.models import EndpointGuardrail, Guardrail

pytestmark = [pytest.mark.django_db, pytest.mark.database]

# The example from the foundation issue, verbatim.
ISSUE_EXAMPLE = """
secrets:
  - name: openai-main
    provider: openai
    values: {api_key: sk-...}
    auth_config: {api_base: https://api.openai.com/v1}
models:
  - {name: gpt4o-mini, provider: openai, model_name: gpt-4o-mini, secret: openai-main,
     input_cost_per_million: 0.15, output_cost_per_million: 0.60}
endpoints:
  - name: chat
    routing_strategy: traffic_split        # optional
    fallback: {strategy: sequential, max_attempts: 2}   # optional
    usage_tracking: true                   # optional, default true
    models:
      - {model: gpt4o-mini, weight: 0.8}   # linkage defaults to primary, weight to 1
      - {model: claude-haiku, weight: 0.2}
      - {model: mistral-small, linkage: fallback, order: 1}
budgets:
  - {name: chat-daily, scope: endpoint, target: chat, amount_usd: 5, window: {unit: days, value: 1}, action: reject}
"""

# The guardrails example from the guardrails issue, verbatim.
GUARDRAILS_EXAMPLE = """
guardrails:
  - {name: redact-pii, kind: pii, stage: before, action: sanitize}
  - {name: banned-words, kind: keywords, stage: after, action: block, settings: {words: [forbidden-term]}}
endpoints:
  - name: guarded
    models: [{model: gpt4o-mini}]
    guardrails: [redact-pii, banned-words]
"""

OPENAI_KEY = "sk-live-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-secret-9876543210fedcba"

FULL = f"""
secrets:
  - name: openai-main
    provider: openai
    values: {{api_key: {OPENAI_KEY}}}
    auth_config: {{api_base: https://api.openai.com/v1}}
  - name: anthropic-main
    provider: anthropic
    values: {{api_key: {ANTHROPIC_KEY}}}
    description: team key
models:
  - {{name: gpt4o-mini, provider: openai, model_name: gpt-4o-mini, secret: openai-main,
     input_cost_per_million: 0.15, output_cost_per_million: 0.60}}
  - {{name: claude-haiku, provider: anthropic, model_name: claude-3-5-haiku-latest, secret: anthropic-main}}
  - {{name: fake-small, provider: fake, model_name: fake-1}}
guardrails:
  - {{name: redact-pii, kind: pii, stage: before, action: sanitize}}
  - {{name: banned-words, kind: keywords, stage: after, action: block, settings: {{words: [forbidden-term]}}}}
endpoints:
  - name: chat
    routing_strategy: traffic_split
    fallback: {{strategy: sequential, max_attempts: 2}}
    retries: 2
    timeout: 30
    stream_idle_timeout: 5.5
    circuit_breaker: {{threshold: 3, cooldown_seconds: 10}}
    description: main chat
    models:
      - {{model: gpt4o-mini, weight: 0.8}}
      - {{model: claude-haiku, weight: 0.2}}
      - {{model: fake-small, linkage: fallback, order: 1}}
    guardrails: [redact-pii, banned-words]
  - name: embed
    models: [{{model: fake-small}}]
budgets:
  - {{name: chat-daily, scope: endpoint, target: chat, amount_usd: 5, window: {{unit: days, value: 1}}, action: reject}}
  - {{name: global-monthly, scope: global, amount_usd: 100.5, window: {{unit: months, value: 1}}, action: alert,
     webhook_url: "https://hooks.example.com/budget"}}
"""


def config(text: str) -> dict:
    return yaml.safe_load(textwrap.dedent(text))


def lines(result) -> list[str]:
    return [str(change) for change in result.changes]


def run_command(tmp_path: Path, text: str, *args: str) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(text))
    out = io.StringIO()
    call_command("gateway_apply", str(path), *args, stdout=out)
    return out.getvalue()


def link_rows(endpoint: str) -> list[tuple[str, str, float, int]]:
    return [(link.model.name, link.linkage, link.weight, link.order)
            for link in EndpointModel.objects.filter(endpoint__name=endpoint).select_related("model")]


def snapshot_state() -> dict:
    """Every row the service manages, as comparable tuples, to prove that something changed nothing."""
    return {
        "secrets": list(Secret.objects.values_list("name", "provider", "encrypted_value", "auth_config", "updated_at")),
        "models": list(ModelDefinition.objects.values_list()),
        "endpoints": list(Endpoint.objects.values_list()),
        "links": list(EndpointModel.objects.values_list()),
        "guardrails": list(Guardrail.objects.values_list()),
        "guardrail_links": list(EndpointGuardrail.objects.values_list()),
        "budgets": list(BudgetPolicy.objects.values_list()),
    }


def test_issue_example_applies():
    anthropic = secret_create(name="anthropic-main", provider="anthropic", values={"api_key": ANTHROPIC_KEY})
    ModelDefinition.objects.create(name="claude-haiku", provider="anthropic", model_name="claude-3-5-haiku-latest",
                                   secret=anthropic)
    ModelDefinition.objects.create(name="mistral-small", provider="fake", model_name="mistral-small-latest")

    result = apply_config(config(ISSUE_EXAMPLE))

    assert lines(result) == ["create secret openai-main", "create model gpt4o-mini", "create endpoint chat",
                             "create budget chat-daily"]
    secret = Secret.objects.get(name="openai-main")
    assert secret_values(secret) == {"api_key": "sk-..."}
    assert secret.auth_config == {"api_base": "https://api.openai.com/v1"}
    model = ModelDefinition.objects.get(name="gpt4o-mini")
    assert (model.secret, model.input_cost_per_million, model.output_cost_per_million) == (
        secret, Decimal("0.15"), Decimal("0.6"))
    chat = Endpoint.objects.get(name="chat")
    assert (chat.routing_strategy, chat.fallback_strategy, chat.fallback_max_attempts, chat.usage_tracking) == (
        "traffic_split", "sequential", 2, True)
    assert link_rows("chat") == [("mistral-small", "fallback", 1.0, 1), ("gpt4o-mini", "primary", 0.8, 0),
                                 ("claude-haiku", "primary", 0.2, 0)]
    budget = BudgetPolicy.objects.get(name="chat-daily")
    assert (budget.scope, budget.target, budget.amount_usd, budget.window_unit, budget.window_value,
            budget.action) == ("endpoint", "chat", Decimal(5), "days", 1, "reject")
    assert model.created_by == chat.updated_by == "gateway_apply"


def test_optional_endpoint_keys_map_onto_resilience_fields():
    apply_config(config(FULL))

    chat = Endpoint.objects.get(name="chat")
    assert (chat.retries, chat.total_timeout_seconds, chat.stream_idle_timeout_seconds, chat.breaker_threshold,
            chat.breaker_cooldown_seconds, chat.description) == (2, 30.0, 5.5, 3, 10.0, "main chat")
    embed = Endpoint.objects.get(name="embed")
    assert (embed.routing_strategy, embed.fallback_strategy, embed.usage_tracking, embed.retries) == (
        "", "sequential", True, None)
    assert link_rows("embed") == [("fake-small", "primary", 1.0, 0)]


def test_second_apply_reports_no_changes_and_writes_nothing(tmp_path):
    apply_config(config(FULL))
    before = snapshot_state()

    with CaptureQueriesContext(connection) as queries:
        result = apply_config(config(FULL))

    assert result.changes == []
    assert result.summary() == "No changes."
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []
    assert snapshot_state() == before
    assert run_command(tmp_path, FULL).strip() == "No changes."


def test_changed_fields_update_the_object_by_name():
    apply_config(config(FULL))
    model_pk = ModelDefinition.objects.get(name="gpt4o-mini").pk

    changed = FULL.replace("input_cost_per_million: 0.15", "input_cost_per_million: 0.2").replace(
        "max_attempts: 2", "max_attempts: 1").replace("description: team key", "description: shared key")
    result = apply_config(config(changed))

    assert lines(result) == ["update secret anthropic-main (description)",
                             "update model gpt4o-mini (input_cost_per_million)",
                             "update endpoint chat (fallback.max_attempts)"]
    model = ModelDefinition.objects.get(name="gpt4o-mini")
    assert (model.pk, model.input_cost_per_million) == (model_pk, Decimal("0.2"))
    assert Endpoint.objects.get(name="chat").fallback_max_attempts == 1
    assert secret_values(Secret.objects.get(name="anthropic-main")) == {"api_key": ANTHROPIC_KEY}


def test_only_a_changed_secret_value_is_re_encrypted():
    apply_config(config(FULL))
    anthropic_before = bytes(Secret.objects.get(name="anthropic-main").encrypted_value)

    result = apply_config(config(FULL.replace(OPENAI_KEY, "sk-rotated-0000000000000000")))

    assert lines(result) == ["update secret openai-main (values)"]
    assert secret_values(Secret.objects.get(name="openai-main")) == {"api_key": "sk-rotated-0000000000000000"}
    assert bytes(Secret.objects.get(name="anthropic-main").encrypted_value) == anthropic_before


def test_a_key_removed_from_the_file_returns_to_its_default():
    apply_config(config(FULL))

    apply_config(config(FULL.replace("    retries: 2\n", "").replace("    description: main chat\n", "")))

    chat = Endpoint.objects.get(name="chat")
    assert (chat.retries, chat.description) == (None, "")


def test_endpoint_links_are_replaced_by_the_files_list():
    apply_config(config(FULL))

    replaced = FULL.replace("""      - {model: gpt4o-mini, weight: 0.8}
      - {model: claude-haiku, weight: 0.2}
      - {model: fake-small, linkage: fallback, order: 1}""", """      - {model: claude-haiku}
      - {model: gpt4o-mini, linkage: fallback}""")
    result = apply_config(config(replaced))

    assert lines(result) == ["update endpoint chat (models)"]
    assert link_rows("chat") == [("gpt4o-mini", "fallback", 1.0, 0), ("claude-haiku", "primary", 1.0, 0)]


def test_fallbacks_without_order_keep_the_file_order_and_a_swap_is_a_change():
    text = FULL.replace("""      - {model: fake-small, linkage: fallback, order: 1}""", """      - {model: fake-small, linkage: fallback}
      - {model: claude-haiku, linkage: fallback}""")
    apply_config(config(text))
    assert [row[0] for row in link_rows("chat") if row[1] == "fallback"] == ["fake-small", "claude-haiku"]

    swapped = text.replace("""      - {model: fake-small, linkage: fallback}
      - {model: claude-haiku, linkage: fallback}""", """      - {model: claude-haiku, linkage: fallback}
      - {model: fake-small, linkage: fallback}""")
    assert lines(apply_config(config(swapped))) == ["update endpoint chat (models)"]
    assert [row[0] for row in link_rows("chat") if row[1] == "fallback"] == ["claude-haiku", "fake-small"]


BAD = """
secrets:
  - name: openai-main
    provider: openai
    values: {api_key: {env: GATEWAY_TEST_UNSET_VARIABLE}}
  - name: broken
    provider: nosuch
    values: {api_key: 12345}
    colour: blue
models:
  - {name: gpt4o-mini, provider: openai, model_name: gpt-4o-mini, secret: openai-main, input_cost_per_million: -1}
  - {name: orphan, provider: anthropic, model_name: claude}
  - {name: mismatched, provider: anthropic, model_name: claude, secret: openai-main}
guardrails:
  - {name: g1, kind: telepathy, stage: during, action: block, fail_mode: sideways}
endpoints:
  - name: "bad name!"
    routing_strategy: random
    fallback: {strategy: parallel, max_attempts: "two"}
    models:
      - {model: gpt4o-mini, weight: 0}
      - {model: gpt4o-mini, weight: 1}
      - {model: x}
    guardrails: [g1, nope]
  - name: only-fallbacks
    models: [{model: gpt4o-mini, linkage: fallback}]
  - name: only-fallbacks
    models: [{model: gpt4o-mini}]
budgets:
  - {name: b1, scope: endpoint, amount_usd: 5, window: {unit: fortnights, value: 0}, action: shout}
  - {name: b2, scope: global, target: chat, amount_usd: 1, window: {unit: days, value: 1}}
  - {name: b3, scope: api_key, target: nobody, amount_usd: 1}
extras: {}
"""

BAD_PROBLEMS = [
    "secrets[0].values.api_key: environment variable GATEWAY_TEST_UNSET_VARIABLE is not set",
    "secrets[1].colour: unknown key (expected one of: auth_config, description, name, provider, values)",
    "secrets[1].provider: must be one of: openai, azure,",
    "secrets[1].values.api_key: must be a string",
    "models[0].input_cost_per_million: Ensure this value is greater than or equal to 0.",
    "models[1].secret: required for provider 'anthropic'",
    "models[2].secret: secret 'openai-main' is for provider 'openai', not 'anthropic'",
    "guardrails[0].kind: must be one of: keywords, regex, pii, llm_judge, max_tokens",
    "guardrails[0].stage: must be one of: before, after",
    "guardrails[0].fail_mode: must be one of: closed, open",
    "endpoints[0].name: Use only letters, digits, '_', '.' and '-'",
    "endpoints[0].routing_strategy: must be one of: traffic_split (or omit it)",
    "endpoints[0].fallback.strategy: must be one of: sequential",
    "endpoints[0].fallback.max_attempts: must be an integer",
    "endpoints[0].models[1].model: 'gpt4o-mini' is already linked as primary",
    "endpoints[0].models[2].model: unknown model 'x'",
    "endpoints[0].models: Weights must be greater than 0.",
    "endpoints[0].guardrails[1]: unknown guardrail 'nope'",
    "endpoints[1].models: An endpoint needs at least one primary model.",
    "endpoints[2].name: duplicate name 'only-fallbacks' (first used at endpoints[1])",
    "budgets[0].window.unit: must be one of: minutes, hours, days, weeks, months",
    "budgets[0].window.value: Ensure this value is greater than or equal to 1.",
    "budgets[0].action: must be one of: reject, alert",
    "budgets[0].target: required for scope 'endpoint'",
    "budgets[1].target: a global budget has no target",
    "budgets[2].window: required",
    "budgets[2].target: unknown API key 'nobody'",
    "extras: unknown section (expected one of: secrets, models, guardrails, endpoints, budgets, rate_limits)",
]


def test_a_bad_file_lists_every_problem_with_its_location_and_changes_nothing(monkeypatch):
    monkeypatch.delenv("GATEWAY_TEST_UNSET_VARIABLE", raising=False)
    apply_config(config(FULL))
    before = snapshot_state()

    with pytest.raises(ConfigError) as caught:
        apply_config(config(BAD))

    problems = caught.value.problems
    for expected in BAD_PROBLEMS:
        assert any(problem.startswith(expected) for problem in problems), (expected, problems)
    assert len(problems) == len(BAD_PROBLEMS)
    assert snapshot_state() == before


def test_the_command_exits_with_the_problem_list(tmp_path, monkeypatch):
    monkeypatch.delenv("GATEWAY_TEST_UNSET_VARIABLE", raising=False)

    with pytest.raises(CommandError) as caught:
        run_command(tmp_path, BAD)

    message = str(caught.value)
    assert f"{len(BAD_PROBLEMS)} problem(s) in the configuration; nothing was changed" in message
    assert "endpoints[0].models[2].model: unknown model 'x'" in message
    assert not Secret.objects.exists()


def test_problems_never_quote_secret_values(tmp_path):
    text = """
    secrets:
      - {name: s, provider: openai, values: {api_key: 987654321, nested: {token: [sk-ok, 424242]}}}
    """
    with pytest.raises(ConfigError) as caught:
        apply_config(config(text))
    assert caught.value.problems == ["secrets[0].values.api_key: must be a string",
                                     "secrets[0].values.nested.token[1]: must be a string"]
    assert "987654321" not in str(caught.value) and "424242" not in str(caught.value)

    broken = tmp_path / "broken.yaml"
    broken.write_text("secrets:\n  - name: s\n    values: {api_key: sk-very-secret-value\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(broken)
    assert "invalid YAML at line" in str(caught.value)
    assert "sk-very-secret-value" not in str(caught.value)


def test_secret_values_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_OPENAI_KEY", "sk-from-env-1234567890")
    monkeypatch.setenv("GATEWAY_TEST_BEDROCK_SECRET", "aws-secret-from-env")
    text = """
    secrets:
      - {name: openai-env, provider: openai, values: {api_key: {env: GATEWAY_TEST_OPENAI_KEY}}}
      - name: bedrock
        provider: bedrock
        values:
          aws_access_key_id: AKIAEXAMPLE
          aws_secret_access_key: {env: GATEWAY_TEST_BEDROCK_SECRET}
          extra: {tokens: [{env: GATEWAY_TEST_OPENAI_KEY}]}
    """
    apply_config(config(text))

    assert secret_values(Secret.objects.get(name="openai-env")) == {"api_key": "sk-from-env-1234567890"}
    assert secret_values(Secret.objects.get(name="bedrock")) == {
        "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "aws-secret-from-env",
        "extra": {"tokens": ["sk-from-env-1234567890"]},
    }
    assert apply_config(config(text)).changes == []

    monkeypatch.setenv("GATEWAY_TEST_OPENAI_KEY", "sk-rotated-in-env-000")
    assert lines(apply_config(config(text))) == ["update secret openai-env (values)", "update secret bedrock (values)"]


def test_the_database_holds_no_plaintext_secret_value():
    apply_config(config(FULL))

    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                for value in row:
                    raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
                    assert OPENAI_KEY.encode() not in raw, table
                    assert ANTHROPIC_KEY.encode() not in raw, table


def test_prune_deletes_every_kind_absent_from_the_file_in_a_safe_order():
    apply_config(config(FULL))
    kept = """
    secrets:
      - {name: openai-main, provider: openai, values: {api_key: sk-live-openai-0123456789abcdef},
         auth_config: {api_base: https://api.openai.com/v1}}
    models:
      - {name: gpt4o-mini, provider: openai, model_name: gpt-4o-mini, secret: openai-main,
         input_cost_per_million: 0.15, output_cost_per_million: 0.60}
    endpoints:
      - name: chat
        models: [{model: gpt4o-mini}]
    """

    assert lines(apply_config(config(kept))) == ["update endpoint chat (description, routing_strategy, "
                                                 "fallback.max_attempts, retries, timeout, stream_idle_timeout, "
                                                 "circuit_breaker.threshold, circuit_breaker.cooldown_seconds, "
                                                 "models, guardrails)"]
    assert Endpoint.objects.filter(name="embed").exists()

    result = apply_config(config(kept), prune=True)

    assert lines(result) == ["delete budget chat-daily", "delete budget global-monthly", "delete endpoint embed",
                             "delete guardrail banned-words", "delete guardrail redact-pii",
                             "delete model claude-haiku", "delete model fake-small", "delete secret anthropic-main"]
    assert sorted(Endpoint.objects.values_list("name", flat=True)) == ["chat"]
    assert sorted(ModelDefinition.objects.values_list("name", flat=True)) == ["gpt4o-mini"]
    assert sorted(Secret.objects.values_list("name", flat=True)) == ["openai-main"]
    assert not BudgetPolicy.objects.exists() and not Guardrail.objects.exists()


def test_prune_checks_references_against_the_file_alone():
    apply_config(config(FULL))

    with pytest.raises(ConfigError) as caught:
        apply_config(config("endpoints: [{name: e, models: [{model: fake-small}]}]"), prune=True)

    assert caught.value.problems == ["endpoints[0].models[0].model: unknown model 'fake-small'"]


def test_prune_never_widens_an_api_key_limited_to_pruned_endpoints():
    apply_config(config(FULL))
    api_key_create(name="ci", endpoints=[Endpoint.objects.get(name="embed")])
    without_embed = FULL.replace("  - name: embed\n    models: [{model: fake-small}]\n", "")

    with pytest.raises(ConfigError) as caught:
        apply_config(config(without_embed), prune=True)

    assert caught.value.problems == [
        "prune: API key 'ci' may only use embed; removing them would let it use every endpoint "
        "(keep one in the file or change the key first)"
    ]
    assert Endpoint.objects.filter(name="embed").exists()


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path):
    output = run_command(tmp_path, FULL, "--dry-run")

    assert output.splitlines() == [
        "create secret openai-main", "create secret anthropic-main", "create model gpt4o-mini",
        "create model claude-haiku", "create model fake-small", "create guardrail redact-pii",
        "create guardrail banned-words", "create endpoint chat", "create endpoint embed",
        "create budget chat-daily", "create budget global-monthly",
        "Dry run: 11 to create, 0 to update, 0 to delete; nothing was changed.",
    ]
    assert not any(snapshot_state().values())
    assert OPENAI_KEY not in output


def test_dry_run_of_updates_and_prune_changes_nothing(tmp_path):
    run_command(tmp_path, FULL)
    before = snapshot_state()
    changed = FULL.replace(OPENAI_KEY, "sk-new-key-000000000000").replace("  - name: embed\n    models: "
                                                                          "[{model: fake-small}]\n", "")

    output = run_command(tmp_path, changed, "--dry-run", "--prune")

    assert output.splitlines() == ["update secret openai-main (values)", "delete endpoint embed",
                                   "Dry run: 0 to create, 1 to update, 1 to delete; nothing was changed."]
    assert snapshot_state() == before
    assert "sk-new-key" not in output


def test_the_command_prints_one_line_per_change_and_a_summary(tmp_path):
    output = run_command(tmp_path, GUARDRAILS_EXAMPLE.replace(
        "endpoints:", "models: [{name: gpt4o-mini, provider: fake, model_name: fake-1}]\nendpoints:"))

    assert output.splitlines() == ["create model gpt4o-mini", "create guardrail redact-pii",
                                   "create guardrail banned-words", "create endpoint guarded",
                                   "Applied: 4 created, 0 updated, 0 deleted."]


def test_guardrails_section_and_per_endpoint_order():
    ModelDefinition.objects.create(name="gpt4o-mini", provider="fake", model_name="fake-1")

    apply_config(config(GUARDRAILS_EXAMPLE))

    pii = Guardrail.objects.get(name="redact-pii")
    assert (pii.kind, pii.stage, pii.action, pii.settings, pii.fail_mode) == ("pii", "before", "sanitize", {}, "closed")
    words = Guardrail.objects.get(name="banned-words")
    assert (words.kind, words.stage, words.action, words.settings) == (
        "keywords", "after", "block", {"words": ["forbidden-term"]})

    def order() -> list[str]:
        return list(EndpointGuardrail.objects.filter(endpoint__name="guarded")
                    .values_list("guardrail__name", flat=True))

    assert order() == ["redact-pii", "banned-words"]
    swapped = GUARDRAILS_EXAMPLE.replace("[redact-pii, banned-words]", "[banned-words, redact-pii]")
    assert lines(apply_config(config(swapped))) == ["update endpoint guarded (guardrails)"]
    assert order() == ["banned-words", "redact-pii"]


def test_guardrail_settings_are_checked_by_the_kind_module_when_present(monkeypatch):
    kinds = types.ModuleType("guardrails.kinds")
    kinds.validate_settings = lambda kind, settings: [] if "words" in settings else ["words: required"]
    monkeypatch.setitem(sys.modules, "guardrails.kinds", kinds)

    with pytest.raises(ConfigError) as caught:
        apply_config(config("guardrails: [{name: g, kind: keywords, settings: {colour: red}}]"))

    assert caught.value.problems == ["guardrails[0].settings: words: required"]


def test_an_empty_file_is_a_valid_empty_configuration(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")

    assert load_config_file(empty) == {}
    assert apply_config({}).summary() == "No changes."


def test_a_badly_typed_link_is_reported_alone():
    text = "endpoints: [{name: e, models: [{model: m, weight: '0.5'}]}]\nmodels: [{name: m, provider: fake, model_name: f}]"

    with pytest.raises(ConfigError) as caught:
        apply_config(config(text))

    assert caught.value.problems == ["endpoints[0].models[0].weight: must be a number"]


@pytest.mark.django_db
def test_a_secret_pointing_at_a_metadata_address_is_refused():
    from gateway.config.apply import ConfigError, apply_config

    data = {"secrets": [{"name": "evil", "provider": "openai", "values": {"api_key": "k" * 20},
                         "auth_config": {"api_base": "http://169.254.169.254/latest"}}]}
    with pytest.raises(ConfigError) as info:
        apply_config(data)
    assert any("link-local" in p or "metadata" in p for p in info.value.problems)
    from gateway.models import Secret
    assert not Secret.objects.exists()


def test_a_secret_with_an_unusable_timeout_is_a_located_problem():
    from gateway.config.apply import ConfigError, apply_config
    from gateway.models import Secret

    data = {"secrets": [{"name": "slow", "provider": "openai", "values": {"api_key": "k" * 20},
                         "auth_config": {"timeout": {"connect": -1}}}]}
    with pytest.raises(ConfigError) as info:
        apply_config(data)
    assert info.value.problems == ["secret 'slow': auth_config: timeout must be seconds (> 0) or "
                                   '{"connect": seconds, "read": seconds, "total": seconds}.']
    assert not Secret.objects.exists()


@pytest.mark.django_db
def test_an_unknown_credential_mode_is_refused_naming_the_modes():
    from gateway.config.apply import ConfigError, apply_config

    data = {"secrets": [{"name": "aws", "provider": "bedrock", "values": {}, "auth_config": {"auth_mode": "iam"}},
                        {"name": "gcp", "provider": "vertex_ai", "values": {}, "auth_config": {"auth_mode": "adc"}}]}
    with pytest.raises(ConfigError) as info:
        apply_config(data)
    assert info.value.problems == ["secrets[0].auth_config.auth_mode: must be one of: api_key, access_keys, default_chain"]


@pytest.mark.django_db
def test_credentials_from_the_environment_need_no_secret_values():
    from gateway.config.apply import apply_config
    from gateway.models import ModelDefinition

    apply_config({"secrets": [{"name": "aws", "provider": "bedrock", "values": {},
                               "auth_config": {"auth_mode": "default_chain", "aws_role_arn": "arn:aws:iam::1:role/r"}}],
                  "models": [{"name": "claude", "provider": "bedrock", "model_name": "anthropic.claude-x", "secret": "aws"}]})
    assert ModelDefinition.objects.get(name="claude").secret.auth_config["auth_mode"] == "default_chain"


AUDIO_PRICED = """
models:
  - {name: voice, provider: fake, model_name: rt, audio_input_cost_per_million: 32, audio_output_cost_per_million: 64}
"""


def test_audio_prices_are_applied_read_back_and_validated():
    from gateway.config.items import model_item

    assert lines(apply_config(config(AUDIO_PRICED))) == ["create model voice"]
    model = ModelDefinition.objects.get(name="voice")
    assert (model.audio_input_cost_per_million, model.audio_output_cost_per_million) == (Decimal(32), Decimal(64))
    item = model_item(model)
    assert (item["audio_input_cost_per_million"], item["audio_output_cost_per_million"]) == (32, 64)
    assert apply_config(config(AUDIO_PRICED)).changes == []
    changed = AUDIO_PRICED.replace("audio_output_cost_per_million: 64", "audio_output_cost_per_million: 80")
    assert lines(apply_config(config(changed))) == ["update model voice (audio_output_cost_per_million)"]
    with pytest.raises(ConfigError) as refused:
        apply_config(config(AUDIO_PRICED.replace("32", "-1")))
    assert refused.value.problems == [
        "models[0].audio_input_cost_per_million: Ensure this value is greater than or equal to 0."]
