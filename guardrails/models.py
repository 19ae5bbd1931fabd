"""Guardrail definitions and their per-endpoint ordering."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from guardrails.kinds import validate_settings


class GuardrailKind(models.TextChoices):
    KEYWORDS = "keywords", "Keywords"
    REGEX = "regex", "Regular expression"
    PII = "pii", "PII detection"
    LLM_JUDGE = "llm_judge", "LLM judge"
    MAX_TOKENS = "max_tokens", "Size limit"


class Stage(models.TextChoices):
    BEFORE = "before", "Before the model call"
    AFTER = "after", "After the model call"


class Action(models.TextChoices):
    BLOCK = "block", "Block"
    SANITIZE = "sanitize", "Sanitize"


class FailMode(models.TextChoices):
    CLOSED = "closed", "Closed (refuse with 503 if the guardrail errors)"
    OPEN = "open", "Open (skip and log if the guardrail errors)"


class Guardrail(models.Model):
    name = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=32, choices=GuardrailKind.choices)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.BEFORE)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.BLOCK)
    settings = models.JSONField(default=dict, blank=True, help_text="Kind-specific settings (see README).")
    fail_mode = models.CharField(max_length=16, choices=FailMode.choices, default=FailMode.CLOSED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Settings are checked by the kind's own rules, so the admin and `gateway_apply` refuse a guardrail
        that could only fail at request time."""
        if self.kind in GuardrailKind.values:
            problems = validate_settings(self.kind, self.settings)
            if problems:
                raise ValidationError({"settings": problems})


class EndpointGuardrail(models.Model):
    endpoint = models.ForeignKey("gateway.Endpoint", on_delete=models.CASCADE, related_name="guardrail_links")
    guardrail = models.ForeignKey(Guardrail, on_delete=models.CASCADE, related_name="endpoint_links")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "guardrail"], name="uniq_endpoint_guardrail")]

    def __str__(self) -> str:
        return f"{self.endpoint} · {self.guardrail}"
