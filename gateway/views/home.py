"""`/`, where the admin's "View site" leads: a small page pointing to the admin, the usage dashboard, the
health check and the client routes, instead of a bare 404."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

CLIENT_ROUTES = (
    ("POST", "/gateway/mlflow/v1/chat/completions", "OpenAI-compatible chat (any provider), streaming allowed"),
    ("POST", "/gateway/mlflow/v1/embeddings", "OpenAI-compatible embeddings"),
    ("GET", "/gateway/mlflow/v1/models", "the endpoints the calling key may use"),
    ("POST", "/gateway/<endpoint>/mlflow/invocations", "MLflow-style invocations"),
    ("POST", "/gateway/openai/v1/chat/completions", "native OpenAI chat (also /embeddings, /responses)"),
    ("POST", "/gateway/anthropic/v1/messages", "native Anthropic Messages"),
    ("POST", "/gateway/gemini/v1beta/models/<endpoint>:generateContent", "native Gemini"),
    ("GET", "/gateway/admin/v1/usage", "usage aggregates as JSON (admin key or staff session)"),
)


def home(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "gateway/home.html", {"routes": CLIENT_ROUTES})


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for `/favicon.ico` on every admin page; an empty answer keeps "Not Found" out of the log."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "public, max-age=86400"
    return response
