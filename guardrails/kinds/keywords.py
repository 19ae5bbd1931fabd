"""`keywords`: block or redact listed words and phrases.

Settings: `words` (required, non-empty list of strings), `case_sensitive` (default false), `word_boundary`
(default true: "cat" does not match inside "concatenate"), `replacement` (default "[REDACTED]").
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from guardrails.kinds.base import Finding, PatternGuard, SettingsError, finditer
from guardrails.kinds.settings import Reader


def bounded(pattern: str) -> str:
    """Word boundaries that also work for words starting or ending with punctuation (`c++`, `-rf`)."""
    return rf"(?<!\w)(?:{pattern})(?!\w)"


class KeywordsGuard(PatternGuard):
    kind = "keywords"

    def __init__(self, settings: dict, *, sanitize: bool) -> None:
        super().__init__(settings, sanitize=sanitize)
        read = Reader(settings, {"words", "case_sensitive", "word_boundary", "replacement"})
        words = read.string_list("words", required=True)
        case_sensitive = read.boolean("case_sensitive", False)
        boundary = read.boolean("word_boundary", True)
        self.replacement = read.string("replacement", "[REDACTED]")
        read.done()
        if any(not w.strip() for w in words):
            raise SettingsError("words: must not contain empty strings")
        # Longest first, so "credit card number" wins over "credit card" at the same position.
        alternation = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
        self.pattern = re.compile(bounded(alternation) if boundary else alternation,
                                  0 if case_sensitive else re.IGNORECASE)
        self.window = max(len(w) for w in words) + 1

    def scan(self, text: str, pos: int = 0) -> Iterator[Finding]:
        return finditer(self.pattern, text, pos, "a blocked keyword", self.replacement)
