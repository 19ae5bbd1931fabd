"""Outbound address policy: which base URLs the gateway may call.

Checked when a configuration snapshot is built (api_base, Vertex AI token_uri) and before a budget
webhook is called; never per model request.
Link-local and cloud metadata addresses are refused unless GATEWAY_ALLOW_LINK_LOCAL_UPSTREAMS is on;
private and loopback ranges (self-hosted Ollama, vLLM) unless GATEWAY_ALLOW_PRIVATE_UPSTREAMS is off.
The one exception is credential fetching: the AWS and Google SDKs' credential providers may reach the
clouds' own metadata services (`credential_endpoint_problem`), and nothing else on a link-local address.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

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
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"address {ip} is not routable"
    if (ip.is_private or ip.is_loopback) and not settings.GATEWAY_ALLOW_PRIVATE_UPSTREAMS:
        return f"address {ip} is private"
    return None


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
    if host.lower().rstrip(".") in METADATA_HOSTS and not settings.GATEWAY_ALLOW_LINK_LOCAL_UPSTREAMS:
        return f"host '{host}' is a cloud metadata service"
    try:
        return _address_problem(ipaddress.ip_address(host))
    except ValueError:
        pass
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
