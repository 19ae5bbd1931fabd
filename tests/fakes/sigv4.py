"""AWS Signature Version 4, written from AWS's public specification, for the fake Bedrock to check the
signatures the gateway (botocore's signer) puts on requests: an implementation independent of the one under
test, itself pinned to AWS's published test vectors (tests/fakes/test_sigv4.py). Covers what Bedrock calls
need: the `Authorization` header, a buffered body, and the canonical URI rule of every service but S3 (the
already-encoded path is encoded again)."""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def sign(method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes,
         credentials: AwsCredentials, region: str, service: str, now: datetime) -> dict[str, str]:
    """The headers to add to a request for it to be accepted: `x-amz-date`, `x-amz-security-token` (with
    temporary credentials) and `authorization`.

    `raw_path` and `query` are exactly what goes on the wire (percent-encoded); every header in `headers`
    is signed, so it must hold `host` and nothing a proxy could rewrite. `now` is in UTC.
    """
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    added = {"x-amz-date": amz_date}
    if credentials.session_token:
        added["x-amz-security-token"] = credentials.session_token
    canonical_headers = {name.lower(): " ".join(str(value).split()) for name, value in {**headers, **added}.items()}
    names = sorted(canonical_headers)
    signed_headers = ";".join(names)
    canonical_request = "\n".join([
        method.upper(),
        quote(raw_path or "/", safe="/~"),
        _canonical_query(query),
        *(f"{name}:{canonical_headers[name]}" for name in names),
        "",
        signed_headers,
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = signing_key(credentials.secret_access_key, amz_date[:8], region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    added["authorization"] = (f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                              f"SignedHeaders={signed_headers}, Signature={signature}")
    return added


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _canonical_query(query: str) -> str:
    pairs = sorted((quote(name, safe="-_.~"), quote(value, safe="-_.~"))
                   for name, value in parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{name}={value}" for name, value in pairs)
