"""Native routes for the vendors' own SDKs: OpenAI (chat, embeddings, Responses), Anthropic Messages and
Gemini generateContent. Bodies go upstream untouched apart from `model` and credentials."""
from __future__ import annotations

from rest_framework.response import Response

from gateway import passthrough, validation
from gateway.errors import BadRequest, NotFound
from gateway.views.base import GatewayView, stream_response
from providers.wire import Api



class BodyModelPassthrough(GatewayView):
    """Routes whose endpoint is named by the body's `model` (OpenAI and Anthropic SDKs)."""

    api = ""
    streams = True

    async def post(self, request):
        body = self.json_body(request)
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise BadRequest("'model' is required and must name a gateway endpoint.", param="model",
                             code="missing_model")
        snapshot, key = await self.authenticate(request)
        ctx = self.context(self.route, self.endpoint(snapshot, key, name), key)
        headers = passthrough.forwarded_headers(request._request.headers)
        if self.streams and validation.wants_stream(body):
            ctx.streaming = True
            stream = await passthrough.forward_stream(ctx, self.api, body, headers, self.api)
            return stream_response(ctx, stream)
        answer = await passthrough.forward(ctx, self.api, body, headers)
        return Response(answer, headers=ctx.response_headers())


class OpenAIChatView(BodyModelPassthrough):
    api, route = Api.OPENAI_CHAT, "passthrough/openai-chat"


class OpenAIEmbeddingsView(BodyModelPassthrough):
    api, route, streams = Api.OPENAI_EMBEDDINGS, "passthrough/openai-embeddings", False


class OpenAIResponsesView(BodyModelPassthrough):
    api, route = Api.OPENAI_RESPONSES, "passthrough/openai-responses"


class AnthropicMessagesView(BodyModelPassthrough):
    api, route = Api.ANTHROPIC_MESSAGES, "passthrough/anthropic-messages"


class AnthropicCountTokensView(BodyModelPassthrough):
    api, route, streams = Api.ANTHROPIC_COUNT_TOKENS, "passthrough/anthropic-count-tokens", False


class GeminiView(GatewayView):
    """POST /gateway/gemini/v1beta/models/<endpoint>:generateContent | :streamGenerateContent"""

    route = "passthrough/gemini"
    METHODS = {"generateContent": Api.GEMINI_GENERATE, "streamGenerateContent": Api.GEMINI_STREAM}

    async def post(self, request, target: str):
        name, _, method = target.rpartition(":")
        api = self.METHODS.get(method)
        if not name or api is None:
            raise NotFound(f"Unknown method '{method}'. Use :generateContent or :streamGenerateContent.")
        body = self.json_body(request)
        snapshot, key = await self.authenticate(request)
        ctx = self.context(f"passthrough/{api}", self.endpoint(snapshot, key, name), key)
        headers = passthrough.forwarded_headers(request._request.headers)
        if api == Api.GEMINI_GENERATE:
            answer = await passthrough.forward(ctx, api, body, headers)
            return Response(answer, headers=ctx.response_headers())
        ctx.streaming = True
        sse = request._request.GET.get("alt") == "sse"
        stream = await passthrough.forward_stream(ctx, api, body, headers, api, json_array=not sse)
        return stream_response(ctx, stream, "text/event-stream" if sse else "application/json")
