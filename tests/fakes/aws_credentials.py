"""Fake AWS credential services on one 127.0.0.1 server, in their real wire formats, for botocore's credential
providers pointed here through the SDK's own endpoint overrides:

- EC2 instance metadata, IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`): `PUT /latest/api/token`, then
  `GET /latest/meta-data/iam/security-credentials/` (the role name) and `.../<role>` (the JSON document
  with Code, Type, AccessKeyId, SecretAccessKey, Token, Expiration), as the EC2 User Guide, "Retrieve
  security credentials from instance metadata", shows them;
- the ECS / EKS container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`): `GET /container-credentials`,
  the same JSON fields minus Code and Type;
- STS (`AWS_ENDPOINT_URL_STS`): AssumeRole and AssumeRoleWithWebIdentity in the Query protocol, answered
  in STS's XML; field names as in botocore 1.44's `data/sts/2011-06-15/examples-1.json`.

Every answer issues fresh keys, recorded in `issued` (key id -> (secret, session token)), which a
FakeBedrock's `aws_keys` can share to check that requests were signed with them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

from tests.fakes.base import FakeUpstream, Recorded, Reply

ROLE_NAME = "gateway-instance-role"
IMDS_TOKEN = "imds-session-token-0123"
CONTAINER_TOKEN = "container-authorization-token"
STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"


class FakeAwsCredentials(FakeUpstream):
    """`lifetime` is how long issued credentials last; `issued_for` records which service issued each key
    id (`imds`, `container`, `AssumeRole`, `AssumeRoleWithWebIdentity`)."""

    lifetime = timedelta(hours=1)

    def __init__(self) -> None:
        super().__init__()
        self.issued: dict[str, tuple[str, str]] = {}
        self.issued_for: dict[str, str] = {}

    def reset(self) -> None:
        super().reset()
        self.issued.clear()
        self.issued_for.clear()
        self.lifetime = timedelta(hours=1)

    def model_of(self, request: Recorded) -> str:
        return request.path

    def _issue(self, kind: str) -> tuple[str, str, str, str]:
        number = len(self.issued) + 1
        key_id = f"ASIAFAKE{kind.upper()[:6]}{number:04d}"
        secret, token = f"secret-{kind}-{number}", f"session-token-{kind}-{number}"
        self.issued[key_id] = (secret, token)
        self.issued_for[key_id] = kind
        expiration = (datetime.now(timezone.utc) + self.lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        return key_id, secret, token, expiration

    def respond(self, request: Recorded) -> Reply:
        if request.path == "/latest/api/token" and request.method == "PUT":
            if not request.headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
                return Reply(status=400, body=b"", content_type="text/plain")
            return Reply(body=IMDS_TOKEN.encode(), content_type="text/plain")
        if request.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if request.headers.get("x-aws-ec2-metadata-token") != IMDS_TOKEN:
                return Reply(status=401, body=b"", content_type="text/plain")
            role = request.path.rpartition("/")[2]
            if not role:
                return Reply(body=ROLE_NAME.encode(), content_type="text/plain")
            key_id, secret, token, expiration = self._issue("imds")
            return Reply(body={"Code": "Success", "LastUpdated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "Type": "AWS-HMAC", "AccessKeyId": key_id, "SecretAccessKey": secret, "Token": token,
                               "Expiration": expiration})
        if request.path == "/container-credentials":
            if request.headers.get("authorization") != CONTAINER_TOKEN:
                return Reply(status=401, body={"message": "unauthorized"})
            key_id, secret, token, expiration = self._issue("container")
            return Reply(body={"AccessKeyId": key_id, "SecretAccessKey": secret, "Token": token,
                               "Expiration": expiration})
        if request.method == "POST" and request.path == "/":
            return self._sts(request)
        return Reply(status=404, body={"message": f"no route {request.path}"})

    def _sts(self, request: Recorded) -> Reply:
        form = {name: values[0] for name, values in parse_qs(request.body.decode()).items()}
        action = form.get("Action", "")
        if action not in ("AssumeRole", "AssumeRoleWithWebIdentity") or not form.get("RoleArn"):
            return self._sts_error(400, "InvalidAction", f"Could not find operation {action}")
        if action == "AssumeRole" and not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return self._sts_error(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        if action == "AssumeRoleWithWebIdentity" and not form.get("WebIdentityToken"):
            return self._sts_error(400, "ValidationError", "WebIdentityToken is required")
        key_id, secret, token, expiration = self._issue(action)
        session = form.get("RoleSessionName", "session")
        body = (f'<{action}Response xmlns="{STS_XMLNS}"><{action}Result>'
                f"<Credentials><AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
                f"<SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials>"
                f"<AssumedRoleUser><AssumedRoleId>AROA123EXAMPLE123:{session}</AssumedRoleId>"
                f"<Arn>{form['RoleArn']}/{session}</Arn></AssumedRoleUser>"
                f"</{action}Result><ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
                f"</ResponseMetadata></{action}Response>")
        return Reply(body=body.encode(), content_type="text/xml")

    @staticmethod
    def _sts_error(status: int, code: str, message: str) -> Reply:
        body = (f'<ErrorResponse xmlns="{STS_XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
                f"<Message>{message}</Message></Error><RequestId>0</RequestId></ErrorResponse>")
        return Reply(status=status, body=body.encode(), content_type="text/xml")
