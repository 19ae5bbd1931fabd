"""A fake upstream that answers with recorded provider responses, whatever the path: the conformance table
(tests/fixtures/conformance/) loads a case's replies and the gateway, configured with every provider's
`api_base` on this server, gets them as it would from the provider.

A reply is `{"status", "json"}`, `{"status", "sse": [{"event"?, "data"}]}` (data objects are JSON-encoded,
strings sent as they are), or `{"status", "eventstream": [{"event", "data"}]}` (AWS event-stream frames; an
event `chunk` with `anthropic` carries one base64-wrapped Messages event, as InvokeModelWithResponseStream
does). `sigv4` (AWS access keys) makes it check each call's SigV4 signature as AWS does, over the path as it
arrived, answering AWS's 403 on a mismatch. `reject_fields` plays a provider that refuses unknown fields (Mistral's 422 `extra_forbidden`):
a request body holding one of them gets `rejection` instead. `POST /token` issues Google OAuth tokens for
the Vertex AI models.
"""
from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from tests.fakes.base import FakeUpstream, Recorded, Reply, sse
from datetime import datetime, timezone

from tests.fakes.bedrock import EVENT_STREAM, event_frame
from tests.fakes.sigv4 import AwsCredentials, sign


class ReplayUpstream(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.replies: list[dict] = []
        self.reject_fields: list[str] = []
        self.rejection: dict | None = None
        self.times: list[float] = []
        self.raw_paths: list[bytes] = []
        self.sigv4: AwsCredentials | None = None

    def load(self, replies: list[dict], reject_fields: list[str] | None = None, rejection: dict | None = None,
             sigv4: dict | None = None) -> None:
        self.reset()
        self.replies = replies
        self.reject_fields = reject_fields or []
        self.rejection = rejection
        self.sigv4 = AwsCredentials(**sigv4) if sigv4 else None

    def reset(self) -> None:
        super().reset()
        self.times.clear()
        self.raw_paths.clear()

    async def app(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.raw_paths.append(scope.get("raw_path") or scope["path"].encode())
        await super().app(scope, receive, send)

    @property
    def calls(self) -> list[Recorded]:
        """The provider calls, without the OAuth token requests."""
        return [request for request in self.requests if request.path != "/token"]

    def respond(self, request: Recorded) -> Reply:
        if request.path == "/token":
            return Reply(body={"access_token": "ya29.replay", "expires_in": 3600, "token_type": "Bearer"})
        self.times.append(time.monotonic())
        if self.sigv4 is not None and not signature_matches(request, self.raw_paths[-1], self.sigv4):
            return Reply(status=403, body={"message": "The request signature we calculated does not match the "
                                                      "signature you provided."},
                         headers={"x-amzn-errortype": "SignatureDoesNotMatchException"})
        body = request.json if isinstance(request.json, dict) else {}
        if self.rejection is not None and any(field in body for field in self.reject_fields):
            return reply_of(self.rejection)
        return reply_of(self.replies[min(len(self.calls) - 1, len(self.replies) - 1)])


def signature_matches(request: Recorded, raw_path: bytes, credentials: AwsCredentials) -> bool:
    """AWS re-derives a SigV4 signature from the request it received: the raw path and query as they arrived,
    the signed headers' values, the body bytes, and the date the client put in `x-amz-date`."""
    authorization = request.headers.get("authorization", "")
    scope = authorization.partition("Credential=")[2].split(",")[0].split("/")
    signed = authorization.partition("SignedHeaders=")[2].split(",")[0].split(";")
    try:
        when = datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except (KeyError, ValueError):
        return False
    if len(scope) != 5:
        return False
    headers = {name: request.headers[name] for name in signed
               if name in request.headers and name not in ("x-amz-date", "x-amz-security-token")}
    expected = sign(request.method, raw_path.decode(), request.query, headers, request.body, credentials,
                    scope[2], scope[3], when)
    return expected["authorization"] == authorization


def reply_of(recorded: dict) -> Reply:
    status = recorded.get("status", 200)
    headers = recorded.get("headers") or {}
    if "sse" in recorded:
        return Reply(status=status, chunks=[sse(event["data"], event.get("event")) for event in recorded["sse"]],
                     content_type="text/event-stream", headers=headers)
    if "eventstream" in recorded:
        return Reply(status=status, chunks=[_frame(event) for event in recorded["eventstream"]],
                     content_type=EVENT_STREAM, headers=headers)
    return Reply(status=status, body=recorded.get("json"), headers=headers)


def _frame(event: dict) -> bytes:
    data: Any = event.get("data")
    if "anthropic" in event:
        data = {"bytes": base64.b64encode(orjson.dumps(event["anthropic"])).decode()}
    return event_frame(event["event"], data)
