"""The raw proxy's path rules: tricks refused before matching, whole-segment prefixes, per-provider
defaults and operator lists, the final host pinned to the api_base's."""
from __future__ import annotations

import pytest

from gateway.errors import BadRequest, PermissionDenied
from gateway.proxy import paths


@pytest.mark.parametrize("raw", ["files/../admin", "../files", "files/./x", "files//x", "", "files%2Fx", "files%2fx",
                                 "files/%2e%2e/x", "files/%2E/x", "files\\x", "files%5cx", "files/%00"])
def test_tricks_are_refused(raw):
    with pytest.raises(BadRequest):
        paths.clean_path(raw)


@pytest.mark.parametrize("raw", ["models", "files/file-abc/content", "batches/batch_1", "files/a%20b"])
def test_ordinary_paths_pass_unchanged(raw):
    assert paths.clean_path(raw) == raw


@pytest.mark.parametrize("path, allowed", [
    ("files", True), ("files/abc/content", True), ("filesystem", False), ("fine_tuning/jobs", False),
    ("organization/users", False), ("models/gpt-4o", True), ("models/gemini:generateContent", False),
    ("batches/b1", True),
])
def test_default_prefixes_match_whole_segments(path, allowed):
    assert paths.is_allowed(path, paths.allowed_prefixes("openai", {})) is allowed


def test_provider_defaults_and_operator_lists():
    assert "messages/batches" in paths.allowed_prefixes("anthropic", {})
    assert not paths.is_allowed("messages", paths.allowed_prefixes("anthropic", {}))
    assert paths.allowed_prefixes("openai", {"openai": ["/fine_tuning/"]}) == ("fine_tuning",)
    assert paths.allowed_prefixes("gemini", {"openai": ["x"]}) == paths.DEFAULT_PREFIXES
    assert paths.is_allowed("models/m:countTokens", ("models/m:countTokens",))


def test_refusal_names_the_allowed_prefixes():
    with pytest.raises(PermissionDenied, match="models, files, batches"):
        paths.check_allowed("fine_tuning/jobs", "openai", paths.DEFAULT_PREFIXES)


def test_upstream_url_keeps_the_host():
    assert paths.upstream_url("https://api.openai.com/v1/", "files", "limit=2") == "https://api.openai.com/v1/files?limit=2"
    # An `@` in the path cannot turn the host into a user name: the base's slash comes first.
    assert paths.upstream_url("https://api.openai.com", "@evil.example/x", "") == "https://api.openai.com/@evil.example/x"
