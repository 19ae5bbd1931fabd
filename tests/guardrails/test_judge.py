"""The `llm_judge` kind: reading whatever the judge answered, and calling the judge endpoint in-process."""
from __future__ import annotations

import pytest

from gateway.usage import records as usage
from gateway.errors import GuardrailBlocked, ServiceUnavailable
from guardrails import engine
from guardrails.kinds.judge import JudgeAnswer, JudgeError, parse_answer
from tests.guardrails.helpers import KEY, endpoint, spec

ANSWERS = [
    ('{"pass": true, "reason": "fine"}', JudgeAnswer(True, "fine")),
    ('```json\n{"pass": false, "reason": "mentions weapons"}\n```', JudgeAnswer(False, "mentions weapons")),
    ('Sure! My verdict: {"pass": false, "reason": "rude"} Hope that helps {', JudgeAnswer(False, "rude")),
    ('{"passed": "yes"}', JudgeAnswer(True)),
    ('{"verdict": "FAIL", "rationale": "off topic"}', JudgeAnswer(False, "off topic")),
    ('{"compliant": false, "reason": "pii", "texts": ["[redacted]"]}', JudgeAnswer(False, "pii", ["[redacted]"])),
    ('{"flagged": true, "explanation": "spam"}', JudgeAnswer(False, "spam")),
    ("true", JudgeAnswer(True)),
    ("Yes", JudgeAnswer(True)),
    ("PASS.", JudgeAnswer(True)),
    ("No, it contains an insult.", JudgeAnswer(False, "it contains an insult.")),
    ("**No** - unsafe content", JudgeAnswer(False, "unsafe content")),
]


@pytest.mark.parametrize("answer,expected", ANSWERS)
def test_parse_answer(answer, expected):
    parsed = parse_answer(answer)
    assert (parsed.passed, parsed.reason, parsed.texts) == (expected.passed, expected.reason, expected.texts)


@pytest.mark.parametrize("answer", ["", "I cannot decide.", '{"reason": "undecided"}', "maybe",
                                    '{"reason": "no verdict here"} but yes overall'])
def test_unreadable_answers_are_errors(answer):
    with pytest.raises(JudgeError):
        parse_answer(answer)


def guarded_ctx(action: str = "block", fail_mode: str = "closed", judge: str = "judge"):
    from gateway.context import RequestContext

    guard = spec("politeness", "llm_judge", action=action, fail_mode=fail_mode, endpoint=judge,
                 instruction="The user must be polite.")
    return RequestContext("unified/chat", endpoint(guard), KEY)


def chat(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def test_judge_block_names_guardrail_and_redacts_its_reason(judge_snapshot):
    judge_snapshot('{"pass": false, "reason": "rude to jane@example.org"}')
    ctx = guarded_ctx()
    with pytest.raises(GuardrailBlocked) as caught:
        await engine.run_before(ctx, chat("you idiot"), "openai-chat")
    assert caught.value.message == "Guardrail 'politeness' blocked the request: rude to [EMAIL]."
    assert ctx.guardrail_results[0]["action"] == "block"


async def test_judge_call_is_internal_and_accounted_to_the_judge_endpoint(judge_snapshot):
    # The judge endpoint blocks the word "polite", which its own prompt contains: internal calls skip it.
    judge_snapshot('{"pass": true}', spec("judge-own", "keywords", words=["polite"]))
    await engine.run_before(guarded_ctx(), chat("hello"), "openai-chat")
    events = [e for e in usage.writer.queue if e.endpoint_name == "judge"]
    assert len(events) == 1 and events[0].route == "guardrail/judge" and events[0].status_code == 200
    assert events[0].api_key_name == KEY.name and events[0].guardrails == []


async def test_judge_sanitize_writes_the_rewrite_back(judge_snapshot):
    judge_snapshot('{"pass": false, "reason": "rude", "texts": ["please help"]}')
    body = chat("help me, idiot")
    await engine.run_before(guarded_ctx("sanitize"), body, "openai-chat")
    assert body["messages"][0]["content"] == "please help"


async def test_judge_sanitize_without_usable_rewrite_blocks(judge_snapshot):
    judge_snapshot('{"pass": false, "reason": "rude", "texts": ["a", "b"]}')
    with pytest.raises(GuardrailBlocked):
        await engine.run_before(guarded_ctx("sanitize"), chat("idiot"), "openai-chat")


async def test_missing_judge_endpoint_fails_closed_or_open(judge_snapshot):
    judge_snapshot('{"pass": true}')
    with pytest.raises(ServiceUnavailable) as caught:
        await engine.run_before(guarded_ctx(judge="nowhere"), chat("hi"), "openai-chat")
    assert caught.value.message == "Guardrail 'politeness' could not run, so the request was refused."
    ctx = guarded_ctx(judge="nowhere", fail_mode="open")
    await engine.run_before(ctx, chat("hi"), "openai-chat")
    assert ctx.guardrail_results[0]["action"] == "skipped"


async def test_unreadable_judge_answer_is_a_guardrail_failure(judge_snapshot):
    judge_snapshot("I would rather not say.")
    with pytest.raises(ServiceUnavailable):
        await engine.run_before(guarded_ctx(), chat("hi"), "openai-chat")
