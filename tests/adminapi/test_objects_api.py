"""The management API's configuration objects: addressed by name, validated exactly like `gateway_apply`,
secrets write-only, every change in the admin's History and one configuration version bump."""
from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import Client

from gateway.apikeys import api_key_create
from gateway.config.apply import ConfigError, apply_config
from gateway.config.version import current_config_version
from gateway.models import ApiKey, Endpoint, Secret

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]

RAW_SECRET = "sk-upstream-NEVER-SHOWN-0123456789"
API = "/gateway/admin/v1/"


class Api:
    """A Django test client speaking JSON to the management API with one key."""

    def __init__(self, raw_key: str | None) -> None:
        self.client = Client(**({"HTTP_AUTHORIZATION": f"Bearer {raw_key}"} if raw_key else {}))
        self.bodies: list[bytes] = []

    def __call__(self, method: str, path: str, body: object = None):
        data = json.dumps(body) if body is not None else None
        response = getattr(self.client, method)(API + path, data=data, content_type="application/json")
        self.bodies.append(response.content)
        return response


@pytest.fixture
def api() -> Api:
    owner = get_user_model().objects.create_user("alice")
    _, raw = api_key_create(name="automation", is_admin=True, owner=owner)
    return Api(raw)


def create_chat_setup(api: Api) -> None:
    assert api("post", "secrets", {"name": "openai", "provider": "openai",
                                   "values": {"api_key": RAW_SECRET}}).status_code == 201
    assert api("post", "models", {"name": "gpt", "provider": "openai", "model_name": "gpt-4o-mini",
                                  "secret": "openai"}).status_code == 201
    assert api("post", "endpoints", {"name": "chat", "models": [{"model": "gpt"}]}).status_code == 201


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_objects_are_created_read_and_listed_by_name_in_the_files_shape(api):
    create_chat_setup(api)
    endpoint = api("get", "endpoints/chat").json()
    assert endpoint["models"] == [{"model": "gpt", "linkage": "primary", "weight": 1.0, "order": 0}]
    assert endpoint["fallback"] == {"strategy": "sequential", "max_attempts": None}
    assert [item["name"] for item in api("get", "models").json()["data"]] == ["gpt"]
    assert api("get", "secrets/openai").json()["masked_values"] == {"api_key": "sk-...6789"}


def test_a_read_object_can_be_put_back_unchanged_without_a_new_version(api):
    create_chat_setup(api)
    version = current_config_version()
    for path in ("secrets/openai", "models/gpt", "endpoints/chat"):
        assert api("put", path, api("get", path).json()).status_code == 200
    assert current_config_version() == version


def test_secret_values_never_appear_in_any_answer(api):
    create_chat_setup(api)
    api("patch", "secrets/openai", {"description": "main account"})
    api("get", "secrets")
    api("put", "secrets/openai", {"name": "openai", "provider": "openai", "values": {"api_key": RAW_SECRET + "x"}})
    assert not any(RAW_SECRET.encode() in body for body in api.bodies)
    assert all(b"api_key\":\"sk-up" not in body for body in api.bodies)


def test_a_secret_written_without_values_keeps_its_stored_ones(api):
    create_chat_setup(api)
    from gateway.config.secrets import secret_values

    assert api("put", "secrets/openai", {"provider": "openai", "description": "renamed nothing"}).status_code == 200
    assert secret_values(Secret.objects.get(name="openai")) == {"api_key": RAW_SECRET}


def test_patch_merges_nested_mappings_and_put_resets_what_it_omits(api):
    create_chat_setup(api)
    patched = api("patch", "endpoints/chat", {"retries": 2, "fallback": {"max_attempts": 3}}).json()
    assert patched["fallback"] == {"strategy": "sequential", "max_attempts": 3} and patched["retries"] == 2
    replaced = api("put", "endpoints/chat", {"models": [{"model": "gpt"}]}).json()
    assert replaced["retries"] is None and replaced["fallback"]["max_attempts"] is None


def test_an_unknown_field_is_a_400_naming_it(api):
    answer = api("post", "models", {"name": "m", "provider": "fake", "model_name": "fake-echo", "colour": "red"})
    assert answer.status_code == 400
    assert error(answer)["param"] == "colour"
    assert "colour: unknown key" in error(answer)["message"]


def test_problems_carry_the_same_message_as_gateway_apply(api):
    item = {"name": "m", "provider": "openai", "model_name": "gpt-4o", "secret": "missing",
            "input_cost_per_million": "3"}
    with pytest.raises(ConfigError) as raised:
        apply_config({"models": [item]})
    answer = api("post", "models", item)
    assert answer.status_code == 400
    file_messages = [problem.removeprefix("models[0].") for problem in raised.value.problems]
    assert error(answer)["message"] == "; ".join(file_messages)
    assert error(answer)["param"] == file_messages[0].split(":")[0]


