"""Fake Vertex AI with its own fake Google OAuth token endpoint.

`POST /token` plays Google's token endpoint for service accounts: it checks the RS256 signature of the
JWT assertion against `public_key` and issues `ya29.fake-<n>` tokens lasting `token_lifetime` seconds.
Model calls must carry a token it issued. Gemini models answer as FakeGemini does under the Vertex path
(`/v1/projects/<p>/locations/<l>/publishers/google/models/<m>:<method>`, plus `:predict` embeddings);
Claude models (`publishers/anthropic`, `:rawPredict` / `:streamRawPredict`) as FakeAnthropic, once the body
has Vertex's `anthropic_version` and no `model`.

Partner models: Mistral (`publishers/mistralai/models/<m>:rawPredict` / `:streamRawPredict`) answers as
FakeOpenAI does but, like Mistral's API, refuses `stream_options` with a 422 `extra_forbidden` and ends
every stream with a usage chunk; Llama answers on the OpenAI-compatible
`endpoints/openapi/chat/completions`, for `meta/`-prefixed model ids only.

It also plays the GCE metadata server (for `GCE_METADATA_HOST` / `GCE_METADATA_IP`): `GET /` answers the
ping with `Metadata-Flavor: Google`; `/computeMetadata/v1/instance/service-accounts/default/` (the account's
email and scopes, `?recursive=true`), `.../token` (an access token), `/computeMetadata/v1/project/project-id`,
each only with the `Metadata-Flavor: Google` request header, as Google's metadata server documentation
("About VM metadata", "Authenticate workloads using service accounts") describes.
"""
from __future__ import annotations

import base64
from urllib.parse import parse_qs

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Recorded, Reply
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI, fake_embedding

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class FakeVertex(FakeGemini):
    token_lifetime = 3600
    public_key: rsa.RSAPublicKey | None = None

    def __init__(self) -> None:
        super().__init__()
        self._claude = FakeAnthropic()
        self._openai = FakeOpenAI()
        self.issued: list[str] = []

    def reset(self) -> None:
        super().reset()
        self.issued.clear()
        self.token_lifetime = 3600

    @property
    def token_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/token"]

    @property
    def api_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path != "/token" and "/computeMetadata/" not in r.path
                and r.path != "/"]

    def respond(self, request: Recorded) -> Reply:
        if request.path == "/token":
            return self._token(request)
        if request.path == "/" or request.path.startswith("/computeMetadata/"):
            return self._metadata(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.issued:
            return self._error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.")
        method = request.path.rpartition(":")[2]
        if "/publishers/anthropic/" in request.path:
            return self._claude_call(request, method)
        if "/publishers/mistralai/" in request.path:
            return self._mistral_call(request, method)
        if request.path.endswith("/endpoints/openapi/chat/completions"):
            body = request.json if isinstance(request.json, dict) else {}
            if not str(body.get("model", "")).startswith("meta/"):
                return self._error(400, "model must be <publisher>/<model>, e.g. meta/llama-3.3-70b-instruct-maas")
            return self._openai.chat(body)
        if method == "predict":
            return self._predict(request.json or {})
        return super().respond(request)

    def _token(self, request: Recorded) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != JWT_BEARER or not self._signed_by_key(form.get("assertion", "")):
            return Reply(status=400, body={"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        token = f"ya29.fake-{len(self.issued) + 1}"
        self.issued.append(token)
        return Reply(body={"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def _metadata(self, request: Recorded) -> Reply:
        flavor = {"metadata-flavor": "Google"}
        if request.headers.get("metadata-flavor") != "Google":
            return Reply(status=403, body=b"Missing Metadata-Flavor:Google header.", content_type="text/html")
        account = "/computeMetadata/v1/instance/service-accounts/default/"
        if request.path == "/":
            return Reply(body=b"computeMetadata/", content_type="application/text", headers=flavor)
        if request.path == account:
            return Reply(body={"aliases": ["default"], "email": "vm@my-project.iam.gserviceaccount.com",
                               "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}, headers=flavor)
        if request.path == account + "token":
            token = f"ya29.metadata-{len(self.issued) + 1}"
            self.issued.append(token)
            return Reply(body={"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"},
                         headers=flavor)
        if request.path == "/computeMetadata/v1/project/project-id":
            return Reply(body=b"my-project", content_type="application/text", headers=flavor)
        return Reply(status=404, body=b"Not Found", content_type="text/html", headers=flavor)

    def _signed_by_key(self, assertion: str) -> bool:
        try:
            header, payload, signature = assertion.split(".")
            claims = orjson.loads(_b64(payload))
            self.public_key.verify(_b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:  # noqa: BLE001 - any defect in the assertion is Google's invalid_grant
            return False
        return "cloud-platform" in claims.get("scope", "")

    def _claude_call(self, request: Recorded, method: str) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        if body.get("anthropic_version") != "vertex-2023-10-16" or "model" in body:
            return self._error(400, "anthropic_version: vertex-2023-10-16 is required and model is not allowed")
        model = request.path.partition("/models/")[2].rpartition(":")[0]
        if method == "rawPredict" and not body.get("stream"):
            return self._claude.message({**body, "model": model})
        if method == "streamRawPredict" and body.get("stream"):
            return self._claude.stream({**body, "model": model})
        return self._error(400, f"{method} does not match stream={body.get('stream')}")

    def _mistral_call(self, request: Recorded, method: str) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        if "stream_options" in body:
            # Mistral's validation error, as its API returns it for a field it does not know.
            return Reply(status=422, body={"object": "error", "message": {"detail": [{
                "type": "extra_forbidden", "loc": ["body", "stream_options"], "msg": "Extra inputs are not permitted",
                "input": body["stream_options"]}]}, "type": "invalid_request_error", "param": None, "code": None})
        if not body.get("model") or (method == "streamRawPredict") != bool(body.get("stream")):
            return self._error(400, f"{method} needs model, and stream={method == 'streamRawPredict'}")
        return self._openai.chat({**body, "stream_options": {"include_usage": True}} if body.get("stream") else body)

    def _predict(self, body: dict) -> Reply:
        instances = body.get("instances")
        if not instances:
            return self._error(400, "instances must not be empty")
        dimensions = (body.get("parameters") or {}).get("outputDimensionality") or 8
        return Reply(body={"predictions": [
            {"embeddings": {"values": fake_embedding(instance["content"], dimensions),
                            "statistics": {"token_count": float(len(instance["content"].split())), "truncated": False}}}
            for instance in instances]})
