"""Fake Gemini API upstream speaking the REST wire format: generateContent, streamGenerateContent (SSE with
`?alt=sse`, otherwise the incrementally sent JSON array), embedContent and batchEmbedContents."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson

from tests.fakes.base import FakeUpstream, Recorded, Reply
from tests.fakes.openai import fake_embedding

USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 7, "thoughtsTokenCount": 2, "totalTokenCount": 20,
         "cachedContentTokenCount": 3}
# Per model, usage in the other shapes Gemini sends: tool-use prompt tokens (input) beside the prompt, and
# thinking tokens already counted inside the candidates (prompt + candidates = total).
USAGE_BY_MODEL = {
    "gemini-tool-usage": {"promptTokenCount": 11, "toolUsePromptTokenCount": 4, "candidatesTokenCount": 7,
                          "thoughtsTokenCount": 2, "totalTokenCount": 24, "cachedContentTokenCount": 3},
    "gemini-thoughts-inside": {"promptTokenCount": 11, "candidatesTokenCount": 9, "thoughtsTokenCount": 2,
                               "totalTokenCount": 20, "cachedContentTokenCount": 3},
}
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 503: "UNAVAILABLE",
                504: "DEADLINE_EXCEEDED"}
PART_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
               "codeExecutionResult"}


class FakeGemini(FakeUpstream):
    """Answers `echo: <last user text>`; with function declarations offered (and calling not disabled) and a
    user text turn last, calls the first allowed function with `tool_args` (no call id, as Gemini often
    does). With `api_key` set, requests must carry it, and a wrong key gets Google's 400 answer."""

    tool_args: dict[str, Any] = {"city": "Paris"}
    api_key: str | None = None

    def model_of(self, request: Recorded) -> str:
        return request.path.partition("/models/")[2].split(":", 1)[0]

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}

    def _error(self, status: int, message: str) -> Reply:
        return Reply(status=status, body=self.error_body(status, message))

    def respond(self, request: Recorded) -> Reply:
        query = parse_qs(request.query)
        if self.api_key is not None and self.api_key not in (request.headers.get("x-goog-api-key"),
                                                             *query.get("key", [])):
            return self._error(400, "API key not valid. Please pass a valid API key.")
        if request.method != "POST" or not isinstance(request.json, dict):
            return self._error(400, "Invalid JSON payload received.")
        model = self.model_of(request)
        method = request.path.rpartition(":")[2]
        if method == "generateContent":
            return self._generate(request.json, model)
        if method == "streamGenerateContent":
            return self._stream(request.json, model, sse=query.get("alt") == ["sse"])
        if method == "embedContent":
            return self._embed(request.json)
        if method == "batchEmbedContents":
            return self._batch_embed(request.json, model)
        return self._error(404, f"Method not found: {request.path}")

    # -- generateContent --------------------------------------------------------------------------
    def _problem(self, body: dict) -> str | None:
        """The request checks Google makes that a translation bug would trip."""
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        for i, content in enumerate(contents):
            if content.get("role") not in ("user", "model"):
                return f"* GenerateContentRequest.contents[{i}].role: must be 'user' or 'model'"
            parts = content.get("parts")
            if not parts:
                return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            for j, part in enumerate(parts):
                if len(PART_FIELDS & part.keys()) != 1:
                    return f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data'"
        return None

    def _answer(self, body: dict) -> list[dict]:
        contents = body["contents"]
        declarations = [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        last = contents[-1]
        if (declarations and calling.get("mode") != "NONE" and last["role"] == "user"
                and any("text" in part for part in last["parts"])):
            name = (calling.get("allowedFunctionNames") or [declarations[0]["name"]])[0]
            return [{"functionCall": {"name": name, "args": self.tool_args}}]
        return [{"text": f"echo: {_last_user_text(contents)}"}]

    @staticmethod
    def _logprobs_result(parts: list[dict], top: int) -> dict:
        """Gemini's `logprobsResult` (google-genai 3.6.1 `LogprobsResult`), one token per text part, each with
        `top` alternatives, the chosen one first."""
        chosen = [{"token": part["text"], "tokenId": i, "logProbability": -0.25}
                  for i, part in enumerate(parts) if "text" in part]
        alternatives = [{"candidates": [token, *({"token": f"alt{k}", "tokenId": 1000 + k, "logProbability": -3.0 - k}
                                                 for k in range(1, top))]}
                        for token in chosen]
        return {"chosenCandidates": chosen, "topCandidates": alternatives if top else [],
                "logProbabilitySum": -0.25 * len(chosen)}

    def _response(self, model: str, parts: list[dict], candidates: int, *, finish: bool, usage: dict,
                  config: dict | None = None) -> dict:
        candidate = {"content": {"parts": parts, "role": "model"}}
        if (config or {}).get("responseLogprobs"):
            candidate["logprobsResult"] = self._logprobs_result(parts, config.get("logprobs") or 0)
        if finish:
            candidate["finishReason"] = "STOP"
        return {"candidates": [{**candidate, "index": i} for i in range(candidates)], "usageMetadata": usage,
                "modelVersion": model, "responseId": f"fake-response-{len(self.requests)}"}

    def _generate(self, body: dict, model: str) -> Reply:
        problem = self._problem(body)
        if problem:
            return self._error(400, problem)
        count = (body.get("generationConfig") or {}).get("candidateCount", 1)
        usage = USAGE_BY_MODEL.get(model, USAGE)
        return Reply(body=self._response(model, self._answer(body), count, finish=True, usage=usage,
                                         config=body.get("generationConfig")))

    def _stream(self, body: dict, model: str, *, sse: bool) -> Reply:
        problem = self._problem(body)
        if problem:
            return self._error(400, problem)
        count = (body.get("generationConfig") or {}).get("candidateCount", 1)
        answer = self._answer(body)
        if "text" in answer[0]:
            words = answer[0]["text"].split(" ")
            pieces = [[{"text": word if i == 0 else " " + word}] for i, word in enumerate(words)]
        else:
            pieces = [answer]
        usage = USAGE_BY_MODEL.get(model, USAGE)
        partial = {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": usage["promptTokenCount"]}
        events = [self._response(model, parts, count, finish=i == len(pieces) - 1,
                                 usage=usage if i == len(pieces) - 1 else partial, config=body.get("generationConfig"))
                  for i, parts in enumerate(pieces)]
        if sse:
            return Reply(chunks=[b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events],
                         content_type="text/event-stream")
        # Without alt=sse Google streams one JSON array, element by element.
        chunks = [(b"[" if i == 0 else b"\n,\r\n") + orjson.dumps(e, option=orjson.OPT_INDENT_2)
                  for i, e in enumerate(events)]
        return Reply(chunks=[*chunks, b"\n]"], content_type="application/json")

    # -- embeddings -------------------------------------------------------------------------------
    @staticmethod
    def _values(request: dict) -> list[float]:
        text = " ".join(p.get("text", "") for p in (request.get("content") or {}).get("parts") or [])
        return fake_embedding(text, request.get("outputDimensionality") or 8)

    def _embed(self, body: dict) -> Reply:
        if not (body.get("content") or {}).get("parts"):
            return self._error(400, "* EmbedContentRequest.content: content is not specified")
        return Reply(body={"embedding": {"values": self._values(body)}})

    def _batch_embed(self, body: dict, model: str) -> Reply:
        requests = body.get("requests")
        if not requests:
            return self._error(400, "* BatchEmbedContentsRequest.requests: requests is not specified")
        for i, request in enumerate(requests):
            if request.get("model") != f"models/{model}":
                return self._error(400, f"* BatchEmbedContentsRequest.requests[{i}].model: unexpected model name "
                                        f"format (must match models/{model})")
        return Reply(body={"embeddings": [{"values": self._values(request)} for request in requests]})


def _last_user_text(contents: list[dict]) -> str:
    for content in reversed(contents):
        texts = [part["text"] for part in content.get("parts") or [] if "text" in part]
        if content.get("role") == "user" and texts:
            return " ".join(texts)
    return ""
