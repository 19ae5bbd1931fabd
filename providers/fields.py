"""What each provider reads from a secret: its credential values (secret, write-only) and its `auth_config`
keys (not secret), with types and defaults taken from the adapters' own constants, and the credential
modes it accepts. The management API's provider list and the admin's help read this one declaration."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from providers.anthropic.adapter import DEFAULT_API_BASE as ANTHROPIC_BASE, DEFAULT_VERSION as ANTHROPIC_VERSION
from providers.bedrock.adapter import DEFAULT_REGION as BEDROCK_REGION
from providers.cohere.adapter import DEFAULT_API_BASE as COHERE_BASE
from providers.gemini.adapter import DEFAULT_API_BASE as GEMINI_BASE
from providers.openai.translate import AZURE_AI_API_VERSION, DEFAULT_BASES
from providers.registry import AUTH_MODES


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "string"
    default: object = None
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class CredentialMode:
    """One way to authenticate: the secret values it needs (`requires`) and may use (`optional`)."""

    name: str
    requires: tuple[str, ...]
    optional: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ProviderFields:
    credential_modes: tuple[CredentialMode, ...]
    auth_config: tuple[Field, ...] = ()

    def credential_names(self) -> list[str]:
        names: list[str] = []
        for mode in self.credential_modes:
            names += [name for name in (*mode.requires, *mode.optional) if name not in names]
        return names

    def as_dict(self) -> dict:
        return {
            "credential_fields": [{"name": name, "secret": True} for name in self.credential_names()],
            "credential_modes": [asdict(mode) for mode in self.credential_modes],
            "auth_config_fields": [{**asdict(item), "secret": False} for item in (*self.auth_config, TIMEOUT)],
        }


TIMEOUT = Field("timeout", "number|object", None, description='Seconds, or {"connect", "read", "total"} seconds.')
API_KEY = (CredentialMode("api_key", ("api_key",), description="An API key."),)


def _api_base(default: str | None, required: bool = False) -> Field:
    return Field("api_base", "url", default, required or default is None, "Where the provider's API lives.")


def _openai_style(provider: str) -> ProviderFields:
    return ProviderFields(API_KEY, (_api_base(DEFAULT_BASES.get(provider)),
                                    Field("organization", description="Sent as OpenAI-Organization."),
                                    Field("project", description="Sent as OpenAI-Project.")))


FIELDS: dict[str, ProviderFields] = {
    **{provider: _openai_style(provider) for provider in (
        "openai", "groq", "deepseek", "xai", "openrouter", "ollama", "mistral", "together", "fireworks",
        "vllm", "openai_compatible")},
    "databricks": ProviderFields(
        (CredentialMode("api_key", ("api_key",), description="A personal access token."),
         CredentialMode("oauth_m2m", ("client_id", "client_secret"),
                        description="A service principal's OAuth secret (machine-to-machine tokens).")),
        (_api_base(None, True),)),
    "azure_ai": ProviderFields(
        (CredentialMode("api_key", ("api_key",), description="The resource's API key."),
         CredentialMode("azure_ad_token", ("azure_ad_token",), description="A Microsoft Entra ID token.")),
        (_api_base(None, True), Field("api_version", default=AZURE_AI_API_VERSION))),
    "cohere": ProviderFields(API_KEY, (_api_base(COHERE_BASE),)),
    "litellm": ProviderFields(
        (CredentialMode("api_key", (), ("api_key",), description="The upstream's key, if it needs one."),),
        (Field("api_base", "url", description="Where litellm sends the call, if not its default."),
         Field("litellm_params", "object", description="Keyword arguments passed to litellm."))),
    "azure": ProviderFields(
        (CredentialMode("api_key", ("api_key",), description="The resource's API key."),
         CredentialMode("azure_ad_token", ("azure_ad_token",), description="A Microsoft Entra ID token.")),
        (_api_base(None, True), Field("api_version", default="2024-10-21"),
         Field("deployment_name", description="Defaults to the model definition's model name."))),
    "portkey": ProviderFields(
        (CredentialMode("api_key", ("api_key",), ("provider_api_key", "portkey_config"),
                        description="Portkey's key, optionally the upstream provider's key and a config."),),
        (_api_base(DEFAULT_BASES.get("portkey")), Field("portkey_provider"))),
    "anthropic": ProviderFields(API_KEY, (_api_base(ANTHROPIC_BASE),
                                          Field("version", default=ANTHROPIC_VERSION,
                                                description="Sent as anthropic-version."))),
    "gemini": ProviderFields(API_KEY, (_api_base(GEMINI_BASE),)),
    "bedrock": ProviderFields(
        (CredentialMode("api_key", ("api_key",), description="A Bedrock API key (bearer)."),
         CredentialMode("access_keys", ("aws_access_key_id", "aws_secret_access_key"), ("aws_session_token",),
                        description="AWS access keys, signed with SigV4."),
         CredentialMode("default_chain", (), description="botocore's default chain: environment, shared files, "
                        "web identity, container or instance metadata.")),
        (Field("aws_region_name", default=BEDROCK_REGION), Field("auth_mode", "|".join(AUTH_MODES["bedrock"])),
         Field("aws_profile_name"), Field("aws_role_arn", description="A role to assume on top of the credentials."),
         Field("aws_role_session_name"), Field("aws_external_id"),
         Field("api_base", "url", description="Defaults to the region's bedrock-runtime host."))),
    "vertex_ai": ProviderFields(
        (CredentialMode("service_account", ("vertex_credentials",), description="A service-account key (JSON)."),
         CredentialMode("adc", (), description="Application Default Credentials (google.auth.default).")),
        (Field("vertex_project", required=True), Field("vertex_location", default="global"),
         Field("auth_mode", "|".join(AUTH_MODES["vertex_ai"])),
         Field("api_base", "url", description="Defaults to the location's aiplatform host."))),
    "fake": ProviderFields((), (Field("reply"), Field("latency_ms", "number", 0), Field("dimensions", "integer", 8))),
}
