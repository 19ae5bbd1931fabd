"""The fake Bedrock's SigV4 checker against published and independently computed signatures."""
from __future__ import annotations

from datetime import datetime

import pytest

from tests.fakes.sigv4 import AwsCredentials, sign, signing_key

WHEN = datetime(2015, 8, 30, 12, 36, 0)
EXAMPLE = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
CONVERSE_BODY = b'{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}'
CONVERSE_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
BEDROCK_HOST = "bedrock-runtime.us-east-1.amazonaws.com"


def test_signing_key_matches_aws_documentation_example():
    assert signing_key(EXAMPLE.secret_access_key, "20150830", "us-east-1", "iam").hex() == \
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"


@pytest.mark.parametrize(("method", "path", "query", "headers", "service", "signature"), [
    pytest.param("GET", "/", "", {"host": "example.amazonaws.com"}, "service",
                 "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", id="aws-test-suite-get-vanilla"),
    pytest.param("GET", "/", "Action=ListUsers&Version=2010-05-08",
                 {"Host": "iam.amazonaws.com", "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, "iam",
                 "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", id="aws-docs-iam-list-users"),
])
def test_published_signatures(method, path, query, headers, service, signature):
    added = sign(method, path, query, headers, b"", EXAMPLE, "us-east-1", service, WHEN)
    assert added["x-amz-date"] == "20150830T123600Z"
    assert added["authorization"].endswith(f"Signature={signature}")


# Computed with botocore's SigV4Auth for the same request: the model id's `:` is percent-encoded on the
# wire and encoded a second time in the canonical URI, the rule for every AWS service but S3.
@pytest.mark.parametrize(("token", "signed_headers", "signature"), [
    (None, "content-type;host;x-amz-date", "68bd8c1403d522a90564452d1a50bfab282fd1f136a75add92048aaa969afaee"),
    ("FwoGZXIvYXdzEXAMPLETOKEN", "content-type;host;x-amz-date;x-amz-security-token",
     "69fd77badbf73679dd62f836c54d6f3cc6206657f260eddaa3496d6e856875f9"),
])
def test_bedrock_request_signature(token, signed_headers, signature):
    credentials = AwsCredentials(EXAMPLE.access_key_id, EXAMPLE.secret_access_key, token)
    added = sign("POST", CONVERSE_PATH, "", {"host": BEDROCK_HOST, "content-type": "application/json"}, CONVERSE_BODY,
                 credentials, "us-east-1", "bedrock", WHEN)
    assert added["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}")
    assert added.get("x-amz-security-token") == token


def test_credentials_repr_hides_secrets():
    text = repr(AwsCredentials("AKID", "very-secret", "session-secret"))
    assert "AKID" in text and "very-secret" not in text and "session-secret" not in text
