"""What an operator reads in the admin: a fake secret without values, durations and money written for
people, the index in setup order with the dashboard linked, guardrail settings explained per kind, and a
useful page at `/`."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from gateway.models import BudgetPolicy, Secret, UsageRecord
from gateway.config.secrets import secret_values
from guardrails.admin import KIND_SETTINGS
from guardrails.kinds import validate_settings
from guardrails.models import Guardrail, GuardrailKind

pytestmark = pytest.mark.django_db


def _url(model: type, view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _text(html: bytes) -> str:
    """The page's visible text, tags dropped and whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html.decode()).split())


def _usage(**fields: object) -> UsageRecord:
    values = {"created_at": timezone.now(), "endpoint_name": "chat", "model_name": "gpt4o-mini", "route": "chat",
              "input_tokens": 1234, "output_tokens": 56, "cost_usd": Decimal("0.0000010000"),
              "latency_ms": 0.1355600000465529, "overhead_ms": 0.0421399999, **fields}
    return UsageRecord.objects.create(**values)


def _secret_form(**overrides: str) -> dict[str, str]:
    return {"name": "demo-fake", "provider": "fake", "values": "", "auth_config": "{}", "description": "",
            **overrides}


def test_a_fake_secret_is_saved_without_values(admin_client: Client):
    response = admin_client.post(_url(Secret, "add"), _secret_form(), follow=True)
    assert response.status_code == 200
    assert b"errorlist" not in response.content
    assert secret_values(Secret.objects.get(name="demo-fake")) == {}


def test_a_real_provider_still_needs_its_values(admin_client: Client):
    response = admin_client.post(_url(Secret, "add"), _secret_form(name="oa", provider="openai"))
    assert response.status_code == 200
    assert "only the fake provider needs no values" in _text(response.content)
    assert not Secret.objects.filter(name="oa").exists()


def test_usage_list_shows_milliseconds_with_two_decimals_and_the_exact_cost(admin_client: Client):
    _usage()
    page = _text(admin_client.get(_url(UsageRecord, "changelist")).content)
    assert "0.14 ms" in page and "0.04 ms" in page
    assert "0.1355600000465529" not in page
    assert "1,234 / 56" in page
    assert "$0.000001" in page


def test_usage_detail_explains_estimated_usage_only_when_it_was_estimated(admin_client: Client):
    reported, estimated = _usage(), _usage(usage_estimated=True)
    reported_page = _text(admin_client.get(_url(UsageRecord, "change", reported.pk)).content)
    estimated_page = _text(admin_client.get(_url(UsageRecord, "change", estimated.pk)).content)
    assert "never reported usage" not in reported_page
    assert "reported by the provider" in reported_page
    assert "never reported usage" in estimated_page
    assert "0.14 ms" in reported_page and "0.1355600000465529" not in reported_page


def test_budget_amounts_keep_their_precision_and_windows_read_naturally(admin_client: Client):
    BudgetPolicy.objects.create(name="tiny", amount_usd=Decimal("0.000001"), window_unit="days", window_value=1)
    BudgetPolicy.objects.create(name="weekly", amount_usd=Decimal("5"), window_unit="weeks", window_value=2)
    listing = _text(admin_client.get(_url(BudgetPolicy, "changelist")).content)
    dashboard = _text(admin_client.get(reverse("gateway-usage-dashboard")).content)
    for page in (listing, dashboard):
        assert "$0.000001" in page
        assert "$5.00" in page
        assert "1 day" in page and "1 days" not in page
        assert "2 weeks" in page


def test_index_links_the_dashboard_and_lists_pages_in_setup_order(admin_client: Client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("gateway-usage-dashboard")}"' in html
    main = html[html.index('id="content-main"'):]
    order = [
        "/admin/gateway/secret/", "/admin/gateway/modeldefinition/", "/admin/gateway/endpoint/",
        "/admin/gateway/apikey/", "/admin/gateway/budgetpolicy/", "/admin/guardrails/guardrail/",
        "/admin/gateway/usagerecord/",
    ]
    positions = [main.index(f'href="{url}"') for url in order]
    assert positions == sorted(positions)
    # Guardrails sit in the gateway's section, before the users and groups.
    assert main.index('href="/admin/guardrails/guardrail/"') < main.index('href="/admin/auth/user/"')


def test_guardrail_form_shows_each_kinds_settings_with_an_example(admin_client: Client):
    add_page = _text(admin_client.get(_url(Guardrail, "add")).content)
    for kind in GuardrailKind:
        keys, example = KIND_SETTINGS[kind]
        assert keys.split(" ")[0] in add_page
    assert "see README" not in add_page
    assert "Example: {&quot;words&quot;" in add_page or 'Example: {"words"' in add_page

    guardrail = Guardrail.objects.create(name="no-pii", kind="pii")
    html = admin_client.get(_url(Guardrail, "change", guardrail.pk)).content.decode()
    assert re.search(r'data-guardrail-kind="pii"(?! hidden)>', html)
    assert re.search(r'data-guardrail-kind="regex" hidden>', html)


@pytest.mark.parametrize("kind", list(GuardrailKind))
def test_every_guardrail_example_is_valid_settings(kind: str):
    assert validate_settings(kind, KIND_SETTINGS[kind][1]) == []


def test_the_root_and_view_site_lead_to_a_page_linking_admin_dashboard_and_health(admin_client: Client):
    index = admin_client.get(reverse("admin:index")).content.decode()
    view_site = re.search(r'<a href="([^"]+)">View site</a>', index).group(1)
    response = admin_client.get(view_site)
    assert response.status_code == 200
    html = response.content.decode()
    for link in (reverse("admin:index"), reverse("gateway-usage-dashboard"), "/health"):
        assert f'href="{link}"' in html
    assert "/gateway/mlflow/v1/chat/completions" in html


def test_the_root_page_needs_no_login(client: Client):
    assert client.get("/").status_code == 200


def test_the_browsers_favicon_request_is_not_logged_as_not_found(client: Client, caplog):
    response = client.get("/favicon.ico")
    assert response.status_code == 204
    assert "Not Found" not in caplog.text
