"""`pii`: detect personal data and secrets, and block or replace them with typed placeholders.

Settings: `entities` (default: all of email, phone, card, iban, ip, ssn, secret), `stream_window` (default
64: characters a stream holds back so a value split across chunks is still caught).

Detection favours precision: card numbers must pass the Luhn check and start like a real card, IBANs must
pass the mod-97 check (and the country's length where known), phone numbers need an international `+`, a
North-American shape or a trunk `0` with separators, generic hex / base64 tokens need mixed characters and
high entropy. Each detector only runs when the text contains a character it needs.
"""
from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from guardrails.kinds.base import Finding, PatternGuard, merge
from guardrails.kinds.settings import Reader

# Gates computed once per scan: detectors of numbers need a run of 7+ digits and separators, generic
# tokens need a 32+ character word; most prose has neither, and its scan then skips those detectors.
NUMBER = "number"
LONG_WORD = "long word"
_NUMBER = re.compile(r"\d[\d .()/+-]{5,}\d")

# IBAN lengths of the countries we know for sure; other country codes must be 15-34 characters long.
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24,
    "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27,
}


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """Mod-97 (ISO 7064) on the IBAN without spaces, plus the country's length where known."""
    if not 15 <= len(iban) <= 34 or len(iban) != IBAN_LENGTHS.get(iban[:2], len(iban)):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def entropy(text: str) -> float:
    """Shannon entropy in bits per character: random tokens score high, words and repeated chars low."""
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _card(text: str) -> int:
    digits = _digits(text)
    separators = set(c for c in text if not c.isdigit())
    ok = (13 <= len(digits) <= 19 and digits[0] in "23456" and len(separators) <= 1
          and len(set(digits)) > 1 and luhn_valid(digits))
    return len(text) if ok else 0


def _iban(text: str) -> int:
    """The longest valid IBAN at the start of the match: trailing space-separated groups may belong to
    the next word, so they are dropped one by one until the checksum holds."""
    candidate = text
    while candidate:
        if iban_valid(candidate.replace(" ", "")):
            return len(candidate)
        if " " not in candidate:
            return 0
        candidate = candidate[: candidate.rindex(" ")]
    return 0


def _digit_count(low: int, high: int) -> Callable[[str], int]:
    return lambda text: len(text) if low <= len(_digits(text)) <= high else 0


def _ipv6(text: str) -> int:
    if sum(c != ":" for c in text) < 4:  # "a::b" in code is not an address
        return 0
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return 0
    return len(text)


def _generic_secret(text: str) -> int:
    token = text.rstrip("=")
    classes = sum((sum(c.isdigit() for c in token) >= 2, sum(c.isupper() for c in token) >= 2,
                   sum(c.islower() for c in token) >= 2))
    hexadecimal = all(c in "0123456789abcdefABCDEF" for c in token)
    if hexadecimal:
        ok = any(c.isdigit() for c in token) and any(c.isalpha() for c in token) and entropy(token) >= 3.0
    else:
        ok = len(token) >= 40 and classes == 3 and entropy(token) >= 4.2
    return len(text) if ok else 0


def _ssn(text: str) -> int:
    area, group, serial = text[:3], text[4:6], text[7:]
    ok = area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
    return len(text) if ok else 0


def _ipv4(text: str) -> int:
    octets = text.split(".")
    return len(text) if all(int(o) <= 255 and (o == "0" or o[0] != "0") for o in octets) else 0


def _matches(pattern: re.Pattern, text: str, pos: int) -> Iterator[re.Match]:
    return pattern.finditer(text, pos)


def _around_at_signs(pattern: re.Pattern, text: str, pos: int) -> Iterator[re.Match]:
    """E-mail matches found by looking only around each `@` (a local part is at most 64 characters), which
    is much cheaper than trying the pattern at every word character of the text."""
    start = pos
    at = text.find("@", pos)
    while at != -1:
        match = pattern.search(text, max(start, at - 64), min(len(text), at + 320))
        if match is not None and match.start() <= at < match.end():
            yield match
            start = match.end()
            at = text.find("@", start)
        else:
            at = text.find("@", at + 1)


@dataclass(frozen=True)
class Detector:
    entity: str
    label: str
    placeholder: str
    pattern: re.Pattern
    accept: Callable[[str], int] | None = None  # length of the match to keep (0: not a finding)
    needs: str = ""  # a substring the text must contain, or NUMBER, or LONG_WORD
    matches: Callable[[re.Pattern, str, int], Iterator[re.Match]] = _matches


def _secret(pattern: str, accept: Callable[[str], int] | None = None, needs: str = "") -> Detector:
    return Detector("secret", "an API key or secret", "[SECRET]", re.compile(pattern), accept, needs)


def _phone(pattern: str, accept: Callable[[str], int] | None = None, needs: str = NUMBER) -> Detector:
    return Detector("phone", "a phone number", "[PHONE]", re.compile(pattern), accept, needs)


