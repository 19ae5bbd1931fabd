"""The one interface every guardrail kind implements, and the pattern machinery the deterministic kinds share.

A kind is compiled once per configuration snapshot into a `Guard` (patterns compiled, settings parsed), so
a request only runs the checks. A guard looks at a list of texts (every message text of a request, or every
text of a response) and returns a `Verdict`; with `sanitize` it also returns the rewritten texts. On
streams, a guard opens a `StreamState` per response whose `channel()` stages see the text incrementally.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from gateway.context import RequestContext

# Streams: at most this many characters are held back behind one unfinished match, so a pattern that
# keeps matching (an operator's `.*`) cannot make the gateway buffer a whole response.
MAX_HOLD_FACTOR = 8
MIN_MAX_HOLD = 1024
# Characters of already-released text kept as context, so `(?<!\w)`-style boundaries see the real
# preceding character instead of a start of string.
CONTEXT_CHARS = 8
# Streams: text is scanned and released once at least this much is releasable, not on every token-sized
# chunk; scanning per 4-character chunk costs several times more CPU for no earlier delivery worth having.
MIN_RELEASE = 16


class SettingsError(ValueError):
    """Settings a kind cannot work with; raised at compile time and listed by `validate_settings`."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class GuardBlocked(Exception):
    """Raised by a stream stage that found something its guardrail blocks."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str = ""
    texts: list[str] | None = None  # sanitize: the rewritten texts, in the order they were given


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    label: str          # what was found, for the reason ("an e-mail address"); never the matched text
    replacement: str    # what sanitize puts in its place


class StreamStage:
    """One channel (one choice's text, one tool call's arguments) of one response, seen incrementally.
    `changed` turns true once the stage has rewritten anything (sanitize)."""

    changed: bool = False

    def push(self, text: str) -> str:
        """Take newly arrived text, return what may be released now; raise GuardBlocked to end the stream."""
        raise NotImplementedError

    def flush(self) -> str:
        """The channel ended: return whatever was held back."""
        return ""


class StreamState:
    """Per-response state of one guard; `channel()` is called once per channel."""

    def channel(self) -> StreamStage:
        raise NotImplementedError

    async def verdict(self, ctx: "RequestContext") -> Verdict | None:
        """Guards that can only judge the whole text (llm_judge) decide here, at the end of the stream."""
        return None


class Guard:
    """A compiled guardrail kind. `sanitize` is the guardrail's action (False: block)."""

    kind: ClassVar[str] = ""

    def __init__(self, settings: dict, *, sanitize: bool) -> None:
        self.sanitize = sanitize

    async def evaluate(self, texts: Sequence[str], ctx: "RequestContext") -> Verdict:
        raise NotImplementedError

    def open_stream(self) -> StreamState:
        raise NotImplementedError


class PatternGuard(Guard):
    """Kinds that find spans of text (keywords, regex, pii): block when anything is found, or replace each
    span with its placeholder. `window` is how many characters a stream holds back so that a match split
    across chunks is still seen whole."""

    window: int = 64

    def scan(self, text: str, pos: int = 0) -> Iterator[Finding]:
        """Non-overlapping findings in order, starting at `pos` (characters before it are context only)."""
        raise NotImplementedError

    def reason(self, findings: Sequence[Finding]) -> str:
        labels = list(dict.fromkeys(f.label for f in findings))
        return "found " + ", ".join(labels)

    async def evaluate(self, texts: Sequence[str], ctx: "RequestContext") -> Verdict:
        return self.check(texts)

    def check(self, texts: Sequence[str]) -> Verdict:
        if not self.sanitize:
            for text in texts:
                found = next(self.scan(text), None)
                if found is not None:
                    return Verdict(False, self.reason([found]))
            return Verdict(True)
        rewritten: list[str] = []
        found_any: list[Finding] = []
        for text in texts:
            findings = list(self.scan(text))
            found_any.extend(findings)
            rewritten.append(replace_spans(text, findings) if findings else text)
        if not found_any:
            return Verdict(True)
        return Verdict(False, self.reason(found_any), rewritten)

    def open_stream(self) -> StreamState:
        return _PatternStreamState(self)


def replace_spans(text: str, findings: Sequence[Finding], start: int = 0, end: int | None = None) -> str:
    """`text[start:end]` with every finding inside it replaced by its placeholder."""
    end = len(text) if end is None else end
    parts: list[str] = []
    position = start
    for finding in findings:
        parts.append(text[position:finding.start])
        parts.append(finding.replacement)
        position = finding.end
    parts.append(text[position:end])
    return "".join(parts)


def finditer(pattern: re.Pattern, text: str, pos: int, label: str, replacement: str) -> Iterator[Finding]:
    """Findings for every non-empty match of one compiled pattern."""
    for match in pattern.finditer(text, pos):
        if match.end() > match.start():
            yield Finding(match.start(), match.end(), label, replacement)


def merge(sources: Iterable[Iterable[Finding]]) -> Iterator[Finding]:
    """Findings of several detectors as one non-overlapping sequence: earliest first, the longest of those
    starting together, and any finding overlapping an earlier one dropped."""
    ordered = sorted((f for source in sources for f in source), key=lambda f: (f.start, -f.end))
    end = -1
    for finding in ordered:
        if finding.start >= end:
            yield finding
            end = finding.end


class _PatternStreamState(StreamState):
    def __init__(self, guard: PatternGuard) -> None:
        self.guard = guard

    def channel(self) -> StreamStage:
        return _PatternStage(self.guard)


class _PatternStage(StreamStage):
    """Releases all but the last `window` characters of what arrived, and never releases part of a match
    that may still grow: the cut moves back to the start of any match that reaches into the held tail."""

    def __init__(self, guard: PatternGuard) -> None:
        self.guard = guard
        self.context = ""
        self.held = ""
        self.max_hold = max(guard.window * MAX_HOLD_FACTOR, MIN_MAX_HOLD)

    def push(self, text: str) -> str:
        if not text:
            return ""
        buffer = self.context + self.held + text
        base = len(self.context)
        limit = len(buffer) - self.guard.window
        if limit - base < MIN_RELEASE:
            self.held = buffer[base:]
            return ""
        settled: list[Finding] = []
        cut = limit
        force = len(buffer) - base > self.max_hold
        for finding in self.guard.scan(buffer, base):
            if finding.end <= limit or force:
                settled.append(finding)
                cut = max(cut, finding.end) if force else cut
            else:
                cut = min(cut, finding.start)
                break
        return self._release(buffer, base, max(cut, base), settled)

    def flush(self) -> str:
        buffer = self.context + self.held
        base = len(self.context)
        released = self._release(buffer, base, len(buffer), list(self.guard.scan(buffer, base)))
        self.context = ""
        return released

    def _release(self, buffer: str, base: int, cut: int, findings: list[Finding]) -> str:
        if findings and not self.guard.sanitize:
            raise GuardBlocked(self.guard.reason(findings))
        if findings:
            self.changed = True
        released = replace_spans(buffer, findings, base, cut)
        self.context = buffer[max(base, cut - CONTEXT_CHARS):cut] if cut > base else self.context
        self.held = buffer[cut:]
        return released
