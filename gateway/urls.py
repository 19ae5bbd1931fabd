"""Client-facing routes under /gateway/, plus /health, /ready, the usage API and the management API
(/gateway/admin/v1/, served by Django's standard handler: see gateway_project/asgi.py)."""
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from gateway.usage import dashboard
from gateway.views import health, passthrough, unified

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("gateway/mlflow/v1/chat/completions", unified.ChatCompletionsView.as_view(), name="unified-chat"),
    path("gateway/mlflow/v1/embeddings", unified.EmbeddingsView.as_view(), name="unified-embeddings"),
    path("gateway/mlflow/v1/models", unified.ModelsView.as_view(), name="unified-models"),
    path("gateway/openai/v1/chat/completions", passthrough.OpenAIChatView.as_view(), name="openai-chat"),
    path("gateway/openai/v1/embeddings", passthrough.OpenAIEmbeddingsView.as_view(), name="openai-embeddings"),
    path("gateway/openai/v1/responses", passthrough.OpenAIResponsesView.as_view(), name="openai-responses"),
    path("gateway/anthropic/v1/messages", passthrough.AnthropicMessagesView.as_view(), name="anthropic-messages"),
    path("gateway/anthropic/v1/messages/count_tokens", passthrough.AnthropicCountTokensView.as_view(),
         name="anthropic-count-tokens"),
    path("gateway/gemini/v1beta/models/<str:target>", passthrough.GeminiView.as_view(), name="gemini"),
    # GET only (anything else is a JSON 405), so CSRF's HTML refusal of other methods is not needed.
    path("gateway/admin/v1/usage", csrf_exempt(dashboard.usage_api), name="usage-api"),
    path("gateway/admin/v1/", include("gateway.adminapi.urls")),
    path("gateway/<str:endpoint_name>/mlflow/invocations", unified.InvocationsView.as_view(), name="invocations"),
]
