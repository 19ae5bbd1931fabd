"""Database models: what operators configure (secrets, models, endpoints, budgets, keys) and what the
gateway records (usage). Constraints live here so the admin, `gateway_apply` and any API share them."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from providers.outbound import url_problem

ENDPOINT_NAME_RE = r"^[A-Za-z0-9_.-]+$"
endpoint_name_validator = RegexValidator(
    ENDPOINT_NAME_RE, "Use only letters, digits, '_', '.' and '-' (the name appears in URLs)."
)
# Names that would make /gateway/<endpoint>/... routes ambiguous with the gateway's own route families.
RESERVED_ENDPOINT_NAMES = frozenset({"proxy", "openai", "anthropic", "gemini", "mlflow", "admin"})


class Audited(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        abstract = True


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    AZURE = "azure", "Azure OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    GEMINI = "gemini", "Google Gemini"
    MISTRAL = "mistral", "Mistral"
    GROQ = "groq", "Groq"
    DEEPSEEK = "deepseek", "DeepSeek"
    XAI = "xai", "xAI"
    OPENROUTER = "openrouter", "OpenRouter"
    OLLAMA = "ollama", "Ollama"
    TOGETHER = "together", "Together AI"
    FIREWORKS = "fireworks", "Fireworks AI"
    DATABRICKS = "databricks", "Databricks"
    VLLM = "vllm", "vLLM"
    PORTKEY = "portkey", "Portkey"
    BEDROCK = "bedrock", "Amazon Bedrock"
    VERTEX_AI = "vertex_ai", "Google Vertex AI"
    COHERE = "cohere", "Cohere"
    AZURE_AI = "azure_ai", "Azure AI Foundry (model inference)"
    LITELLM = "litellm", "litellm (optional extra, slower: providers without an adapter of their own)"
    OPENAI_COMPATIBLE = "openai_compatible", "Other OpenAI-compatible (custom api_base)"
    FAKE = "fake", "Fake (built-in, no network; demos and load tests)"


class Secret(Audited):
    """Provider credentials. Values are envelope-encrypted (see gateway/config/crypto.py); only the masked form
    is ever displayed."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Bound into the ciphertext.")
    name = models.CharField(max_length=255, unique=True)
    provider = models.CharField(max_length=64, choices=Provider.choices)
    encrypted_value = models.BinaryField(editable=False)
    wrapped_dek = models.BinaryField(editable=False)
    kek_version = models.PositiveIntegerField(default=1, editable=False)
    masked_value = models.JSONField(default=dict, blank=True, editable=False)
    auth_config = models.JSONField(
        default=dict, blank=True, help_text="Non-secret settings: api_base, api_version, organization, region..."
    )
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse base URLs the outbound policy forbids when they are written, not only when a request
        would use them (host names are resolved again when the configuration is loaded), and timeouts the
        HTTP layer cannot use. The admin, `gateway_apply` and the management API all run this."""
        config = self.auth_config if isinstance(self.auth_config, dict) else {}
        for key in ("api_base",):
            if config.get(key):
                problem = url_problem(str(config[key]), resolve=False)
                if problem:
                    raise ValidationError({"auth_config": f"{key} is not allowed: {problem}."})
        if "timeout" in config and not _is_timeout(config["timeout"]):
            raise ValidationError({"auth_config": 'timeout must be seconds (> 0) or {"connect": seconds, '
                                                  '"read": seconds, "total": seconds}.'})


TIMEOUT_KEYS = {"connect", "read", "total"}


def _is_seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _is_timeout(value: object) -> bool:
    if isinstance(value, dict):
        return bool(value) and set(value) <= TIMEOUT_KEYS and all(map(_is_seconds, value.values()))
    return _is_seconds(value)


class ModelDefinition(Audited):
    """A reusable (provider, provider model name, credentials) triple, with optional price overrides."""

    name = models.CharField(max_length=255, unique=True)
    provider = models.CharField(max_length=64, choices=Provider.choices)
    model_name = models.CharField(max_length=256, help_text="The provider's own model id, e.g. gpt-4o-mini.")
    secret = models.ForeignKey(Secret, on_delete=models.PROTECT, related_name="model_definitions", null=True, blank=True)
    input_cost_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="USD per million input tokens; overrides the built-in price table.",
    )
    output_cost_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="USD per million output tokens; overrides the built-in price table.",
    )
    cached_input_cost_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="USD per million cached input tokens; overrides the built-in price table.",
    )
    audio_input_cost_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="USD per million audio input tokens (realtime sessions); overrides the built-in price table.",
    )
    audio_output_cost_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="USD per million audio output tokens (realtime sessions); overrides the built-in price table.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.provider != Provider.FAKE and self.secret_id is None:
            raise ValidationError({"secret": "A secret is required for this provider."})
        if self.secret_id is not None and self.secret.provider != self.provider:
            compatible = {self.provider, self.secret.provider} <= OPENAI_FAMILY
            if not compatible:
                raise ValidationError(
                    {"secret": f"Secret '{self.secret.name}' is for provider '{self.secret.provider}', not '{self.provider}'."}
                )


OPENAI_FAMILY = {
    "openai", "groq", "deepseek", "xai", "openrouter", "ollama", "mistral", "together", "fireworks",
    "databricks", "vllm", "portkey", "openai_compatible",
}


class RoutingStrategy(models.TextChoices):
    NONE = "", "First primary"
    TRAFFIC_SPLIT = "traffic_split", "Traffic split (weighted)"


class Endpoint(Audited):
    """A named entry point clients call; routes to its linked model definitions."""

    name = models.CharField(max_length=255, unique=True, validators=[endpoint_name_validator])
    routing_strategy = models.CharField(max_length=32, choices=RoutingStrategy.choices, blank=True, default="")
    fallback_strategy = models.CharField(
        max_length=32, choices=[("sequential", "Sequential")], default="sequential"
    )
    fallback_max_attempts = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many fallback models to try at most (empty = all)."
    )
    usage_tracking = models.BooleanField(default=True)
    log_payloads = models.BooleanField(
        default=False, help_text="Keep each request's body and answer (after guardrails) in the request log.")
    # Resilience (all optional; empty means the built-in default).
    retries = models.PositiveIntegerField(
        null=True, blank=True, help_text="Retries on the same model for 429/5xx (empty: 0 with fallbacks, else 1)."
    )
    total_timeout_seconds = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.001)])
    stream_idle_timeout_seconds = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.001)])
    breaker_threshold = models.PositiveIntegerField(
        null=True, blank=True, help_text="Consecutive retryable failures that open a model's circuit (default 5)."
    )
    breaker_cooldown_seconds = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.name and self.name.lower() in RESERVED_ENDPOINT_NAMES:
            raise ValidationError({"name": f"'{self.name}' is reserved for the gateway's own routes; choose "
                                           "another endpoint name."})


class Linkage(models.TextChoices):
    PRIMARY = "primary", "Primary"
    FALLBACK = "fallback", "Fallback"


class EndpointModel(models.Model):
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="links")
    model = models.ForeignKey(ModelDefinition, on_delete=models.PROTECT, related_name="links")
    linkage = models.CharField(max_length=16, choices=Linkage.choices, default=Linkage.PRIMARY)
    weight = models.FloatField(default=1.0, help_text="Relative weight among primaries (normalised).")
    order = models.PositiveIntegerField(default=0, help_text="Position among fallbacks (lower first).")

    class Meta:
        ordering = ["linkage", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "model", "linkage"], name="uniq_endpoint_model_linkage"),
            models.CheckConstraint(condition=models.Q(weight__gt=0), name="endpoint_model_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} → {self.model} ({self.linkage})"

    def clean(self) -> None:
        if self.weight is not None and self.weight <= 0:
            raise ValidationError({"weight": "Weight must be greater than 0."})


def validate_endpoint_links(links: list[tuple[str, float]]) -> list[str]:
    """Rules an endpoint's set of links must obey, given (linkage, weight) pairs; returns problems."""
    problems = []
    if not any(linkage == Linkage.PRIMARY for linkage, _ in links):
        problems.append("An endpoint needs at least one primary model.")
    if any(weight is None or weight <= 0 for _, weight in links):
        problems.append("Weights must be greater than 0.")
    return problems


