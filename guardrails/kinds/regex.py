"""`regex`: block or redact matches of operator-written regular expressions (Python `re` syntax).

Settings: `patterns` (required, non-empty list), `case_sensitive` (default true), `word_boundary` (default
false: wrap every pattern in word boundaries), `replacement` (default "[REDACTED]"), `max_match_length`
(default 64: how many characters a stream holds back so a match split across chunks is still caught).
Block reasons name the pattern by position ("pattern #2"), never the matched text.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from guardrails.kinds.base import Finding, PatternGuard, SettingsError, finditer, merge
from guardrails.kinds.keywords import bounded
from guardrails.kinds.settings import Reader


class RegexGuard(PatternGuard):
    kind = "regex"

    def __init__(self, settings: dict, *, sanitize: bool) -> None:
        super().__init__(settings, sanitize=sanitize)
        read = Reader(settings, {"patterns", "case_sensitive", "word_boundary", "replacement", "max_match_length"})
        patterns = read.string_list("patterns", required=True)
        flags = 0 if read.boolean("case_sensitive", True) else re.IGNORECASE
        boundary = read.boolean("word_boundary", False)
        self.replacement = read.string("replacement", "[REDACTED]")
        self.window = read.integer("max_match_length", 64, minimum=1, maximum=4096)
        read.done()
        compiled = []
        for index, pattern in enumerate(patterns, start=1):
            try:
                regex = re.compile(bounded(pattern) if boundary else pattern, flags)
            except re.error as exc:
                raise SettingsError(f"patterns[{index - 1}]: not a valid regular expression ({exc})") from None
            if regex.search("") is not None:
                raise SettingsError(f"patterns[{index - 1}]: matches the empty string")
            compiled.append(regex)
        # Compiled separately, not as one alternation: operators' patterns may use their own group names
        # and numbered backreferences, which an alternation would clash or renumber.
        self.patterns = tuple(compiled)

    def scan(self, text: str, pos: int = 0) -> Iterator[Finding]:
        return merge(finditer(regex, text, pos, f"a match of pattern #{index}", self.replacement)
                     for index, regex in enumerate(self.patterns, start=1))
