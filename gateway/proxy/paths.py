"""Which provider paths the raw proxy may reach: the client's path is checked for tricks (dot segments,
encoded slashes, empty segments) before it is matched against the provider's allowed prefixes, and the
final URL must stay on the `api_base`'s host."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import unquote, urlsplit

from gateway.errors import BadRequest, PermissionDenied

# Relative to each provider's api_base: model listing, files and batches; nothing administrative
# (organisation, projects, keys, fine-tuning). A provider not named here gets DEFAULT_PREFIXES.
DEFAULT_PREFIXES: tuple[str, ...] = ("models", "files", "batches")
PROVIDER_PREFIXES: dict[str, tuple[str, ...]] = {
    "anthropic": ("models", "files", "messages/batches"),
    "azure": ("openai/models", "openai/files", "openai/batches"),
}
# Encodings that would change how the provider splits the path after our check.
REFUSED_ENCODINGS = ("%2f", "%5c", "%2e", "%00")


def allowed_prefixes(provider: str, configured: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The operator's list for this provider (GATEWAY_PROXY_ALLOWED_PATHS) when there is one, else ours."""
    if provider in configured:
        return tuple(str(p).strip("/") for p in configured[provider])
    return PROVIDER_PREFIXES.get(provider, DEFAULT_PREFIXES)


def clean_path(raw: str) -> str:
    """The client's path (as sent, still percent-encoded), refused if it could escape the prefix it matches.
    Returns it unchanged: it is forwarded exactly as the client encoded it."""
    lowered = raw.lower()
    if any(code in lowered for code in REFUSED_ENCODINGS):
        raise BadRequest("The proxied path may not contain encoded slashes, backslashes, dots or NUL bytes.",
                         code="invalid_path")
    if "\\" in raw or "?" in raw or "#" in raw:
        raise BadRequest("The proxied path contains a character that is not allowed.", code="invalid_path")
    segments = raw.split("/")
    if not raw or any(segment == "" for segment in segments):
        raise BadRequest("The proxied path may not be empty or contain '//'.", code="invalid_path")
    if any(unquote(segment) in (".", "..") for segment in segments):
        raise BadRequest("The proxied path may not contain '.' or '..' segments.", code="invalid_path")
    return raw


def is_allowed(path: str, prefixes: Sequence[str]) -> bool:
    """Segment-wise prefix match: `files` allows `files` and `files/abc`, not `filesystem`. A Google-style
    custom method (`models/x:generateContent`) must be named by the prefix itself."""
    segments = unquote(path).split("/")
    for prefix in prefixes:
        wanted = prefix.split("/")
        if segments[: len(wanted)] != wanted:
            continue
        if any(":" in segment for segment in segments[len(wanted):]):
            continue
        return True
    return False


def check_allowed(path: str, provider: str, prefixes: Sequence[str]) -> None:
    if not is_allowed(path, prefixes):
        raise PermissionDenied(
            f"Path '{path}' is not allowed through the proxy for provider '{provider}'. Allowed prefixes: "
            f"{', '.join(prefixes) or '(none)'} (GATEWAY_PROXY_ALLOWED_PATHS).", code="path_not_allowed")


def upstream_url(base_url: str, path: str, query: str) -> str:
    """`base_url` + `/path` + `?query`, refused unless its host is the base's (the path was already checked,
    so this guards against a base that a path could still redirect)."""
    url = f"{base_url.rstrip('/')}/{path}" + (f"?{query}" if query else "")
    base, final = urlsplit(base_url), urlsplit(url)
    if (final.scheme, final.netloc) != (base.scheme, base.netloc):
        raise PermissionDenied("The proxied URL would leave the provider's host.", code="path_not_allowed")
    return url
