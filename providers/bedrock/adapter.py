"""Adapter for Amazon Bedrock: unified chat (plain and streaming) through the Converse API, Titan text
embeddings and the Anthropic Messages passthrough through InvokeModel.

`auth_config`: `auth_mode` (`api_key`: a Bedrock API key sent as a bearer token; `access_keys`: AWS
access keys; `default_chain`: botocore's default credential chain, with `aws_profile_name`), optionally
`aws_role_arn` (+ `aws_role_session_name`, `aws_external_id`) to assume a role on top of the keys or the
chain, `aws_region_name` (default us-east-1), `api_base` (default
https://bedrock-runtime.<region>.amazonaws.com), `timeout`. Credentials: `api_key`, or
`aws_access_key_id`, `aws_secret_access_key` and optionally `aws_session_token`; none for the chain.

Everything is plain async HTTP on the shared pooled client: no SDK session or client per request, no
worker thread reading a stream (closing the iterator closes the upstream response at once). Signing is
botocore's SigV4 signer, in-process; credentials that need fetching or refreshing come from
providers/bedrock/credentials.py, which does that in a worker thread, cached.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import httpx
import orjson

from providers import http
from providers.base import (CallStats, ModelTarget, PassthroughResponse, ProviderAdapter, ProviderError,
                            UnsupportedOperation)
from providers.bedrock import credentials, invoke, translate
from providers.registry import AUTH_MODES
from providers.bedrock.eventstream import EventStreamDecoder, event_of, malformed
from providers.wire import Api

DEFAULT_REGION = "us-east-1"
EVENT_STREAM = "application/vnd.amazon.eventstream"
SIGNING_NAME = "bedrock"
# Titan embeds one text per call; a large batch is spread over this many concurrent calls, not thousands.
EMBEDDING_CONCURRENCY = 8
# The model id is a path segment: characters RFC 3986 allows in one (`:` of `...-v1:0`, those of ARNs) stay
# as they are, since the aiohttp transport re-parses the URL and decodes `%3A`; a percent-encoding would be
# signed but not sent, and AWS would answer SignatureDoesNotMatch. `/` (in ARNs) is still encoded.
PATH_SEGMENT_SAFE = ":@!$&'()*+,;="


def _credentials(target: ModelTarget, region: str) -> tuple[str | None, credentials.Source | None]:
    """(bearer API key, AWS credential source): exactly one is set. Raises ValueError, which makes the model
    unusable with this message, when the secret does not fit the auth mode."""
    values, config = target.credentials, target.auth_config
    mode = config.get("auth_mode") or ("access_keys" if values.get("aws_access_key_id") else
                                       "default_chain" if not values.get("api_key") else "api_key")
    if mode == "api_key":
        if not values.get("api_key"):
            raise ValueError("Bedrock auth_mode 'api_key' needs the secret value 'api_key' (a Bedrock API key).")
        return str(values["api_key"]), None
    if mode not in AUTH_MODES["bedrock"]:
        raise ValueError(f"Bedrock auth_mode '{mode}' is not supported; use one of {', '.join(AUTH_MODES['bedrock'])}.")
    return None, credentials.source_for(mode, values, config, region)


class BedrockAdapter(ProviderAdapter):
    provider = "bedrock"
    passthrough_apis = frozenset({Api.ANTHROPIC_MESSAGES})

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(target, client)
        self.region = str(target.auth_config.get("aws_region_name") or DEFAULT_REGION)
        if not re.fullmatch(r"[a-z0-9-]+", self.region):
            raise ValueError(f"aws_region_name '{self.region}' is not an AWS region name.")
        self.base = str(target.auth_config.get("api_base")
                        or f"https://bedrock-runtime.{self.region}.amazonaws.com").rstrip("/")
        prefix = f"{self.base}/model/{quote(target.model_name, safe=PATH_SEGMENT_SAFE)}"
        self.urls = {op: f"{prefix}/{op}" for op in ("converse", "converse-stream", "invoke",
                                                     "invoke-with-response-stream")}
        self.api_key, self.aws_credentials = _credentials(target, self.region)
        if not invoke.is_anthropic_model(target.model_name):
            self.passthrough_apis = frozenset()

    def upstream_url(self) -> str:
        return self.base

    async def _authorize(self, request: httpx.Request) -> None:
        if self.api_key is not None:
            request.headers["authorization"] = f"Bearer {self.api_key}"
            return
        frozen = await self.aws_credentials.frozen()
        wire_url = f"{request.url.scheme}://{request.headers['host']}{request.url.raw_path.decode()}"
        request.headers.update(credentials.sign(
            request.method, wire_url, {"host": request.headers["host"], "content-type": request.headers["content-type"]},
            request.content, frozen, self.region, SIGNING_NAME))

    async def _send(self, url: str, body: dict, stats: CallStats | None, *, stream: bool = False) -> httpx.Response:
        """POST `body` signed for exactly the bytes and path that go on the wire; upstream error statuses
        raise here, before anything is relayed."""
        request = self.client.build_request("POST", url, content=orjson.dumps(body), headers={
            "content-type": "application/json", "accept": EVENT_STREAM if stream else "application/json"})
        await self._authorize(request)
        return await http.send(self.client, request, stats, self.provider, stream=stream)

    async def _post_json(self, url: str, body: dict, stats: CallStats | None) -> dict:
        response = await self._send(url, body, stats)
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise ProviderError(502, "Provider 'bedrock' returned a body that is not a JSON object.", retryable=True)
        return answer

    async def _events(self, response: httpx.Response) -> AsyncIterator[tuple[str, dict]]:
        """(event type, payload) pairs from an event-stream response, which is closed when iteration ends
        for any reason."""
        decoder = EventStreamDecoder()
        try:
            async for data in response.aiter_bytes():
                for message in decoder.feed(data):
                    yield event_of(message)
        except httpx.HTTPError as exc:
            raise http.transport_error(exc, self.provider) from None
        finally:
            await response.aclose()
        if decoder.pending:
            raise malformed("the stream ended inside a frame")

    async def chat(self, request: dict, stats: CallStats) -> dict:
        answer = await self._post_json(self.urls["converse"], translate.converse_request(request), stats)
        return translate.chat_completion(answer, self.target.model_name)

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        body = translate.converse_request(request)
        response = await self._send(self.urls["converse-stream"], body, stats, stream=True)
        translator = translate.StreamTranslator(self.target.model_name)
        events = self._events(response)
        try:
            async for event, data in events:
                for chunk in translator.feed(event, data):
                    yield chunk
        finally:
            await events.aclose()
        if not translator.finished:
            raise http.incomplete_stream(self.provider, "messageStop")
        yield translator.usage_chunk()

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        if not invoke.is_titan_embedding_model(self.target.model_name):
            raise UnsupportedOperation(
                f"Bedrock embeddings are supported for Amazon Titan text embedding models (amazon.titan-embed-*), "
                f"and '{self.target.model_name}' is not one.")
        bodies = invoke.titan_bodies(request)

        async def embed(body: dict) -> dict:
            return await self._post_json(self.urls["invoke"], body, None)

        answers = await http.post_each(embed, bodies, stats, concurrency=EMBEDDING_CONCURRENCY)
        return invoke.embeddings_response(answers, self.target.model_name, request.get("encoding_format"))

    async def passthrough(self, api: str, body: dict, headers: Mapping[str, str], stats: CallStats,
                          *, stream: bool) -> PassthroughResponse:
        """Anthropic Messages bodies go to InvokeModel for Claude models; streams come back in event-stream
        framing and are re-emitted as the Messages SSE events they carry."""
        if api not in self.passthrough_apis:
            raise UnsupportedOperation(f"Provider 'bedrock' does not support the '{api}' API for model "
                                       f"'{self.target.model_name}' (only Anthropic models speak anthropic-messages).")
        upstream = invoke.anthropic_body(body, dict(headers))
        if not stream:
            return PassthroughResponse(200, {}, body=await self._post_json(self.urls["invoke"], upstream, stats))
        response = await self._send(self.urls["invoke-with-response-stream"], upstream, stats, stream=True)
        return PassthroughResponse(200, {"content-type": "text/event-stream"}, stream=self._anthropic_sse(response))

    async def _anthropic_sse(self, response: httpx.Response) -> AsyncIterator[bytes]:
        events = self._events(response)
        try:
            async for event, payload in events:
                if event == "chunk":
                    yield invoke.anthropic_sse(payload)
        finally:
            await events.aclose()