class BudgetScope(models.TextChoices):
    GLOBAL = "global", "Global"
    ENDPOINT = "endpoint", "Endpoint"
    API_KEY = "api_key", "API key"


class WindowUnit(models.TextChoices):
    MINUTES = "minutes", "Minutes"
    HOURS = "hours", "Hours"
    DAYS = "days", "Days"
    WEEKS = "weeks", "Weeks"
    MONTHS = "months", "Months"


class BudgetAction(models.TextChoices):
    REJECT = "reject", "Reject (HTTP 429)"
    ALERT = "alert", "Alert (webhook)"


class BudgetPolicy(Audited):
    name = models.CharField(max_length=255, unique=True)
    scope = models.CharField(max_length=16, choices=BudgetScope.choices, default=BudgetScope.GLOBAL)
    target = models.CharField(
        max_length=255, blank=True, default="", help_text="Endpoint name or API key name; empty for global."
    )
    amount_usd = models.DecimalField(max_digits=14, decimal_places=6, validators=[MinValueValidator(0)])
    window_unit = models.CharField(max_length=16, choices=WindowUnit.choices, default=WindowUnit.DAYS)
    window_value = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    action = models.CharField(max_length=16, choices=BudgetAction.choices, default=BudgetAction.REJECT)
    webhook_url = models.URLField(blank=True, default="", help_text="Called once per window when an alert fires.")
    last_alert_window_start = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "budget policies"
        constraints = [
            models.CheckConstraint(condition=models.Q(window_value__gte=1), name="budget_window_value_positive"),
            models.CheckConstraint(condition=models.Q(amount_usd__gte=0), name="budget_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.scope == BudgetScope.GLOBAL and self.target:
            raise ValidationError({"target": "A global budget has no target."})
        if self.scope != BudgetScope.GLOBAL and not self.target:
            raise ValidationError({"target": f"A budget with scope '{self.scope}' needs a target name."})
        if self.scope == BudgetScope.ENDPOINT and self.target and not Endpoint.objects.filter(name=self.target).exists():
            raise ValidationError({"target": f"No endpoint named '{self.target}'."})
        if self.scope == BudgetScope.API_KEY and self.target and not ApiKey.objects.filter(name=self.target).exists():
            raise ValidationError({"target": f"No API key named '{self.target}'."})


class RateLimit(Audited):
    """Requests per minute, tokens per minute and concurrent requests allowed to everything (global), an
    endpoint or an API key. Target "*" gives each endpoint or key its own count (gateway/ratelimits/)."""

    name = models.CharField(max_length=255, unique=True)
    scope = models.CharField(max_length=16, choices=BudgetScope.choices, default=BudgetScope.GLOBAL)
    target = models.CharField(max_length=255, blank=True, default="",
                              help_text='Endpoint name or API key name, or "*" for each one separately; empty for global.')
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    max_concurrent = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(requests_per_minute__isnull=False) | models.Q(tokens_per_minute__isnull=False)
                | models.Q(max_concurrent__isnull=False), name="rate_limit_has_a_limit"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.requests_per_minute is None and self.tokens_per_minute is None and self.max_concurrent is None:
            raise ValidationError("Set at least one of requests per minute, tokens per minute, max concurrent.")
        if self.scope == BudgetScope.GLOBAL and self.target:
            raise ValidationError({"target": "A global rate limit has no target."})
        if self.scope != BudgetScope.GLOBAL and not self.target:
            raise ValidationError({"target": f"A rate limit with scope '{self.scope}' needs a target name or \"*\"."})
        if self.scope == BudgetScope.ENDPOINT and self.target not in ("", "*") \
                and not Endpoint.objects.filter(name=self.target).exists():
            raise ValidationError({"target": f"No endpoint named '{self.target}'."})
        if self.scope == BudgetScope.API_KEY and self.target not in ("", "*") \
                and not ApiKey.objects.filter(name=self.target).exists():
            raise ValidationError({"target": f"No API key named '{self.target}'."})


class ApiKey(models.Model):
    """A client key for the /gateway/ routes. Only a hash is stored; the key is shown once at creation."""

    name = models.CharField(max_length=255, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    key_hash = models.CharField(max_length=128, unique=True, editable=False)
    prefix = models.CharField(max_length=32, editable=False, help_text="First characters, for recognising a key.")
    endpoints = models.ManyToManyField(Endpoint, blank=True, help_text="Endpoints this key may use (none = all).")
    is_active = models.BooleanField(default=True)
    is_admin = models.BooleanField(default=False, help_text="May read the usage API.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return self.name


class ConfigVersion(models.Model):
    """A single counter bumped on every configuration change; server processes poll it to know when to
    rebuild their in-memory snapshot."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class UsageRecord(models.Model):
    """One row per gateway request, written in batches off the request path."""

    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    endpoint_name = models.CharField(max_length=255, db_index=True)
    model_name = models.CharField(max_length=255, blank=True, default="", help_text="Model definition used.")
    provider = models.CharField(max_length=64, blank=True, default="")
    api_key_name = models.CharField(max_length=255, blank=True, default="", db_index=True)
    route = models.CharField(max_length=64, blank=True, default="")
    streaming = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(default=200)
    error_type = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=1)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=10, null=True, blank=True)
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True)
    overhead_ms = models.FloatField(default=0)
    guardrails = models.JSONField(default=list, blank=True)
    usage_estimated = models.BooleanField(
        default=False, help_text="The provider never reported usage (stream abandoned or cut): tokens are estimated.",
    )
    user_name = models.CharField(
        max_length=150, blank=True, default="", db_default="", db_index=True,
        help_text="The staff user who sent the request from the admin's playground (no API key then).",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["endpoint_name", "created_at"]), models.Index(fields=["api_key_name", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.endpoint_name} {self.status_code}"


class RequestLog(models.Model):
    """A request's payloads, for endpoints with `log_payloads`: the body and the answer as the gateway passed
    them on (after guardrails), each capped at GATEWAY_REQUEST_LOG_MAX_BYTES; written in batches off the
    request path (gateway/requestlogs/)."""

    created_at = models.DateTimeField()
    request_id = models.CharField(max_length=64, db_index=True)
    endpoint_name = models.CharField(max_length=255)
    model_name = models.CharField(max_length=255, blank=True, default="")
    api_key_name = models.CharField(max_length=255, blank=True, default="")
    route = models.CharField(max_length=64, blank=True, default="")
    streaming = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(default=200)
    error_type = models.CharField(max_length=64, blank=True, default="")
    latency_ms = models.FloatField(default=0)
    request_body = models.TextField(blank=True, default="")
    response_body = models.TextField(blank=True, default="")
    truncated = models.BooleanField(default=False, help_text="A body was longer than the cap and was cut.")
    attempts = models.JSONField(default=list, blank=True)
    guardrails = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at"], name="requestlog_created"),
            models.Index(fields=["endpoint_name", "created_at"], name="requestlog_endpoint_created"),
            models.Index(fields=["api_key_name", "created_at"], name="requestlog_key_created"),
            models.Index(fields=["model_name", "created_at"], name="requestlog_model_created"),
            models.Index(fields=["status_code", "created_at"], name="requestlog_status_created"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.endpoint_name} {self.status_code} {self.request_id}"


class PriceEntry(models.Model):
    """An operator-loaded price (`manage.py load_prices FILE`). It overrides the built-in table
    (gateway/config/prices.json) for the same provider and model; a model definition's own prices override both."""

    provider = models.CharField(max_length=64)
    model_name = models.CharField(max_length=256, help_text="The provider's model id, as in the price file.")
    input_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    output_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    cached_input_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    audio_input_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    audio_output_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    context_window = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens, for the model catalog.")
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens, for the model catalog.")
    capabilities = models.JSONField(default=list, blank=True, help_text="For the model catalog, e.g. chat, tools.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model_name"]
        verbose_name_plural = "price entries"
        constraints = [models.UniqueConstraint(fields=["provider", "model_name"], name="uniq_price_provider_model")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model_name}"


class BudgetWindow(models.Model):
    """A policy's spend and in-flight reservations in one window (database budget backend).

    Amounts are integer nano-USD so the conditional UPDATE that admits a request compares exactly on every
    database. `subject` is the policy's scope and target: retargeting a policy starts a fresh count."""

    policy = models.ForeignKey(BudgetPolicy, on_delete=models.CASCADE, related_name="windows")
    subject = models.CharField(max_length=300)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField(db_index=True)
    spent_nanos = models.BigIntegerField(default=0)
    reserved_nanos = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "subject", "window_start", "window_end"],
                                    name="uniq_budget_window"),
        ]

    def __str__(self) -> str:
        return f"{self.policy_id} {self.subject} {self.window_start:%Y-%m-%d %H:%M}"


class BudgetReservation(models.Model):
    """One request's hold on a window until it settles. Holds expire, so a process that dies mid-request
    cannot keep budget reserved for the rest of the window."""

    window = models.ForeignKey(BudgetWindow, on_delete=models.CASCADE, related_name="reservations")
    lease = models.CharField(max_length=64)
    amount_nanos = models.BigIntegerField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["window", "expires_at"])]
        constraints = [models.UniqueConstraint(fields=["window", "lease"], name="uniq_budget_lease")]
