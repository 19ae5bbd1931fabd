"""Fake Azure AI Foundry model inference API: `POST /models/chat/completions` and `/models/embeddings` with
the `api-version` query parameter and the key in `api-key` (or `Authorization: Bearer`), the deployment named
by the body's `model`, answers in OpenAI's shapes (Azure AI Model Inference REST reference, api-version
2024-05-01-preview). Errors come in Azure's `{"error": {"code", "message", "status"}}`."""
from __future__ import annotations

from tests.fakes.base import Recorded, Reply
from tests.fakes.openai import FakeOpenAI


class FakeAzureAI(FakeOpenAI):
    api_key = "azure-ai-upstream-0123456789"
    api_versions = ("2024-05-01-preview", "2025-04-01")

    def error_body(self, status: int, message: str) -> dict:
        return {"error": {"code": "Invalid input", "message": message, "status": status}}

    def respond(self, request: Recorded) -> Reply:
        key = request.headers.get("api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if key != self.api_key:
            return Reply(status=401, body={"error": {"code": "401", "message": "Access denied due to invalid "
                                                     "subscription key or wrong API endpoint."}})
        version = dict(part.partition("=")[::2] for part in request.query.split("&") if part).get("api-version")
        if version not in self.api_versions:
            return Reply(status=400, body=self.error_body(400, f"Unsupported api-version {version}"))
        if not request.path.startswith("/models/") or not (request.json or {}).get("model"):
            return Reply(status=404, body=self.error_body(404, "Resource not found"))
        return super().respond(request)