def test_nested_problems_are_located_inside_the_object(api):
    create_chat_setup(api)
    answer = api("put", "endpoints/chat", {"models": [{"model": "gpt"}, {"model": "nope", "weight": 1}]})
    assert error(answer)["param"] == "models[1].model"
    assert "unknown model 'nope'" in error(answer)["message"]


def test_unknown_name_is_404_and_a_taken_name_409(api):
    create_chat_setup(api)
    assert error(api("get", "endpoints/nope"))["type"] == "not_found_error"
    assert api("patch", "budgets/nope", {}).status_code == 404
    taken = api("post", "endpoints", {"name": "chat", "models": [{"model": "gpt"}]})
    assert taken.status_code == 409 and error(taken)["code"] == "name_taken"


def test_deleting_an_object_still_in_use_is_409_and_changes_nothing(api):
    create_chat_setup(api)
    assert api("post", "api-keys", {"name": "team", "endpoints": ["chat"]}).status_code == 201
    for path, user in (("secrets/openai", "model gpt"), ("models/gpt", "endpoint chat"), ("endpoints/chat", "API key team")):
        answer = api("delete", path)
        assert answer.status_code == 409 and user in error(answer)["message"]
    assert api("delete", "api-keys/team").status_code == 204
    for path in ("endpoints/chat", "models/gpt", "secrets/openai"):
        assert api("delete", path).status_code == 204
    assert not Endpoint.objects.exists() and not Secret.objects.exists()


def test_an_api_key_is_answered_once_then_only_its_prefix(api):
    create_chat_setup(api)
    created = api("post", "api-keys", {"name": "team", "endpoints": ["chat"]}).json()
    answered_at = len(api.bodies)
    assert created["key"].startswith(created["prefix"]) and created["endpoints"] == ["chat"]
    assert created["is_admin"] is False
    later = api("get", "api-keys/team").json()
    assert "key" not in later and later["prefix"] == created["prefix"]
    assert not any(created["key"].encode() in body for body in api.bodies[answered_at:])
    assert api("patch", "api-keys/team", {"endpoints": []}).json()["endpoints"] == []
    assert list(ApiKey.objects.get(name="team").endpoints.all()) == []


def test_every_change_is_one_version_bump_and_one_history_entry_naming_key_and_owner(api):
    create_chat_setup(api)
    version = current_config_version()
    entries = LogEntry.objects.count()
    answer = api("put", "endpoints/chat", {"models": [{"model": "gpt", "weight": 2}], "retries": 1})
    assert answer.status_code == 200
    assert current_config_version() == version + 1
    assert LogEntry.objects.count() == entries + 1
    entry = LogEntry.objects.latest("action_time")
    assert entry.user.username == "alice" and entry.object_repr == "chat"
    assert "API key 'automation' (owner alice)" in entry.change_message
    assert "models" in entry.change_message and "retries" in entry.change_message


def test_a_key_without_owner_is_recorded_under_the_service_account():
    _, raw = api_key_create(name="ci", is_admin=True)
    Api(raw)("post", "guardrails", {"name": "no-pii", "kind": "pii"})
    entry = LogEntry.objects.get()
    assert entry.user.username == "gateway-api" and not entry.user.is_active
    assert "API key 'ci'" in entry.change_message


@pytest.mark.parametrize("headers, status, code", [
    ({}, 401, "missing_api_key"),
    ({"HTTP_AUTHORIZATION": "Bearer gw-not-a-key"}, 401, "invalid_api_key"),
])
def test_without_a_valid_key_the_answer_is_401(headers, status, code):
    answer = Client(**headers).get(API + "endpoints")
    assert answer.status_code == status and answer.json()["error"]["code"] == code


def test_a_client_key_is_refused_with_403():
    _, raw = api_key_create(name="client")
    answer = Api(raw)("post", "guardrails", {"name": "x", "kind": "pii"})
    assert answer.status_code == 403 and error(answer)["code"] == "admin_key_required"
    assert Api(raw)("get", "openapi.json").status_code == 403


