"""The staff admin: every page renders, only staff get in, secrets go in once and come out masked, and
writes go through the same services as everything else."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from gateway.apikeys import api_key_create, hash_api_key
from gateway.models import (
    ApiKey, BudgetPolicy, Endpoint, EndpointModel, ModelDefinition, RateLimit, RequestLog, Secret, UsageRecord,
)
from gateway.config.secrets import secret_create, secret_values
from guardrails.models import EndpointGuardrail, Guardrail

pytestmark = pytest.mark.database

RAW_VALUE = "sk-test-SUPERSECRET-1234567890abcdef"
MASKED = "sk-...cdef"


def _url(model: type, view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def populated(db) -> dict[type, object]:
    """One row of every registered model, so change pages have something to show."""
    secret = secret_create(name="openai-main", provider="openai", values={"api_key": "sk-fixture-0123456789"})
    model = ModelDefinition.objects.create(name="gpt4o-mini", provider="openai", model_name="gpt-4o-mini",
                                           secret=secret, input_cost_per_million=Decimal("0.15"))
    endpoint = Endpoint.objects.create(name="chat")
    EndpointModel.objects.create(endpoint=endpoint, model=model)
    guardrail = Guardrail.objects.create(name="no-secrets", kind="keywords", settings={"keywords": ["x"]})
    EndpointGuardrail.objects.create(endpoint=endpoint, guardrail=guardrail)
    api_key, _ = api_key_create(name="ci", endpoints=[endpoint])
    budget = BudgetPolicy.objects.create(name="chat-daily", scope="endpoint", target="chat", amount_usd=5)
    rate_limit = RateLimit.objects.create(name="chat-rpm", scope="endpoint", target="chat", requests_per_minute=60)
    usage = UsageRecord.objects.create(created_at=timezone.now(), endpoint_name="chat", model_name="gpt4o-mini",
                                       input_tokens=3, output_tokens=5, cost_usd=Decimal("0.000001"),
                                       request_id="r-1")
    log = RequestLog.objects.create(created_at=timezone.now(), request_id="r-1", endpoint_name="chat",
                                    request_body='{"messages": []}', response_body='{"choices": []}',
                                    attempts=[{"model": "gpt4o-mini", "provider": "openai", "status": None, "error": ""}])
    return {Secret: secret, ModelDefinition: model, Endpoint: endpoint, Guardrail: guardrail, ApiKey: api_key,
            BudgetPolicy: budget, RateLimit: rate_limit, UsageRecord: usage, RequestLog: log}


def _every_page(objects: dict[type, object]) -> list[str]:
    pages = [reverse("admin:index")]
    for model in admin.site._registry:
        pages.append(_url(model, "changelist"))
        if (obj := objects.get(model)) is not None:
            pages += [_url(model, "change", obj.pk), _url(model, "history", obj.pk)]
    return pages


def _secret_form(**overrides: str) -> dict[str, str]:
    return {"name": "openai-admin", "provider": "openai", "values": RAW_VALUE,
            "auth_config": '{"api_base": "https://api.openai.com/v1"}', "description": "", **overrides}


def _endpoint_form(name: str, links: list[dict[str, object]]) -> dict[str, object]:
    data: dict[str, object] = {
        "name": name, "description": "", "routing_strategy": "", "fallback_strategy": "sequential",
        "usage_tracking": "on",
        "links-TOTAL_FORMS": len(links), "links-INITIAL_FORMS": 0,
        "links-MIN_NUM_FORMS": 0, "links-MAX_NUM_FORMS": 1000,
        "guardrail_links-TOTAL_FORMS": 0, "guardrail_links-INITIAL_FORMS": 0,
        "guardrail_links-MIN_NUM_FORMS": 0, "guardrail_links-MAX_NUM_FORMS": 1000,
    }
    for index, link in enumerate(links):
        data.update({f"links-{index}-{key}": value for key, value in link.items()})
    return data


def test_every_model_is_registered():
    registered = set(admin.site._registry)
    assert {Secret, ModelDefinition, Endpoint, BudgetPolicy, ApiKey, UsageRecord, Guardrail} <= registered


@pytest.mark.django_db
def test_every_page_renders_for_staff(admin_client: Client, populated):
    for page in _every_page(populated):
        assert admin_client.get(page).status_code == 200, page
    for model in admin.site._registry:
        expected = 403 if model in (UsageRecord, RequestLog) else 200
        assert admin_client.get(_url(model, "add")).status_code == expected, model


@pytest.mark.django_db
def test_non_staff_are_sent_to_login(client: Client, populated):
    user = get_user_model().objects.create_user("visitor", password="pw-123456789")
    client.force_login(user)
    for page in _every_page(populated):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(reverse("admin:login")), page


@pytest.mark.django_db
def test_secret_value_never_appears_after_creation(admin_client: Client, populated):
    response = admin_client.post(_url(Secret, "add"), _secret_form(), follow=True)
    assert response.status_code == 200
    assert RAW_VALUE not in response.content.decode()
    secret = Secret.objects.get(name="openai-admin")
    assert secret_values(secret) == {"api_key": RAW_VALUE}
    assert secret.created_by == "admin"

    for page in [*_every_page(populated), _url(Secret, "change", secret.pk), _url(Secret, "history", secret.pk)]:
        html = admin_client.get(page).content.decode()
        assert RAW_VALUE not in html, page
        assert "SUPERSECRET" not in html, page
    assert MASKED in admin_client.get(_url(Secret, "change", secret.pk)).content.decode()
    assert MASKED in admin_client.get(_url(Secret, "changelist")).content.decode()


@pytest.mark.django_db
def test_secret_accepts_json_for_several_values(admin_client: Client):
    values = '{"aws_access_key_id": "AKIAEXAMPLE123456", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}'
    form = _secret_form(name="bedrock", provider="bedrock", values=values,
                        auth_config='{"aws_region_name": "us-east-1", "timeout": {"connect": 5, "read": 60}}')
    admin_client.post(_url(Secret, "add"), form)
    assert secret_values(Secret.objects.get(name="bedrock")) == {
        "aws_access_key_id": "AKIAEXAMPLE123456", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG",
    }


@pytest.mark.django_db
def test_editing_with_empty_values_keeps_them(admin_client: Client):
    admin_client.post(_url(Secret, "add"), _secret_form())
    secret = Secret.objects.get(name="openai-admin")
    response = admin_client.post(_url(Secret, "change", secret.pk),
                                 _secret_form(values="", description="rotated monthly"))
    assert response.status_code == 302
    secret.refresh_from_db()
    assert secret.description == "rotated monthly"
    assert secret_values(secret) == {"api_key": RAW_VALUE}


@pytest.mark.django_db
def test_renaming_reencrypts_and_new_values_replace_old(admin_client: Client):
    admin_client.post(_url(Secret, "add"), _secret_form())
    secret = Secret.objects.get(name="openai-admin")
    admin_client.post(_url(Secret, "change", secret.pk), _secret_form(name="openai-renamed", values=""))
    assert secret_values(Secret.objects.get(pk=secret.pk)) == {"api_key": RAW_VALUE}
    replaced = "sk-new-0987654321"
    admin_client.post(_url(Secret, "change", secret.pk), _secret_form(name="openai-renamed", values=replaced))
    assert secret_values(Secret.objects.get(pk=secret.pk)) == {"api_key": replaced}


@pytest.mark.django_db
def test_secret_form_errors_do_not_echo_the_value(admin_client: Client):
    response = admin_client.post(_url(Secret, "add"), _secret_form(auth_config='{"timeout": "soon"}'))
    html = response.content.decode()
    assert response.status_code == 200
    assert "timeout must be seconds" in html
    assert RAW_VALUE not in html
    assert not Secret.objects.exists()


@pytest.mark.django_db
def test_missing_passphrase_is_a_form_error_not_a_crash(admin_client: Client, settings):
    settings.DEBUG = False
    settings.GATEWAY_KEK_PASSPHRASE = ""
    response = admin_client.post(_url(Secret, "add"), _secret_form())
    assert response.status_code == 200
    assert "GATEWAY_KEK_PASSPHRASE is not set" in response.content.decode()
    assert not Secret.objects.exists()


@pytest.mark.django_db
def test_endpoint_with_two_linked_models(admin_client: Client, populated):
    second = ModelDefinition.objects.create(name="gpt4o", provider="openai", model_name="gpt-4o",
                                            secret=populated[Secret])
    links = [{"model": populated[ModelDefinition].pk, "linkage": "primary", "weight": 1, "order": 0},
             {"model": second.pk, "linkage": "fallback", "weight": 1, "order": 1}]
    response = admin_client.post(_url(Endpoint, "add"), _endpoint_form("chat-two", links))
    assert response.status_code == 302
    endpoint = Endpoint.objects.get(name="chat-two")
    assert sorted(endpoint.links.values_list("model__name", "linkage")) == [("gpt4o", "fallback"),
                                                                            ("gpt4o-mini", "primary")]
    assert endpoint.created_by == "admin"


@pytest.mark.django_db
def test_endpoint_needs_a_primary_model(admin_client: Client, populated):
    links = [{"model": populated[ModelDefinition].pk, "linkage": "fallback", "weight": 1, "order": 0}]
    response = admin_client.post(_url(Endpoint, "add"), _endpoint_form("no-primary", links))
    assert response.status_code == 200
    assert "An endpoint needs at least one primary model." in response.content.decode()
    assert not Endpoint.objects.filter(name="no-primary").exists()


@pytest.mark.django_db
def test_api_key_added_in_admin_is_shown_once_and_stored_hashed(admin_client: Client, populated):
    response = admin_client.post(_url(ApiKey, "add"), {"name": "from-admin", "endpoints": [populated[Endpoint].pk]},
                                 follow=True)
    raw = re.search(r"<code>(gw-[A-Za-z0-9_-]{43})</code>", response.content.decode()).group(1)
    api_key = ApiKey.objects.get(name="from-admin")
    assert api_key.key_hash == hash_api_key(raw)
    assert list(api_key.endpoints.all()) == [populated[Endpoint]]

    for page in (_url(ApiKey, "change", api_key.pk), _url(ApiKey, "changelist")):
        html = admin_client.get(page).content.decode()
        assert raw not in html and api_key.key_hash not in html, page
        assert api_key.prefix in html, page


@pytest.mark.django_db
def test_usage_records_are_read_only(admin_client: Client, populated):
    usage = populated[UsageRecord]
    html = admin_client.get(_url(UsageRecord, "change", usage.pk)).content.decode()
    assert 'name="_save"' not in html
    response = admin_client.post(_url(UsageRecord, "change", usage.pk), {"endpoint_name": "tampered"})
    assert response.status_code == 403


def test_renaming_an_endpoint_carries_its_budgets_along(admin_client: Client, populated):
    model = populated[ModelDefinition]
    links = [{"model": model.pk, "linkage": "primary", "weight": 1, "order": 0}]
    assert admin_client.post(_url(Endpoint, "add"), _endpoint_form("before", links)).status_code == 302
    endpoint = Endpoint.objects.get(name="before")
    BudgetPolicy.objects.create(name="cap", scope="endpoint", target="before", amount_usd=5)
    RateLimit.objects.create(name="rpm", scope="endpoint", target="before", requests_per_minute=5)
    link = endpoint.links.get()
    form = _endpoint_form("after", [{"id": link.pk, "endpoint": endpoint.pk, "model": model.pk,
                                     "linkage": "primary", "weight": 1, "order": 0}])
    form["links-INITIAL_FORMS"] = 1
    response = admin_client.post(_url(Endpoint, "change", endpoint.pk), form)
    assert response.status_code == 302
    assert BudgetPolicy.objects.get(name="cap").target == "after"
    assert RateLimit.objects.get(name="rpm").target == "after"


def test_renaming_an_api_key_carries_its_budgets_along(admin_client: Client, populated):
    from gateway.apikeys import api_key_create

    key, _ = api_key_create(name="team-a")
    BudgetPolicy.objects.create(name="team-cap", scope="api_key", target="team-a", amount_usd=5)
    response = admin_client.post(_url(ApiKey, "change", key.pk), {"name": "team-b", "is_active": "on"})
    assert response.status_code == 302
    assert BudgetPolicy.objects.get(name="team-cap").target == "team-b"
