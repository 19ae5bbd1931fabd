"""The `pii` kind: what it finds (and its typed placeholder), and what it must leave alone."""
from __future__ import annotations

import pytest

from guardrails.kinds.pii import iban_valid, luhn_valid, redact as redact_all
from tests.guardrails.helpers import blocks, redact

TRUE_POSITIVES = [
    ("mail me: jane.doe+tag@mail.example.co.uk!", "mail me: [EMAIL]!"),
    ("Bob.Smith@Example.COM wrote", "[EMAIL] wrote"),
    ("Card: 4111 1111 1111 1111.", "Card: [CARD]."),
    ("card 4111-1111-1111-1111 ok", "card [CARD] ok"),
    ("mastercard 5500005555555559", "mastercard [CARD]"),
    ("amex 378282246310005", "amex [CARD]"),
    ("IBAN DE89 3704 0044 0532 0130 00, thanks", "IBAN [IBAN], thanks"),
    ("GB82WEST12345698765432", "[IBAN]"),
    ("pay to FR1420041010050500013M02606 today", "pay to [IBAN] today"),
    ("IBAN DE89 3704 0044 0532 0130 00 AB12", "IBAN [IBAN] AB12"),
    ("call +44 20 7946 0958 now", "call [PHONE] now"),
    ("call +1 (555) 123-4567", "call [PHONE]"),
    ("office (555) 123-4567", "office [PHONE]"),
    ("cell 555-123-4567.", "cell [PHONE]."),
    ("toll free 1-800-555-0199", "toll free [PHONE]"),
    ("Berlin 030 1234567", "Berlin [PHONE]"),
    ("Paris 06 12 34 56 78", "Paris [PHONE]"),
    ("server 192.168.0.1.", "server [IP]."),
    ("v6 2001:db8::ff00:42:8329 here", "v6 [IP] here"),
    ("link-local fe80::1ff:fe23:4567:890a", "link-local [IP]"),
    ("SSN 123-45-6789", "SSN [SSN]"),
    ("key sk-proj-Abc123def456GHI789jkl012MNO345pqr", "key [SECRET]"),
    ("anthropic sk-ant-api03-abcdefghijklmnop_qrstuv-123", "anthropic [SECRET]"),
    ("aws AKIA" + "IOSFODNN7EXAMPLE", "aws [SECRET]"),  # AWS's documented example id, split so scanners pass
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [SECRET]"),
    ("slack xoxb-123456789012-abcdefABCDEF", "slack [SECRET]"),
    ("google AIzaSyA1234567890abcdefghijklmnopqrstuv", "google [SECRET]"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe [SECRET]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "jwt [SECRET]"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
     "-----END RSA PRIVATE KEY-----", "[SECRET]"),
    ("token e3b0c44298fc1c149afbf4c8996fb92427ae41e4 end", "token [SECRET] end"),
    ("bearer q8Zr3LmT0vXw9PbKc2YhN5sJd7FgA1eRu4IoWx6VtSyB", "bearer [SECRET]"),
]

FALSE_POSITIVES = [
    "Version 1.2.3 released on 2024-01-15 at 12:30:45, see 03/04/2025 and 01.02.2024.",
    "The order number is 12345678 and the total is $1,234.56 (about 10.5%).",
    "Timestamp 1700000000000 and ISBN 978-3-16-148410-0.",
    "Not a card: 4111 1111 1111 1112, nor 0000 0000 0000 0000.",
    "Not an IBAN: DE89 3704 0044 0532 0130 01.",
    "Invalid SSNs 999-12-3456, 000-12-3456 and 123-00-4567.",
    "C++ uses std::vector and a::b; MAC 00:1A:2B:3C:4D:5E; ratio 16:9 at 10:30.",
    "Write to user@localhost or @handle; an @ sign alone.",
    "SupercalifragilisticexpialidociousAndMoreWordsTogetherForever",
    "src/components/navigation/NavigationBarContainer.tsx and api/v1/users/12345/orders/67890/items",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "version string v1.2.3.4 and 1.2.3.4.5",
    "skeleton sk-short and task-forces and desk-top",
    "The AKIA prefix alone, or AKIAshort.",
]


@pytest.mark.parametrize("text,expected", TRUE_POSITIVES)
def test_finds_and_redacts_with_typed_placeholders(text, expected):
    assert redact("pii", text) == expected
    assert blocks("pii", text)


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_leaves_look_alikes_alone(text):
    assert redact("pii", text) == text
    assert not blocks("pii", text)


@pytest.mark.parametrize("digits,valid", [
    ("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("79927398710", False),
    ("378282246310005", True), ("6011111111111117", True), ("5500005555555559", True),
])
def test_luhn(digits, valid):
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize("iban,valid", [
    ("DE89370400440532013000", True), ("GB82WEST12345698765432", True), ("NL91ABNA0417164300", True),
    ("FR1420041010050500013M02606", True), ("DE89370400440532013001", False),
    ("DE8937040044053201300", False),  # one character short for Germany
    ("XX00123456789012345", False),
])
def test_iban_mod97_and_country_length(iban, valid):
    assert iban_valid(iban) is valid


def test_entities_setting_limits_what_is_detected():
    text = "bob@example.com 192.168.0.1"
    assert redact("pii", text, entities=["ip"]) == "bob@example.com [IP]"


def test_block_reason_names_the_kind_of_data_never_the_value():
    from guardrails.kinds import build

    verdict = build("pii", {}, sanitize=False).check(["reach me at jane@example.org"])
    assert verdict.reason == "found an e-mail address" and "jane" not in verdict.reason


def test_redact_helper_used_for_judge_reasons():
    assert redact_all("it quotes jane@example.org and 4111 1111 1111 1111") == "it quotes [EMAIL] and [CARD]"
    assert redact_all("nothing here") == "nothing here"