# Every pattern starts by consuming a character or literal, with its boundary lookbehind right after it:
# a pattern that starts with an assertion loses the `re` engine's fast scan for its first character, and
# costs five times as much on ordinary text. Phone numbers and SSNs right after another group of digits
# are part of something longer (an account number, a table row), so `(?<!\d[ /]\d)` leaves them alone.
DETECTORS = (
    _secret(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
            r"(?:[\s\S]{0,8192}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?"),
    _secret(r"sk-(?<![\w-]sk-)[A-Za-z0-9_-]{20,}"),
    _secret(r"A(?<![A-Za-z0-9]A)(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    _secret(r"gh(?<![A-Za-z0-9_]gh)[pousr]_[A-Za-z0-9]{36,255}"),
    _secret(r"github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{22,255}"),
    _secret(r"xox(?<![A-Za-z0-9]xox)[abprs]-[A-Za-z0-9-]{10,}"),
    _secret(r"AIza(?<![A-Za-z0-9]AIza)[0-9A-Za-z_-]{35}"),
    _secret(r"[sr]k_(?<![A-Za-z0-9][sr]k_)(?:live|test)_[A-Za-z0-9]{16,}"),
    _secret(r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    _secret(r"[A-Za-z0-9+/_-](?<![A-Za-z0-9+/_=.-][A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{31,511}={0,2}"
            r"(?![A-Za-z0-9+/_=-])", _generic_secret, LONG_WORD),
    Detector("email", "an e-mail address", "[EMAIL]", re.compile(
        r"(?<![\w.%+-])[\w%+-][\w.%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
        r"(?![\w-])"), needs="@", matches=_around_at_signs),
    Detector("card", "a payment card number", "[CARD]", re.compile(
        r"\d(?<![\d+.,-]\d)(?:[ -]?\d){12,18}(?!\d)"), _card, NUMBER),
    Detector("iban", "an IBAN", "[IBAN]", re.compile(
        r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])"), _iban, NUMBER),
    Detector("ssn", "a US social security number", "[SSN]", re.compile(
        r"\d(?<![\d-]\d)(?<!\d[ /]\d)\d\d([- ])\d\d\1\d{4}(?![\d-])"), _ssn, NUMBER),
    _phone(r"\+(?<![\w+]\+)\d(?:[ .()-]{0,2}\d){7,14}(?!\d)", _digit_count(8, 15), "+"),
    _phone(r"\((?<![\w+.-]\()\d{3}\) ?\d{3}[ .-]\d{4}(?![\w-]|\.\d)", needs="("),
    _phone(r"\d(?<![\w+.-]\d)(?<!\d[ /]\d)\d\d([ .-])\d{3}\1\d{4}(?![\w-]|\.\d)"),
    _phone(r"1(?<![\w+.-]1)([ .-])\d{3}\1\d{3}\1\d{4}(?![\w-]|\.\d)"),
    _phone(r"0(?<![\w+.-]0)(?<!\d[ /.-]0)[1-9]\d{0,3}(?:[ /.-]\d{2,8}){1,4}(?![\w-]|\.\d)", _digit_count(9, 12)),
    Detector("ip", "an IP address", "[IP]", re.compile(
        r"\d(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?!\w|\.\d)"), _ipv4, NUMBER),
    Detector("ip", "an IP address", "[IP]", re.compile(
        r"[0-9A-Fa-f:](?<![\w:.][0-9A-Fa-f:])[0-9A-Fa-f]{0,3}:[0-9A-Fa-f:]{1,37}(?![\w:])"), _ipv6, ":"),
)
ENTITIES = frozenset(d.entity for d in DETECTORS)


def _detect(detector: Detector, text: str, pos: int) -> Iterator[Finding]:
    for match in detector.matches(detector.pattern, text, pos):
        length = match.end() - match.start()
        if detector.accept is not None:
            length = detector.accept(match.group())
        if length:
            yield Finding(match.start(), match.start() + length, detector.label, detector.placeholder)


class PiiGuard(PatternGuard):
    kind = "pii"

    def __init__(self, settings: dict, *, sanitize: bool) -> None:
        super().__init__(settings, sanitize=sanitize)
        read = Reader(settings, {"entities", "stream_window"})
        entities = set(read.string_list("entities", choices=ENTITIES) or ENTITIES)
        self.window = read.integer("stream_window", 64, minimum=8, maximum=4096)
        read.done()
        self.detectors = tuple(d for d in DETECTORS if d.entity in entities)

    def scan(self, text: str, pos: int = 0) -> Iterator[Finding]:
        gates: dict[str, bool] = {}

        def applies(needs: str) -> bool:
            if needs not in gates:
                if needs == NUMBER:
                    gates[needs] = _NUMBER.search(text, pos) is not None
                elif needs == LONG_WORD:
                    gates[needs] = max(map(len, text[pos:].split()), default=0) >= 32
                else:
                    gates[needs] = needs in text
            return gates[needs]

        return merge(_detect(d, text, pos) for d in self.detectors if not d.needs or applies(d.needs))


def redact(text: str) -> str:
    """Every kind of PII in `text` replaced by its placeholder: used on judge reasons, which may quote
    the text they judged."""
    verdict = _ALL.check([text])
    return verdict.texts[0] if verdict.texts else text


_ALL = PiiGuard({}, sanitize=True)
