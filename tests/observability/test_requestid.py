"""Which client request ids the gateway keeps, and what it makes instead."""
from __future__ import annotations

import pytest

from gateway.observability import requestid


@pytest.mark.parametrize("sent", [b"abc", b"A.b_c:d-9", b"x" * 64])
def test_safe_ids_are_kept(sent):
    assert requestid.from_header(sent) == sent.decode()


@pytest.mark.parametrize("sent", [None, b"", b"x" * 65, b"has space", b"new\nline", b"caf\xc3\xa9", b"\xff"])
def test_anything_else_gets_a_generated_id(sent):
    made = requestid.from_header(sent)
    assert requestid.ACCEPTED.fullmatch(made) and made != (sent or b"").decode(errors="replace")


def test_generated_ids_are_unique():
    assert len({requestid.new_id() for _ in range(1000)}) == 1000
