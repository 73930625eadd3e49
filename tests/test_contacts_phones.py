"""Phones (types, E.164, consent flags) and consent proofs, through the REST API."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore.services.contacts import create_contact, update_contact

API = "/api/v1/contacts"


def admin_client(app):
    """A client of ``app`` (not the default test app) signed in as a new admin."""
    from crmcore.services.users import create_token, create_user

    admin = create_user(f"admin{id(app)}@example.com", None, is_admin=True)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {create_token(admin.id, 'test')[1]}"
    return client


FLAGS = ("sms", "whatsapp", "viber", "calls")


def create(client, **fields):
    fields.setdefault("last_name", "Phone")
    response = client.post(API, json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def consents(client, contact_id):
    response = client.get(f"{API}/{contact_id}/consents")
    assert response.status_code == 200
    return response.get_json()


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "typed", "e164"),
    [
        (None, "06 12 34 56 78", "+33612345678"),  # CRM_DEFAULT_COUNTRY is FR
        ("FR", "06.12.34.56.78", "+33612345678"),
        ("BE", "0470 12 34 56", "+32470123456"),
        ("US", "(202) 456-1111", "+12024561111"),
        ("US", "+44 20 7946 0958", "+442079460958"),  # an international number ignores the country
        ("DE", "0044 20 7946 0958", "+442079460958"),
    ],
)
def test_numbers_are_stored_as_typed_and_in_e164(client, country, typed, e164):
    contact = create(client, country=country, phones=[{"number": typed}])
    assert contact["phones"][0]["number"] == typed
    assert contact["phones"][0]["e164"] == e164


def test_default_region_is_configurable(crm_app_factory):
    app = crm_app_factory(DEFAULT_COUNTRY="BE")
    with app.app_context():
        client = admin_client(app)
        contact = create(client, phones=[{"number": "0470 12 34 56"}])
    assert contact["phones"][0]["e164"] == "+32470123456"


@pytest.mark.parametrize(
    "bad", ["abc", "12", "+999 123 456", "06 12 34 56 78 90 12 34 56 78", "+33 6 12 34 56 7x8"]
)
def test_unparsable_number_is_named(client, bad):
    response = client.post(
        API, json={"last_name": "P", "phones": [{"number": "06 12 34 56 78"}, {"number": bad}]}
    )
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert list(errors) == ["phones[1].number"]
    assert bad in errors["phones[1].number"][0]


def test_unparsable_number_in_an_update_writes_nothing(client):
    contact = create(client, phones=[{"number": "06 12 34 56 78"}])
    url = f"{API}/{contact['id']}"
    response = client.patch(url, json={"job_title": "CEO", "phones": [{"number": "not a phone"}]})
    assert response.status_code == 422
    assert "phones[0].number" in response.get_json()["errors"]
    assert client.get(url).get_json() == contact


def test_missing_or_duplicate_number(client):
    response = client.post(API, json={"last_name": "P", "phones": [{"type": "work"}]})
    assert response.status_code == 422
    assert "phones[0].number" in response.get_json()["errors"]
    response = client.post(
        API, json={"last_name": "P", "phones": [{"number": "06 12 34 56 78"}, {"number": "+33612345678"}]}
    )
    assert response.status_code == 422
    assert "phones[1].number" in response.get_json()["errors"]


def test_changing_the_country_keeps_stored_numbers(client):
    contact = create(client, country="FR", phones=[{"number": "06 12 34 56 78"}])
    moved = client.patch(f"{API}/{contact['id']}", json={"country": "BE"}).get_json()
    assert moved["country"] == "BE"
    assert moved["phones"][0]["e164"] == "+33612345678"
    # Sending the list back as read keeps it too; a new national number takes the new country.
    phones = [*moved["phones"], {"number": "0470 12 34 56"}]
    again = client.patch(f"{API}/{contact['id']}", json={"phones": phones}).get_json()
    assert [p["e164"] for p in again["phones"]] == ["+33612345678", "+32470123456"]


def test_e164_sent_by_the_client_is_ignored(client):
    contact = create(client, phones=[{"number": "06 12 34 56 78", "e164": "+10000000000"}])
    assert contact["phones"][0]["e164"] == "+33612345678"


# -- types -----------------------------------------------------------------------------------------


def test_phone_types(client):
    contact = create(
        client,
        phones=[
            {"number": "06 12 34 56 78"},
            {"number": "01 23 45 67 89", "type": "work"},
            {"number": "01 98 76 54 32", "type": "fax"},
        ],
    )
    assert [p["type"] for p in contact["phones"]] == ["mobile", "work", "fax"]
    response = client.post(
        API, json={"last_name": "P", "phones": [{"number": "06 12 34 56 78", "type": "pager"}]}
    )
    assert response.status_code == 422
    assert "pager" in response.get_json()["errors"]["phones[0].type"][0]


def test_admin_added_phone_type(client):
    response = client.post("/api/v1/phone-types", json={"label_en": "Pager", "label_fr": "Bipeur"})
    assert response.status_code == 201
    assert response.get_json()["key"] == "pager"
    contact = create(client, phones=[{"number": "06 12 34 56 78", "type": "pager"}])
    assert contact["phones"][0]["type"] == "pager"
    # A type in use cannot be removed from the list.
    assert client.delete("/api/v1/phone-types/pager").status_code == 409


# -- consent flags and proofs ----------------------------------------------------------------------


def test_consent_flags_default_off(client):
    contact = create(client, phones=[{"number": "06 12 34 56 78"}], emails=[{"address": "a@acme.fr"}])
    assert all(contact["phones"][0][flag] is False for flag in FLAGS)
    assert contact["emails"][0]["accepts_email"] is False
    assert contact["do_not_email"] is False
    assert consents(client, contact["id"]) == []  # nothing granted, nothing to prove


def test_each_flag_is_settable(client):
    phone = {"number": "06 12 34 56 78", **dict.fromkeys(FLAGS, True)}
    contact = create(client, phones=[phone])
    assert all(contact["phones"][0][flag] is True for flag in FLAGS)
    proofs = consents(client, contact["id"])
    assert sorted(p["field"] for p in proofs) == sorted(f"{flag}:+33612345678" for flag in FLAGS)


def test_every_consent_change_is_recorded(client, admin_user):
    before = dt.datetime.now(dt.UTC)
    contact = create(
        client,
        phones=[{"number": "06 12 34 56 78", "sms": True}],
        emails=[{"address": "a@acme.fr"}],
    )
    url = f"{API}/{contact['id']}"
    client.patch(
        url,
        json={
            "phones": [{"number": "06 12 34 56 78", "sms": False, "whatsapp": True}],
            "emails": [{"address": "a@acme.fr", "accepts_email": True}],
        },
    )
    client.patch(url, json={"do_not_email": True})
    proofs = consents(client, contact["id"])
    changes = {(p["field"], p["old"], p["new"]) for p in proofs}
    assert changes == {
        ("sms:+33612345678", None, True),
        ("sms:+33612345678", True, False),
        ("whatsapp:+33612345678", False, True),
        ("email:a@acme.fr", False, True),
        ("do_not_email", False, True),
    }
    for proof in proofs:
        assert proof["action"] == "consent"
        assert proof["source"] == "api"
        assert proof["user_id"] == admin_user.id
        assert proof["user"] == "Admin"
        assert dt.datetime.fromisoformat(proof["at"]) >= before - dt.timedelta(seconds=1)
    # Newest first: the do_not_email change came last.
    assert proofs[0]["field"] == "do_not_email"


def test_consent_proof_keeps_the_source_and_the_user(app, client, make_user):
    clerk = make_user(name="Clerk", password=None)
    contact = create_contact(
        {
            "kind": "person",
            "last_name": "Imported",
            "emails": [{"address": "i@acme.fr", "accepts_email": True}],
        },
        clerk,
        "import",
    )
    update_contact(contact.id, {"phones": [{"number": "+33612345678", "calls": True}]}, None, "web_form")
    proofs = consents(client, contact.id)
    assert {(p["field"], p["source"], p["user_id"]) for p in proofs} == {
        ("email:i@acme.fr", "import", clerk.id),
        ("calls:+33612345678", "web_form", None),
    }


def test_a_new_phone_without_consent_is_not_a_consent_change(client):
    contact = create(client, phones=[{"number": "06 12 34 56 78"}])
    client.patch(
        f"{API}/{contact['id']}", json={"phones": [*contact["phones"], {"number": "06 98 76 54 32"}]}
    )
    assert consents(client, contact["id"]) == []


def test_consent_history_survives_deletion(client):
    contact = create(client, phones=[{"number": "06 12 34 56 78", "viber": True}])
    client.delete(f"{API}/{contact['id']}")
    assert [p["field"] for p in consents(client, contact["id"])] == ["viber:+33612345678"]
