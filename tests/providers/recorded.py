"""The recorded JSON fixtures in tests/fixtures/<provider>/ that translation tests are table-driven from."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def recorded(provider: str) -> Callable[[str], dict]:
    """A loader for one provider's fixtures: `fixture = recorded("anthropic")`, then `fixture("stream_text.json")`."""

    def load(name: str) -> dict:
        return json.loads((FIXTURES / provider / name).read_text())

    return load
