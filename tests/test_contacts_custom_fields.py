"""Custom fields of every type: defined by the admin at runtime or by plugins, validated, stored, filtered."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from crmcore.plugin_api import FieldDef, hookimpl

API = "/api/v1/contacts"
FIELDS = "/api/v1/custom-fields"


def define(client, key, type_, **extra):
    response = client.post(FIELDS, json={"key": key, "label_en": key.title(), "type": type_, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create(client, **fields):
    fields.setdefault("last_name", "Custom")
    response = client.post(API, json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def listed(client, query):
    response = client.get(f"{API}?{query}")
    assert response.status_code == 200, response.get_json()
    return [c["id"] for c in response.get_json()["items"]]


#: type, extra definition, (sent, stored) pairs, invalid values, (filter text, matching stored value)
CASES = [
    ("text", {}, [("  hello ", "hello")], [12, ["a"], "x" * 501], ("hello", "hello")),
    ("long_text", {}, [("line 1\nline 2", "line 1\nline 2")], [True, "x" * 20001], None),
    ("integer", {}, [(42, 42), ("-7", -7), (3.0, 3)], ["4.5", True, "ten", 2.5], ("42", 42)),
    (
        "decimal",
        {},
        [("12,50", "12.5"), (3.25, "3.25"), (7, "7")],
        ["abc", "NaN", "Infinity", True],
        ("12.50", "12.5"),
    ),
    (
        "date",
        {},
        [("2024-02-29", "2024-02-29")],
        ["2023-02-29", "29/02/2024", 20240229],
        ("2024-02-29", "2024-02-29"),
    ),
    ("boolean", {}, [(True, True), ("oui", True), ("no", False)], ["maybe", 2], ("true", True)),
    ("choice", {"choices": ["gold", "silver"]}, [("gold", "gold")], ["bronze", 1], ("silver", "silver")),
    (
        "multi_choice",
        {"choices": ["fr", "en", "de"]},
        [(["fr", "en", "fr"], ["fr", "en"]), ("de, fr", ["de", "fr"])],
        [["es"], 5, {"fr": True}],
        ("en", ["fr", "en"]),
    ),
    ("url", {}, [("https://example.com/a", "https://example.com/a")], ["ftp://x.org", "not a url"], None),
    ("email", {}, [("a@b.co", "a@b.co")], ["nope", "a@b"], ("a@b.co", "a@b.co")),
    (
        "phone",
        {},
        [("+33 6 12 34 56 78", "+33612345678")],
        ["abc", 612345678],
        ("+33612345678", "+33612345678"),
    ),
]


@pytest.mark.parametrize(("type_", "extra", "good", "bad", "_filter"), CASES, ids=[c[0] for c in CASES])
def test_every_type_validates_and_stores(client, type_, extra, good, bad, _filter):
    define(client, "field", type_, **extra)
    for sent, stored in good:
        assert create(client, custom={"field": sent})["custom"] == {"field": stored}
    for value in bad:
        response = client.post(API, json={"last_name": "X", "custom": {"field": value}})
        assert response.status_code == 422, (value, response.get_json())
        assert list(response.get_json()["errors"]) == ["custom.field"]


@pytest.mark.parametrize(
    ("type_", "extra", "_good", "_bad", "filter_"),
    [c for c in CASES if c[4]],
    ids=[c[0] for c in CASES if c[4]],
)
def test_every_type_filters_the_list(client, type_, extra, _good, _bad, filter_):
    define(client, "field", type_, **extra)
    text, stored = filter_
    match = create(client, last_name="Match", custom={"field": stored})
    create(client, last_name="Empty")
    other = {
        "text": "other",
        "integer": 41,
        "decimal": "12.51",
        "date": "2024-03-01",
        "boolean": False,
        "choice": "gold",
        "multi_choice": ["de"],
        "email": "z@b.co",
        "phone": "+33698765432",
    }[type_]
    create(client, last_name="Other", custom={"field": other})
    assert listed(client, f"custom.field={quote(text)}") == [match["id"]]


def test_multi_choice_filter_matches_whole_choices(client):
    define(client, "langs", "multi_choice", choices=["en", "eng"])
    a = create(client, custom={"langs": ["eng"]})
    b = create(client, custom={"langs": ["en", "eng"]})
    assert listed(client, "custom.langs=eng") == sorted([a["id"], b["id"]])
    assert listed(client, "custom.langs=en") == [b["id"]]


def test_custom_filters_combine_with_other_filters(client):
    define(client, "level", "integer")
    define(client, "vip", "boolean")
    hit = create(client, last_name="Hit", custom={"level": 3, "vip": True}, tags=["t"])
    create(client, last_name="Miss", custom={"level": 3, "vip": False}, tags=["t"])
    create(client, last_name="Miss2", custom={"level": 3, "vip": True})
    assert listed(client, "custom.level=3&custom.vip=oui&tag=t") == [hit["id"]]


def test_bad_custom_filters_are_named(client):
    define(client, "level", "integer")
    for query, field in (("custom.nope=1", "custom.nope"), ("custom.level=high", "custom.level")):
        response = client.get(f"{API}?{query}")
        assert response.status_code == 422
        assert field in response.get_json()["errors"]


def test_custom_values_merge_and_null_removes(client):
    define(client, "a", "text")
    define(client, "b", "integer")
    contact = create(client, custom={"a": "x", "b": 1})
    url = f"{API}/{contact['id']}"
    assert client.patch(url, json={"custom": {"b": 2}}).get_json()["custom"] == {"a": "x", "b": 2}
    assert client.patch(url, json={"custom": {"a": None}}).get_json()["custom"] == {"b": 2}
    response = client.patch(url, json={"custom": {"zzz": 1}})
    assert response.status_code == 422
    assert "custom.zzz" in response.get_json()["errors"]


def test_required_field_and_kinds(client):
    define(client, "siret", "text", kinds=["organization"], required=True)
    person = create(client)  # does not apply to people
    response = client.post(API, json={"kind": "organization", "name": "Acme"})
    assert response.status_code == 422
    assert "custom.siret" in response.get_json()["errors"]
    acme = create(client, kind="organization", name="Acme", custom={"siret": "123"})
    assert acme["custom"] == {"siret": "123"}
    response = client.patch(f"{API}/{person['id']}", json={"custom": {"siret": "1"}})
    assert response.status_code == 422
    assert "person" in response.get_json()["errors"]["custom.siret"][0]
    response = client.patch(f"{API}/{acme['id']}", json={"custom": {"siret": None}})
    assert response.status_code == 422


def test_max_length(client):
    define(client, "code", "text", max_length=3)
    assert create(client, custom={"code": "abc"})["custom"] == {"code": "abc"}
    assert client.post(API, json={"last_name": "X", "custom": {"code": "abcd"}}).status_code == 422


# -- definitions -----------------------------------------------------------------------------------


def test_definition_crud(client):
    created = define(client, "sector", "choice", choices=["it", "food"], label_fr="Secteur")
    assert created["source"] == "admin"
    assert created["label_fr"] == "Secteur"
    assert client.get(f"{FIELDS}/sector").get_json()["choices"] == ["it", "food"]
    assert [f["key"] for f in client.get(FIELDS).get_json()] == ["sector"]
    patched = client.patch(
        f"{FIELDS}/sector", json={"label_en": "Industry", "choices": ["it", "food", "auto"]}
    )
    assert patched.status_code == 200
    assert patched.get_json()["label_en"] == "Industry"
    assert create(client, custom={"sector": "auto"})["custom"] == {"sector": "auto"}
    assert client.delete(f"{FIELDS}/sector").status_code == 204
    assert client.get(f"{FIELDS}/sector").status_code == 404
    assert client.delete(f"{FIELDS}/sector").status_code == 404


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"key": "Bad Key", "label_en": "x", "type": "text"}, "key"),
        ({"key": "colour", "label_en": "x", "type": "colour"}, "type"),
        ({"key": "pick", "label_en": "x", "type": "choice"}, "choices"),
        ({"key": "nolabel", "label_en": "  ", "type": "text"}, "label_en"),
        ({"key": "k", "label_en": "x", "type": "text", "kinds": ["robot"]}, "kinds[0]"),
        ({"label_en": "x", "type": "text"}, "key"),
        ({"key": "k", "label_en": "x", "type": "text", "max_length": 0}, "max_length"),
    ],
)
def test_bad_definitions_are_named(client, definition, field):
    response = client.post(FIELDS, json=definition)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_duplicate_key_and_type_change_are_refused(client):
    define(client, "size", "integer")
    assert client.post(FIELDS, json={"key": "size", "label_en": "Size", "type": "text"}).status_code == 409
    response = client.patch(f"{FIELDS}/size", json={"type": "text"})
    assert response.status_code == 422
    assert "type" in response.get_json()["errors"]
    response = client.patch(f"{FIELDS}/size", json={"label_en": " "})
    assert response.status_code == 422
    assert "label_en" in response.get_json()["errors"]


def test_values_survive_a_deleted_definition(client):
    define(client, "nickname", "text")
    contact = create(client, custom={"nickname": "Bob"})
    client.delete(f"{FIELDS}/nickname")
    assert client.get(f"{API}/{contact['id']}").get_json()["custom"] == {"nickname": "Bob"}
    client.patch(f"{API}/{contact['id']}", json={"first_name": "Robert"})
    define(client, "nickname", "text")
    assert client.get(f"{API}/{contact['id']}").get_json()["custom"] == {"nickname": "Bob"}


# -- plugin-defined fields -------------------------------------------------------------------------


class LoyaltyPlugin:
    @hookimpl
    def register_custom_fields(self):
        return [
            FieldDef(key="loyalty", label={"en": "Loyalty points", "fr": "Points"}, type="integer"),
            FieldDef(key="tier", label="Tier", type="choice", choices=("a", "b"), kinds=("organization",)),
        ]


def test_plugin_fields(register_plugin):
    app = register_plugin(LoyaltyPlugin(), name="loyalty")
    with app.app_context():
        from crmcore.services.users import create_token, create_user

        admin = create_user("plugin-admin@example.com", None, is_admin=True)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {create_token(admin.id, 't')[1]}"
        definitions = {f["key"]: f for f in client.get(FIELDS).get_json()}
        assert definitions["loyalty"]["source"] == "loyalty"
        assert definitions["loyalty"]["label_fr"] == "Points"
        assert definitions["tier"]["kinds"] == ["organization"]
        contact = create(client, custom={"loyalty": "120"})
        assert contact["custom"] == {"loyalty": 120}
        create(client, last_name="Poor", custom={"loyalty": 5})
        assert listed(client, "custom.loyalty=120") == [contact["id"]]
        response = client.post(API, json={"last_name": "X", "custom": {"loyalty": "lots"}})
        assert "custom.loyalty" in response.get_json()["errors"]
        # A plugin's definition is not the admin's to change, nor can the admin take its key.
        assert client.patch(f"{FIELDS}/loyalty", json={"label_en": "x"}).status_code == 409
        assert client.delete(f"{FIELDS}/loyalty").status_code == 409
        assert (
            client.post(FIELDS, json={"key": "loyalty", "label_en": "x", "type": "text"}).status_code == 409
        )


def test_a_phone_field_reads_numbers_in_the_contact_s_country(client):
    definition = {"key": "assistant_phone", "label_en": "Assistant", "type": "phone"}
    assert client.post("/api/v1/custom-fields", json=definition).status_code == 201
    london = client.post(
        "/api/v1/contacts",
        json={"last_name": "Smith", "country": "GB", "custom": {"assistant_phone": "020 7946 0958"}},
    )
    assert london.status_code == 201, london.get_json()
    assert london.get_json()["custom"]["assistant_phone"] == "+442079460958"
    paris = client.post(
        "/api/v1/contacts", json={"last_name": "Martin", "custom": {"assistant_phone": "01 23 45 67 89"}}
    )
    assert paris.get_json()["custom"]["assistant_phone"] == "+33123456789"  # CRM_DEFAULT_COUNTRY: FR
