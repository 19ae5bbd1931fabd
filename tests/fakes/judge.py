"""Fake judge upstream: an OpenAI-compatible server that answers the gateway's llm_judge prompts.

A text fails when it contains one of `flagged` words. Answers come the way real models often write them:
a short sentence, then the JSON verdict in a code fence. Asked to sanitize (the system prompt mentions
"texts"), it also returns the texts with flagged words starred out. Any other prompt gets the usual echo.
"""
from __future__ import annotations

import json

from tests.fakes.base import last_user_text
from tests.fakes.openai import FakeOpenAI

MARKER = "strings):\n"


class FakeJudge(FakeOpenAI):
    flagged = ("idiot", "stupid")

    def _message(self, body: dict) -> tuple[dict, str]:
        prompt = last_user_text(body.get("messages") or [])
        if MARKER not in prompt:
            return super()._message(body)
        texts = json.loads(prompt.split(MARKER, 1)[1])
        failing = any(word in text.lower() for text in texts for word in self.flagged)
        verdict: dict = {"pass": not failing, "reason": "it contains an insult" if failing else "it is polite"}
        system = str((body.get("messages") or [{}])[0].get("content", ""))
        if failing and '"texts"' in system:
            verdict["texts"] = [self._starred(text) for text in texts]
        answer = f"Here is my assessment.\n```json\n{json.dumps(verdict)}\n```"
        return {"role": "assistant", "content": answer}, "stop"

    def _starred(self, text: str) -> str:
        for word in self.flagged:
            text = text.replace(word, "*" * len(word))
        return text
