"""Ready-to-copy client code for one endpoint: pure functions of this gateway's URL and the endpoint's name.
They read the key from GATEWAY_API_KEY; a real key is never written into them."""
from __future__ import annotations

import json
from dataclasses import dataclass

KEY_VARIABLE = "GATEWAY_API_KEY"


@dataclass(frozen=True)
class Snippet:
    id: str
    title: str
    code: str
    api: str | None  # the native API it calls (providers.wire.Api); None for the unified route


def snippets(base_url: str, endpoint: str) -> list[Snippet]:
    base = base_url.rstrip("/")
    name = json.dumps(endpoint)
    body = json.dumps({"model": endpoint, "messages": [{"role": "user", "content": "Hello!"}]})
    return [
        Snippet("curl", "curl", (
            f"curl {base}/gateway/mlflow/v1/chat/completions \\\n"
            f'  -H "Authorization: Bearer ${KEY_VARIABLE}" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f"  -d '{body}'"), None),
        Snippet("openai", "OpenAI SDK (Python)", (
            "import os\nfrom openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{base}/gateway/mlflow/v1", api_key=os.environ["{KEY_VARIABLE}"])\n'
            f'answer = client.chat.completions.create(model={name}, messages=[{{"role": "user", "content": "Hello!"}}])\n'
            "print(answer.choices[0].message.content)"), None),
        Snippet("anthropic", "Anthropic SDK (Python)", (
            "import os\nimport anthropic\n\n"
            f'client = anthropic.Anthropic(base_url="{base}/gateway/anthropic", api_key=os.environ["{KEY_VARIABLE}"])\n'
            f'answer = client.messages.create(model={name}, max_tokens=512,\n'
            '                                 messages=[{"role": "user", "content": "Hello!"}])\n'
            "print(answer.content[0].text)"), "anthropic-messages"),
        Snippet("gemini", "Google Gen AI SDK (Python)", (
            "import os\nfrom google import genai\nfrom google.genai import types\n\n"
            f'client = genai.Client(api_key=os.environ["{KEY_VARIABLE}"], http_options=types.HttpOptions(\n'
            f'    base_url="{base}/gateway/gemini", api_version="v1beta"))\n'
            f'answer = client.models.generate_content(model={name}, contents="Hello!")\n'
            "print(answer.text)"), "gemini-generate"),
    ]