def test_a_staff_session_works_with_csrf_on_writes():
    get_user_model().objects.create_superuser("root", password="pw-0123456789")
    browser = Client(enforce_csrf_checks=True)
    browser.login(username="root", password="pw-0123456789")
    assert browser.get(API + "endpoints").status_code == 200
    body = json.dumps({"name": "no-pii", "kind": "pii"})
    refused = browser.post(API + "guardrails", data=body, content_type="application/json")
    assert refused.status_code == 403
    browser.get("/admin/")
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(API + "guardrails", data=body, content_type="application/json",
                            HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    assert LogEntry.objects.get().user.username == "root"


def test_a_staff_user_needs_the_models_permission():
    get_user_model().objects.create_user("viewer", password="pw-0123456789", is_staff=True)
    browser = Client()
    browser.login(username="viewer", password="pw-0123456789")
    assert browser.get(API + "endpoints").status_code == 403


def test_an_unknown_path_and_a_non_object_body_answer_json(api):
    assert error(api("get", "nothing/here"))["type"] == "not_found_error"
    answer = api("post", "budgets", ["not", "an", "object"])
    assert answer.status_code == 400 and error(answer)["code"] == "invalid_body"


def test_environment_references_are_refused(api, monkeypatch):
    monkeypatch.setenv("SOME_VARIABLE", "value")
    answer = api("post", "secrets", {"name": "s", "provider": "openai", "values": {"api_key": {"env": "SOME_VARIABLE"}}})
    assert answer.status_code == 400 and error(answer)["param"] == "values.api_key"


def test_an_admin_key_cannot_lock_itself_out(api):
    for method, body in (("patch", {"is_active": False}), ("patch", {"is_admin": False}), ("delete", None)):
        answer = api(method, "api-keys/automation", body)
        assert answer.status_code == 409 and error(answer)["code"] == "own_key"
    assert api("get", "api-keys").status_code == 200


def test_a_rule_the_admin_enforces_is_enforced_by_the_api_with_the_same_message(api):
    item = {"name": "s", "provider": "openai", "values": {"api_key": RAW_SECRET}, "auth_config": {"timeout": "soon"}}
    answer = api("post", "secrets", item)
    assert answer.status_code == 400 and error(answer)["param"] == "auth_config"
    assert error(answer)["message"].startswith("auth_config: timeout must be seconds (> 0)")
    assert RAW_SECRET not in answer.content.decode()


def test_nul_characters_are_refused_before_the_database_sees_them(api):
    answer = api("post", "guardrails", {"name": "g", "kind": "keywords", "settings": {"words": ["a\x00b"]}})
    assert answer.status_code == 400 and error(answer)["param"] == "settings.words[0]"
    assert api("get", "guardrails/a%00b").status_code == 404


def test_lists_filter_by_their_fixed_value_fields(api):
    create_chat_setup(api)
    api("post", "models", {"name": "local", "provider": "fake", "model_name": "fake-echo"})
    assert [item["name"] for item in api("get", "models?provider=fake").json()["data"]] == ["local"]
    assert error(api("get", "models?colour=red"))["param"] == "colour"
    assert error(api("get", "models?provider=nope"))["param"] == "provider"


def test_an_api_keys_owner_is_set_by_username(api):
    created = api("post", "api-keys", {"name": "team", "owner": "alice"}).json()
    assert created["owner"] == "alice"
    assert api("patch", "api-keys/team", {"owner": None}).json()["owner"] is None
    assert error(api("patch", "api-keys/team", {"owner": "nobody"}))["param"] == "owner"


def test_rate_limits_are_served_like_every_other_section(api):
    create_chat_setup(api)
    created = api("post", "rate-limits", {"name": "chat-rpm", "scope": "endpoint", "target": "chat",
                                          "requests_per_minute": 60})
    assert created.status_code == 201 and created.json()["requests_per_minute"] == 60
    assert error(api("post", "rate-limits", {"name": "empty", "scope": "global"}))["type"] == "invalid_request_error"
    answer = api("delete", "endpoints/chat")
    assert answer.status_code == 409 and "rate limit chat-rpm" in error(answer)["message"]


def test_a_models_audio_prices_are_written_read_and_validated(api):
    created = api("post", "models", {"name": "voice", "provider": "fake", "model_name": "rt",
                                     "audio_input_cost_per_million": 32, "audio_output_cost_per_million": 64})
    assert created.status_code == 201
    read = api("get", "models/voice").json()
    assert (read["audio_input_cost_per_million"], read["audio_output_cost_per_million"]) == (32, 64)
    assert read["input_cost_per_million"] is None
    patched = api("patch", "models/voice", {"audio_output_cost_per_million": None})
    assert patched.status_code == 200 and patched.json()["audio_output_cost_per_million"] is None
    refused = api("patch", "models/voice", {"audio_input_cost_per_million": -2})
    assert refused.status_code == 400
    assert error(refused)["param"] == "audio_input_cost_per_million"
    assert "greater than or equal to 0" in error(refused)["message"]

