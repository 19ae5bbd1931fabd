"""Client-facing routes under /gateway/, plus /health."""
from django.urls import path

from gateway.views import health, unified

urlpatterns = [
    path("health", health.health, name="health"),
    path("gateway/mlflow/v1/chat/completions", unified.ChatCompletionsView.as_view(), name="unified-chat"),
    path("gateway/mlflow/v1/embeddings", unified.EmbeddingsView.as_view(), name="unified-embeddings"),
    path("gateway/mlflow/v1/models", unified.ModelsView.as_view(), name="unified-models"),
    path("gateway/<str:endpoint_name>/mlflow/invocations", unified.InvocationsView.as_view(), name="invocations"),
]
