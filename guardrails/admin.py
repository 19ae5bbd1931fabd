"""Staff admin for guardrails. Which guardrails an endpoint runs, and in what order, is edited on the
endpoint's page through `EndpointGuardrailInline`."""
from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from guardrails.models import EndpointGuardrail, Guardrail, GuardrailKind
from guardrails.selectors import guardrail_activity

ACTIVITY_WINDOW = timedelta(hours=24)


def _per_name(values: dict[str, int]) -> Case:
    return Case(*(When(name=name, then=Value(count)) for name, count in values.items()),
                default=Value(0), output_field=IntegerField())


# Each kind's settings, and an example that passes its validation (tests/test_admin_operator.py checks it).
KIND_SETTINGS: dict[str, tuple[str, dict]] = {
    GuardrailKind.KEYWORDS: (
        "words (required, list), case_sensitive (false), word_boundary (true), replacement ([REDACTED])",
        {"words": ["forbidden-term", "internal-codename"], "case_sensitive": False},
    ),
    GuardrailKind.REGEX: (
        "patterns (required, list of Python regular expressions), case_sensitive (true), word_boundary (false), "
        "replacement ([REDACTED]), max_match_length (64)",
        {"patterns": [r"\bPROJ-\d{4}\b"], "replacement": "[TICKET]"},
    ),
    GuardrailKind.PII: (
        "entities: any of email, phone, card, iban, ip, ssn, secret (default all); stream_window (64)",
        {"entities": ["email", "phone", "card"]},
    ),
    GuardrailKind.LLM_JUDGE: (
        "endpoint (required: the gateway endpoint that judges), instruction (required), timeout_seconds (30), "
        "max_tokens",
        {"endpoint": "judge", "instruction": "The user's message must be polite and on topic."},
    ),
    GuardrailKind.MAX_TOKENS: (
        "max_tokens and/or max_chars (at least one), chars_per_token (4)",
        {"max_tokens": 2000},
    ),
}


def settings_help(chosen: str | None) -> str:
    """Every kind's settings with an example; when a kind is already chosen, the others start hidden (the
    form's script shows the one matching the kind selected)."""
    rows = format_html_join("", '<p data-guardrail-kind="{}"{}><b>{}</b>: {}. Example: <code>{}</code></p>', (
        (kind, " hidden" if chosen and chosen != kind else "", GuardrailKind(kind).label, keys,
         json.dumps(example))
        for kind, (keys, example) in KIND_SETTINGS.items()
    ))
    return format_html('<span class="guardrail-settings-help">Settings as a JSON object, for the chosen kind:{}'
                       '</span>', rows)


class GuardrailForm(forms.ModelForm):
    class Meta:
        model = Guardrail
        fields = "__all__"
        widgets = {"settings": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})}

    class Media:
        js = ("guardrails/settings_help.js",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["settings"].help_text = settings_help(self.initial.get("kind") or self.instance.kind or None)


@admin.register(Guardrail)
class GuardrailAdmin(admin.ModelAdmin):
    form = GuardrailForm
    list_display = ("name", "kind", "stage", "action", "fail_mode", "blocks_24h", "updated_at")
    list_filter = ("kind", "stage", "action", "fail_mode")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """The last day's runs and blocks, read from the usage records once per page and attached as
        annotations, so the column is sortable and each row costs nothing more."""
        queryset = super().get_queryset(request)
        if request.resolver_match is None or request.resolver_match.url_name != "guardrails_guardrail_changelist":
            return queryset
        activity = guardrail_activity(since=timezone.now() - ACTIVITY_WINDOW)
        return queryset.annotate(runs_24h=_per_name({n: a.runs for n, a in activity.items()}),
                                 blocks_24h=_per_name({n: a.blocks for n, a in activity.items()}))

    @admin.display(description="blocks (24 h)", ordering="blocks_24h")
    def blocks_24h(self, obj: Guardrail) -> str:
        runs, blocks = getattr(obj, "runs_24h", 0), getattr(obj, "blocks_24h", 0)
        return f"{blocks} of {runs} ({blocks / runs:.1%})" if runs else "no runs"


class EndpointGuardrailInline(admin.TabularInline):
    model = EndpointGuardrail
    fields = ("guardrail", "order")
    extra = 0
    verbose_name = "guardrail"
    verbose_name_plural = "guardrails (run in ascending order)"
