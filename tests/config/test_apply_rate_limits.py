"""`gateway_apply` with a `rate_limits` section: the issue's example applies, "*" targets, problems listed."""
from __future__ import annotations

import pytest

from gateway.apikeys import api_key_create
from gateway.config.apply import ConfigError, apply_config
from gateway.models import RateLimit

pytestmark = [pytest.mark.django_db, pytest.mark.database]

ENDPOINTS = {"endpoints": [{"name": "chat", "models": [{"model": "echo"}]}],
             "models": [{"name": "echo", "provider": "fake", "model_name": "fake-echo"}]}


def test_the_issue_example_applies_and_a_second_apply_changes_nothing():
    api_key_create(name="team-a")
    config = {**ENDPOINTS, "rate_limits": [
        {"name": "team-a-rpm", "scope": "api_key", "target": "team-a", "requests_per_minute": 60,
         "tokens_per_minute": 100000, "max_concurrent": 10},
        {"name": "each-endpoint", "scope": "endpoint", "target": "*", "requests_per_minute": 5},
        {"name": "everything", "scope": "global", "max_concurrent": 100},
    ]}
    result = apply_config(config)
    assert [str(change) for change in result.changes if change.kind == "rate_limit"] == [
        "create rate_limit team-a-rpm", "create rate_limit each-endpoint", "create rate_limit everything"]
    limit = RateLimit.objects.get(name="team-a-rpm")
    assert (limit.requests_per_minute, limit.tokens_per_minute, limit.max_concurrent) == (60, 100000, 10)
    assert RateLimit.objects.get(name="everything").requests_per_minute is None
    assert apply_config(config).changes == []


def test_rate_limit_problems_are_listed_with_their_location():
    config = {**ENDPOINTS, "rate_limits": [
        {"name": "nothing", "scope": "global"},
        {"name": "no-such-key", "scope": "api_key", "target": "ghost", "requests_per_minute": 1},
        {"name": "global-star", "scope": "global", "target": "*", "requests_per_minute": 1},
        {"name": "zero", "scope": "global", "requests_per_minute": 0},
        {"name": "words", "scope": "global", "tokens_per_minute": "many"},
        {"name": "no-target", "scope": "endpoint", "max_concurrent": 1},
    ]}
    with pytest.raises(ConfigError) as error:
        apply_config(config)
    problems = error.value.problems
    assert "rate_limits[0]: needs at least one of: requests_per_minute, tokens_per_minute, max_concurrent" in problems
    assert "rate_limits[1].target: unknown API key 'ghost'" in problems
    assert "rate_limits[2].target: a global rate limit has no target" in problems
    assert any(p.startswith("rate_limits[3].requests_per_minute:") for p in problems)
    assert "rate_limits[4].tokens_per_minute: must be an integer" in problems
    assert "rate_limits[5].target: required for scope 'endpoint'" in problems
    assert not RateLimit.objects.exists()


def test_prune_removes_rate_limits_missing_from_the_file():
    apply_config({**ENDPOINTS, "rate_limits": [{"name": "old", "scope": "global", "requests_per_minute": 1}]})
    apply_config(ENDPOINTS, prune=True)
    assert not RateLimit.objects.exists()
