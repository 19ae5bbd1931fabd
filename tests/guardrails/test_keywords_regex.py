"""The `keywords` and `regex` kinds: matching rules, redaction, and settings validation."""
from __future__ import annotations

import pytest

from guardrails.kinds import build, validate_settings
from tests.guardrails.helpers import blocks, redact

KEYWORD_CASES = [
    # (settings, text, blocked)
    ({"words": ["cat"]}, "I have a Cat.", True),
    ({"words": ["cat"]}, "concatenate the files", False),
    ({"words": ["cat"], "word_boundary": False}, "concatenate the files", True),
    ({"words": ["cat"], "case_sensitive": True}, "I have a Cat.", False),
    ({"words": ["c++"]}, "I write C++ daily", True),
    ({"words": ["c++"]}, "I write abc++ daily", False),
    ({"words": ["forbidden-term"]}, "say forbidden-term now", True),
    ({"words": ["forbidden-term"]}, "say forbidden-terms now", False),
    ({"words": ["project apollo"]}, "About Project  Apollo", False),
    ({"words": ["project apollo"]}, "About Project Apollo!", True),
]


@pytest.mark.parametrize("settings,text,blocked", KEYWORD_CASES)
def test_keyword_matching(settings, text, blocked):
    assert blocks("keywords", text, **settings) is blocked


def test_keywords_redact_longest_phrase_first_with_the_replacement():
    settings = {"words": ["credit", "credit card number"], "replacement": "***"}
    assert redact("keywords", "my Credit Card Number and credit", **settings) == "my *** and ***"


def test_keyword_reason_does_not_quote_the_word():
    verdict = build("keywords", {"words": ["swordfish"]}, sanitize=False).check(["the password is swordfish"])
    assert verdict.reason == "found a blocked keyword"


REGEX_CASES = [
    ({"patterns": [r"project\s+(apollo|zeus)"]}, "status of project  zeus?", True),
    ({"patterns": [r"project\s+(apollo|zeus)"]}, "status of Project Zeus?", False),
    ({"patterns": [r"project\s+(apollo|zeus)"], "case_sensitive": False}, "status of Project Zeus?", True),
    ({"patterns": [r"\d{4}"], "word_boundary": True}, "code 12345", False),
    ({"patterns": [r"\d{4}"], "word_boundary": True}, "code 1234.", True),
    ({"patterns": [r"(?P<x>a)b", r"(?P<x>c)d"]}, "xx cd", True),
]


@pytest.mark.parametrize("settings,text,blocked", REGEX_CASES)
def test_regex_matching(settings, text, blocked):
    assert blocks("regex", text, **settings) is blocked


def test_regex_redacts_every_pattern_and_names_patterns_by_position():
    guard = build("regex", {"patterns": [r"ticket-\d+", r"(\w)\1{3,}"], "replacement": "[X]"}, sanitize=True)
    verdict = guard.check(["see ticket-42 and aaaa or ticket-7"])
    assert verdict.texts == ["see [X] and [X] or [X]"]
    assert verdict.reason == "found a match of pattern #1, a match of pattern #2"


@pytest.mark.parametrize("kind,settings,problems", [
    ("keywords", {}, ["words: required"]),
    ("keywords", {"words": []}, ["words: must not be empty"]),
    ("keywords", {"words": "cat"}, ["words: must be a list of strings"]),
    ("keywords", {"words": [" "]}, ["words: must not contain empty strings"]),
    ("keywords", {"words": ["x"], "colour": "red"}, ["colour: unknown setting"]),
    ("keywords", {"words": ["x"], "case_sensitive": "yes"}, ["case_sensitive: must be true or false"]),
    ("regex", {"patterns": ["a("]}, ["patterns[0]: not a valid regular expression "
                                     "(missing ), unterminated subpattern at position 1)"]),
    ("regex", {"patterns": ["x*"]}, ["patterns[0]: matches the empty string"]),
    ("regex", {"patterns": ["x"], "max_match_length": 0}, ["max_match_length: must be between 1 and 4096"]),
    ("pii", {"entities": ["email", "dna"]}, ["entities: unknown value(s) dna; choose from card, email, iban, ip, "
                                              "phone, secret, ssn"]),
    ("max_tokens", {}, ["max_tokens or max_chars: at least one is required"]),
    ("max_tokens", {"max_tokens": 0}, ["max_tokens: must be between 1 and 1e+09"]),
    ("llm_judge", {"endpoint": "judge"}, ["instruction: required"]),
    ("telepathy", {}, ["unknown guardrail kind 'telepathy'"]),
    ("keywords", ["cat"], ["must be a mapping", "words: required"]),
])
def test_validate_settings_lists_every_problem(kind, settings, problems):
    assert validate_settings(kind, settings) == problems


@pytest.mark.parametrize("kind,settings", [
    ("keywords", {"words": ["x"]}), ("regex", {"patterns": ["x"]}), ("pii", {}), ("max_tokens", {"max_chars": 5}),
    ("llm_judge", {"endpoint": "judge", "instruction": "Be nice."}),
])
def test_valid_settings_have_no_problems(kind, settings):
    assert validate_settings(kind, settings) == []


def test_gateway_apply_rejects_bad_settings(db):
    from gateway.config.apply import ConfigError, apply_config

    with pytest.raises(ConfigError) as caught:
        apply_config({"guardrails": [{"name": "g", "kind": "keywords", "settings": {"colour": "red"}}]})
    assert caught.value.problems == ["guardrails[0].settings: colour: unknown setting",
                                     "guardrails[0].settings: words: required"]


def test_model_clean_checks_settings_even_when_none_are_given(db):
    from django.core.exceptions import ValidationError

    from guardrails.models import Guardrail

    with pytest.raises(ValidationError) as caught:
        Guardrail(name="g", kind="keywords").full_clean()
    assert caught.value.message_dict == {"settings": ["words: required"]}
