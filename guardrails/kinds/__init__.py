"""The guardrail kinds, one module each, behind `guardrails.kinds.base.Guard`.

`build` compiles a guardrail's settings into a ready guard (done once per configuration snapshot);
`validate_settings` is what `gateway_apply` and the admin use to report bad settings before they are saved.
"""
from __future__ import annotations

from guardrails.kinds.base import Guard, SettingsError
from guardrails.kinds.judge import JudgeGuard
from guardrails.kinds.keywords import KeywordsGuard
from guardrails.kinds.pii import PiiGuard
from guardrails.kinds.regex import RegexGuard
from guardrails.kinds.size import SizeGuard

KINDS: dict[str, type[Guard]] = {cls.kind: cls for cls in (KeywordsGuard, RegexGuard, PiiGuard, JudgeGuard, SizeGuard)}


def build(kind: str, settings: dict, *, sanitize: bool) -> Guard:
    """A ready guard; SettingsError (with every problem) when the settings are unusable."""
    cls = KINDS.get(kind)
    if cls is None:
        raise SettingsError(f"unknown guardrail kind '{kind}'")
    return cls(settings if settings is not None else {}, sanitize=sanitize)


def validate_settings(kind: str, settings: dict) -> list[str]:
    """Every problem with `settings` for `kind`, as "key: message" strings; empty when they are usable."""
    try:
        build(kind, settings, sanitize=False)
    except SettingsError as exc:
        return exc.problems
    return []
