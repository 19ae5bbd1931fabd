"""Outbound address policy: which base URLs the gateway may call.

Checked when a base URL is written (gateway_apply, the admin), when a configuration snapshot is built
(api_base, Vertex AI token_uri) and before a budget webhook is called; and on every new upstream connection,
on the address actually connected to (`PolicyResolver`), so a name that resolved to a public address when
the snapshot was built cannot later be re-pointed at a forbidden one (DNS rebinding).
Link-local and cloud metadata addresses are refused unless GATEWAY_ALLOW_LINK_LOCAL_UPSTREAMS is on;
private and loopback ranges (self-hosted Ollama, vLLM) unless GATEWAY_ALLOW_PRIVATE_UPSTREAMS is off.
The one exception is credential fetching: the AWS and Google SDKs' credential providers may reach the
clouds' own metadata services (`credential_endpoint_problem`), and nothing else on a link-local address.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from django.conf import settings

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.internal"}
METADATA_IPS = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
# Where credentials come from on AWS (EC2 instance metadata over IPv4 and IPv6, the ECS and EKS Pod
# Identity container endpoints) and on Google Cloud (the GCE metadata server, by address and by name).
CREDENTIAL_METADATA_HOSTS = {"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "169.254.170.23",
                             "fd00:ec2::23", "metadata.google.internal"}


def _address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA_IPS or ip.is_link_local:
        if not settings.GATEWAY_ALLOW_LINK_LOCAL_UPSTREAMS:
            return f"address {ip} is link-local or a cloud metadata service"
        return None
    private = None if settings.GATEWAY_ALLOW_PRIVATE_UPSTREAMS else f"address {ip} is private"
    # Loopback before reserved: ::1 lies in the reserved ::/8 block, yet is a local Ollama or vLLM.
    if ip.is_loopback:
        return private
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"address {ip} is not routable"
    return private if ip.is_private else None


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any spelling a resolver accepts: dotted, but also the
    decimal (2852039166), hexadecimal (0xA9FEA9FE), octal (0251.0376.0251.0376) and short dotted
    (169.254.43518) forms of an IPv4 address, which name the metadata service as surely as 169.254.169.254."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _is_local_name(host: str) -> bool:
    """Names every resolver answers with a loopback address (RFC 6761)."""
    return host == "localhost" or host.endswith(".localhost")


def url_problem(url: str, *, resolve: bool = True) -> str | None:
    """Why the gateway must not call `url`, or None when it may."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in settings.GATEWAY_ALLOWED_SCHEMES:
        return f"scheme '{parts.scheme}' is not allowed (GATEWAY_ALLOWED_SCHEMES)"
    if not host:
        return "it has no host"
    if parts.username or parts.password:
        return "it embeds credentials"
    name = host.lower().rstrip(".")
    if name in METADATA_HOSTS and not settings.GATEWAY_ALLOW_LINK_LOCAL_UPSTREAMS:
        return f"host '{host}' is a cloud metadata service"
    literal = _literal_address(name)
    if literal is not None:
        return _address_problem(literal)
    if _is_local_name(name) and not settings.GATEWAY_ALLOW_PRIVATE_UPSTREAMS:
        return f"host '{host}' is a loopback name"
    if not resolve:
        return None
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # unresolvable now; the connection attempt will fail on its own and be reported then
    for info in infos:
        problem = _address_problem(ipaddress.ip_address(info[4][0]))
        if problem:
            return f"host '{host}' resolves to a forbidden address ({problem})"
    return None


def credential_endpoint_problem(url: str) -> str | None:
    """Why a cloud SDK may not fetch credentials from `url`, or None when it may: the AWS and Google
    metadata services always may (that is how workloads on those clouds get credentials); any other
    endpoint (an STS or token override) answers to the same policy as an api_base."""
    try:
        host = (urlsplit(url if "//" in url else f"http://{url}").hostname or "").lower().rstrip(".")
    except ValueError:
        return "it is not a valid URL"
    if host in CREDENTIAL_METADATA_HOSTS:
        return None
    return url_problem(url if "//" in url else f"http://{url}")


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver for the pooled upstream clients: the addresses a name resolves to, less those the
    policy forbids. A name left with none fails to connect, naming the policy. Resolution happens once per
    new connection (aiohttp caches it briefly), never per request on a kept-alive connection."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self.inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        allowed, refused = [], None
        for result in await self.inner.resolve(host, port, family):
            problem = _address_problem(ipaddress.ip_address(result["host"]))
            if problem is None:
                allowed.append(result)
            else:
                refused = problem
        if not allowed:
            raise OSError(f"host '{host}' resolves to a forbidden address ({refused or 'no address'})")
        return allowed

    async def close(self) -> None:
        await self.inner.close()
