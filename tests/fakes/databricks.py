"""Fake Databricks workspace: the OAuth machine-to-machine token endpoint (`POST /oidc/v1/token`, client id
and secret in HTTP Basic auth, `grant_type=client_credentials&scope=all-apis`, answering
`{"access_token", "scope", "token_type": "Bearer", "expires_in"}` as Databricks' "Authorize unattended access
to Databricks resources with a service principal using OAuth" shows it), and Model Serving's
OpenAI-compatible endpoints under `/serving-endpoints/`, answered as FakeOpenAI does. Serving calls must
carry an issued token or the personal access token `pat`."""
from __future__ import annotations

import base64
from urllib.parse import parse_qs

from tests.fakes.base import Recorded, Reply
from tests.fakes.openai import FakeOpenAI


class FakeDatabricks(FakeOpenAI):
    client_id = "6f1c0d6e-sp-client"
    client_secret = "dose-sp-secret-0123"
    pat = "dapi-upstream-0123456789"
    token_lifetime = 3600

    def __init__(self) -> None:
        super().__init__()
        self.issued: list[str] = []

    def reset(self) -> None:
        super().reset()
        self.issued.clear()
        self.token_lifetime = 3600

    @property
    def token_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/oidc/v1/token"]

    def error_body(self, status: int, message: str) -> dict:
        return {"error_code": "BAD_REQUEST", "message": message}

    def respond(self, request: Recorded) -> Reply:
        if request.path == "/oidc/v1/token":
            return self._token(request)
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued and bearer != self.pat:
            return Reply(status=401, body={"error_code": "401", "message": "Credential was not sent or was of an "
                                                                             "unsupported type for this API."})
        if not request.path.startswith("/serving-endpoints/"):
            return Reply(status=404, body=self.error_body(404, f"no route {request.path}"))
        return super().respond(request)

    def _token(self, request: Recorded) -> Reply:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        form = {name: values[0] for name, values in parse_qs(request.body.decode()).items()}
        if request.headers.get("authorization") != f"Basic {expected}":
            return Reply(status=401, body={"error": "invalid_client", "error_description": "Client authentication failed"})
        if form.get("grant_type") != "client_credentials" or form.get("scope") != "all-apis":
            return Reply(status=400, body={"error": "invalid_request", "error_description": "bad grant or scope"})
        token = f"eyJraWQiOiJmYWtlIn0.databricks-{len(self.issued) + 1}"
        self.issued.append(token)
        return Reply(body={"access_token": token, "scope": "all-apis", "token_type": "Bearer",
                           "expires_in": self.token_lifetime})
