"""The OpenAI-compatible unified routes: any endpoint, whatever provider serves it, in OpenAI's format."""
from __future__ import annotations

from rest_framework.response import Response

from gateway import pipeline, validation
from gateway.errors import BadRequest
from gateway.context import RequestContext
from gateway.views.base import GatewayView, stream_response


async def serve_chat(ctx: RequestContext, body: dict):
    validation.check_chat(body)
    if body.get("stream"):
        ctx.streaming = True
        return stream_response(ctx, await pipeline.chat_stream(ctx, body))
    result = await pipeline.chat(ctx, body)
    return Response(result, headers=ctx.response_headers())


async def serve_embeddings(ctx: RequestContext, body: dict):
    validation.check_embeddings(body)
    result = await pipeline.embeddings(ctx, body)
    return Response(result, headers=ctx.response_headers())


class ChatCompletionsView(GatewayView):
    """POST /gateway/mlflow/v1/chat/completions — the endpoint is named by `model`."""

    route = "unified/chat"

    async def post(self, request):
        body = self.json_body(request)
        snapshot, key = await self.authenticate(request)
        endpoint = self.endpoint(snapshot, key, validation.endpoint_name_from(body))
        body.pop("model")
        return await serve_chat(self.context(self.route, endpoint, key), body)


class EmbeddingsView(GatewayView):
    """POST /gateway/mlflow/v1/embeddings"""

    route = "unified/embeddings"

    async def post(self, request):
        body = self.json_body(request)
        snapshot, key = await self.authenticate(request)
        endpoint = self.endpoint(snapshot, key, validation.endpoint_name_from(body))
        body.pop("model")
        return await serve_embeddings(self.context(self.route, endpoint, key), body)


class InvocationsView(GatewayView):
    """POST /gateway/<endpoint>/mlflow/invocations — `messages` means chat, `input` means embeddings."""

    route = "unified/invocations"

    async def post(self, request, endpoint_name: str):
        body = self.json_body(request)
        snapshot, key = await self.authenticate(request)
        endpoint = self.endpoint(snapshot, key, endpoint_name)
        if "model" in body:
            body.pop("model")
        if "messages" in body:
            return await serve_chat(self.context("unified/chat", endpoint, key), body)
        if "input" in body:
            return await serve_embeddings(self.context("unified/embeddings", endpoint, key), body)
        raise BadRequest("The body must be a chat request (with 'messages') or an embeddings request (with 'input').",
                         code="unknown_payload")


class ModelsView(GatewayView):
    """GET /gateway/mlflow/v1/models — only the endpoints the calling key may use."""

    route = "unified/models"

    async def get(self, request):
        snapshot, key = await self.authenticate(request)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "gateway"}
            for name, endpoint in sorted(snapshot.endpoints.items())
            if key.may_use(name) and endpoint.primaries
        ]
        return Response({"object": "list", "data": data})
