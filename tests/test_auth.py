"""Where a client may present its key: every SDK's own header, and HTTP Basic (MLflow's clients)."""
from __future__ import annotations

import base64

import pytest

from gateway.auth import presented_key


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("headers, query, key", [
    ({"authorization": "Bearer k1"}, {}, "k1"),
    ({"x-api-key": "k2"}, {}, "k2"),
    ({"x-goog-api-key": "k3"}, {}, "k3"),
    ({}, {"key": "k4"}, "k4"),
    ({"authorization": basic("mlflow:k5")}, {}, "k5"),
    ({"authorization": basic(":k6")}, {}, "k6"),
    ({"authorization": basic("user:pa:ss")}, {}, "pa:ss"),
    ({"authorization": basic("no-colon")}, {}, None),
    ({"authorization": basic("user:")}, {}, None),
    ({"authorization": "Basic not*base64"}, {}, None),
    ({"authorization": "Basic " + base64.b64encode(b"u:\xff").decode()}, {}, None),
])
def test_presented_key(headers, query, key):
    assert presented_key(headers, query) == key
