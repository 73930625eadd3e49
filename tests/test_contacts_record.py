"""The contact record through the REST API: kinds, numbers, lists, emails, addresses, status, ownership."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from crmcore.services.contacts import get_contact, set_status

API = "/api/v1/contacts"


def create(client, **fields):
    response = client.post(API, json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def refused(response, *fields, status=422):
    """Assert a JSON error naming exactly ``fields`` (at least) and return its errors."""
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["code"] == status
    for field in fields:
        assert field in body["errors"], body
        assert all(isinstance(m, str) and m for m in body["errors"][field])
    return body["errors"]


# -- kinds and required names ----------------------------------------------------------------------


def test_create_person_with_defaults(client, admin_user):
    response = client.post(API, json={"first_name": "Jean", "last_name": "Dupont"})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"].endswith(f"{API}/{body['id']}")
    assert body["kind"] == "person"
    assert re.fullmatch(r"C-\d{6}", body["number"])
    assert body["display_name"] == "Jean Dupont"
    assert body["version"] == 1
    assert body["status"] == "prospect"
    assert body["is_supplier"] is False
    assert body["visibility"] == "public_read"
    assert body["do_not_email"] is False
    assert body["notify_owners"] is False
    assert body["emails"] == body["phones"] == body["addresses"] == body["tags"] == []
    assert body["social"] == body["custom"] == {}
    assert body["owners"] == [admin_user.id]  # the creator owns what they create
    assert client.get(body and f"{API}/{body['id']}").get_json() == body


def test_person_needs_last_name(client):
    refused(client.post(API, json={"first_name": "Jean"}), "last_name")
    refused(client.post(API, json={"kind": "person", "last_name": "   "}), "last_name")
    assert client.get(API).get_json()["items"] == []


def test_organization_needs_name(client):
    errors = refused(client.post(API, json={"kind": "organization", "last_name": "Dupont"}), "name")
    assert "last_name" not in errors
    org = create(client, kind="organization", name="Acme SA")
    assert org["display_name"] == "Acme SA"


def test_unknown_kind_is_refused(client):
    refused(client.post(API, json={"kind": "robot", "last_name": "X"}), "kind")


def test_kind_can_change_and_needs_the_other_name(client):
    contact = create(client, last_name="Durand", first_name="Ana")
    url = f"{API}/{contact['id']}"
    refused(client.patch(url, json={"kind": "organization"}), "name")
    assert client.get(url).get_json()["kind"] == "person"
    response = client.patch(url, json={"kind": "organization", "name": "Durand SARL"})
    assert response.status_code == 200
    assert response.get_json()["kind"] == "organization"
    assert response.get_json()["display_name"] == "Durand SARL"
    back = client.patch(url, json={"kind": "person"}).get_json()
    assert back["kind"] == "person"
    assert back["display_name"] == "Ana Durand"


def test_every_error_is_reported_at_once(client):
    errors = refused(
        client.post(
            API,
            json={
                "first_name": "x",
                "country": "ZZ",
                "language": "xx",
                "birthday": "2990-01-01",
                "emails": [{"address": "nope"}],
            },
        ),
        "last_name",
        "country",
        "language",
        "birthday",
        "emails[0].address",
    )
    assert len(errors) == 5


def test_text_limits_are_enforced(client):
    refused(client.post(API, json={"last_name": "x" * 201}), "last_name")
    refused(client.post(API, json={"kind": "organization", "name": "x" * 301}), "name")
    refused(client.post(API, json={"last_name": "x", "external_id": "x" * 256}), "external_id")
    created = create(client, last_name="x" * 200, job_title="  Boss  ")
    assert created["job_title"] == "Boss"


# -- numbers ---------------------------------------------------------------------------------------


def test_numbers_are_sequential_unique_and_never_reused(client):
    first = create(client, last_name="A")
    second = create(client, last_name="B")
    assert client.delete(f"{API}/{second['id']}").status_code == 204
    client.post(API, json={"first_name": "no last name"})  # refused: consumes nothing visible
    third = create(client, last_name="C")
    numbers = [int(c["number"][2:]) for c in (first, second, third)]
    assert numbers[1] == numbers[0] + 1
    assert numbers[2] > numbers[1]
    assert len({first["number"], second["number"], third["number"]}) == 3


def test_read_only_fields_sent_by_the_client_are_ignored(client):
    contact = create(client, last_name="Roux", number="C-999999", id=777, display_name="Fake")
    assert contact["number"] != "C-999999"
    assert contact["id"] != 777
    assert contact["display_name"] == "Roux"
    again = client.patch(f"{API}/{contact['id']}", json=contact)
    assert again.status_code == 200
    assert again.get_json()["version"] == contact["version"]  # sending back what was read changes nothing


# -- configurable lists ----------------------------------------------------------------------------


def test_origin_and_salutation_take_keys_or_labels(client):
    contact = create(client, last_name="Petit", origin="Salon professionnel", salutation="Mme")
    assert contact["origin"] == "trade_show"
    assert contact["salutation"] == "mrs"
    contact = create(client, last_name="Grand", origin="referral", salutation="Dr")
    assert (contact["origin"], contact["salutation"]) == ("referral", "dr")


def test_values_outside_the_lists_are_refused(client):
    refused(client.post(API, json={"last_name": "X", "origin": "carrier pigeon"}), "origin")
    refused(client.post(API, json={"last_name": "X", "salutation": "Sir Lord"}), "salutation")


def test_admin_added_origin_is_accepted(client):
    assert client.post("/api/v1/origins", json={"label_en": "Podcast"}).status_code == 201
    assert create(client, last_name="Blanc", origin="podcast")["origin"] == "podcast"


# -- social, language, country, website, birthday, external id -------------------------------------


def test_social_links(client):
    contact = create(
        client,
        last_name="Social",
        social={"linkedin": "https://linkedin.com/in/x", "Mastodon": " https://m.example/@x ", "x": None},
    )
    assert contact["social"] == {"linkedin": "https://linkedin.com/in/x", "mastodon": "https://m.example/@x"}
    refused(client.post(API, json={"last_name": "S", "social": {"Bad Key!": "u"}}), "social.Bad Key!")
    refused(client.post(API, json={"last_name": "S", "social": {"linkedin": 5}}))
    refused(client.post(API, json={"last_name": "S", "social": ["https://x"]}), "social")


def test_language_and_country_codes(client):
    contact = create(client, last_name="Lang", language="EN", country="be")
    assert (contact["language"], contact["country"]) == ("en", "BE")
    refused(client.post(API, json={"last_name": "L", "country": "XX"}), "country")
    refused(client.post(API, json={"last_name": "L", "language": "qq"}), "language")
    cleared = client.patch(f"{API}/{contact['id']}", json={"language": None, "country": None}).get_json()
    assert (cleared["language"], cleared["country"]) == (None, None)


def test_website_birthday_external_id(client):
    contact = create(
        client, last_name="Web", website="example.com", birthday="1980-02-29", external_id="ERP-42"
    )
    assert contact["website"] == "https://example.com"
    assert contact["birthday"] == "1980-02-29"
    assert contact["external_id"] == "ERP-42"
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    refused(client.post(API, json={"last_name": "W", "birthday": tomorrow}), "birthday")
    refused(client.post(API, json={"last_name": "W", "birthday": "1980-02-30"}), "birthday")
    refused(client.post(API, json={"last_name": "W", "website": "not a web address"}), "website")


# -- emails ----------------------------------------------------------------------------------------


def test_emails_defaults(client):
    contact = create(client, last_name="Mail", emails=[{"address": "a@acme.fr"}, {"address": "b@acme.fr"}])
    assert contact["emails"] == [
        {"address": "a@acme.fr", "label": "work", "primary": True, "accepts_email": False},
        {"address": "b@acme.fr", "label": "work", "primary": False, "accepts_email": False},
    ]


def test_emails_label_primary_and_consent(client):
    contact = create(
        client,
        last_name="Mail",
        emails=[
            {"address": "home@example.org", "label": "home"},
            {"address": "work@acme.fr", "primary": True, "accepts_email": True},
        ],
    )
    assert [e["primary"] for e in contact["emails"]] == [False, True]
    assert contact["emails"][0]["label"] == "home"
    assert contact["emails"][1]["accepts_email"] is True


@pytest.mark.parametrize(
    ("emails", "field"),
    [
        ([{"address": "nope"}], "emails[0].address"),
        ([{"address": "a@b.fr"}, {"address": "A@B.FR"}], "emails[1].address"),
        ([{"address": "a@b.fr", "label": "pigeon"}], "emails[0].label"),
        ([{"address": "a@b.fr", "primary": True}, {"address": "c@b.fr", "primary": True}], "emails"),
        ([{"label": "work"}], "emails[0].address"),
        ([{"address": "a@b.fr", "colour": "red"}], "emails[0].colour"),
    ],
)
def test_bad_emails_are_named(client, emails, field):
    refused(client.post(API, json={"last_name": "M", "emails": emails}), field)


def test_do_not_email_is_off_by_default_and_settable(client):
    contact = create(client, last_name="Quiet")
    assert contact["do_not_email"] is False
    updated = client.patch(f"{API}/{contact['id']}", json={"do_not_email": True}).get_json()
    assert updated["do_not_email"] is True


# -- addresses -------------------------------------------------------------------------------------


MAIN = {
    "kind": "main",
    "street": "1 rue de la Paix",
    "postal_code": "75002",
    "city": "Paris",
    "country": "fr",
}


def test_address_kinds_and_iso_country(client):
    kinds = ["main", "billing", "shipping", "other", "personal"]
    contact = create(client, last_name="Addr", addresses=[{**MAIN, "kind": kind} for kind in kinds])
    assert [a["kind"] for a in contact["addresses"]] == kinds
    assert {a["country"] for a in contact["addresses"]} == {"FR"}
    refused(client.post(API, json={"last_name": "A", "addresses": [{"kind": "moon"}]}), "addresses[0].kind")
    refused(
        client.post(API, json={"last_name": "A", "addresses": [MAIN, {"city": "X", "country": "QQ"}]}),
        "addresses[1].country",
    )
    refused(
        client.post(API, json={"last_name": "A", "addresses": [{"city": "x" * 121}]}), "addresses[0].city"
    )


def test_empty_address_block_is_dropped(client):
    contact = create(client, last_name="Addr", addresses=[MAIN, {"kind": "billing", "street": "  "}])
    assert [a["kind"] for a in contact["addresses"]] == ["main"]


def test_copy_main_address(client):
    contact = create(client, last_name="Copy", addresses=[MAIN, {"kind": "billing", "city": "Lyon"}])
    url = f"{API}/{contact['id']}/addresses/copy"
    response = client.post(url, json={"to": "billing"})
    assert response.status_code == 200
    addresses = {a["kind"]: a for a in response.get_json()["addresses"]}
    assert set(addresses) == {"main", "billing"}
    assert {**addresses["billing"], "kind": "main"} == addresses["main"]
    shipping = client.post(url, json={"to": "shipping"}).get_json()["addresses"]
    assert [a["kind"] for a in shipping] == ["main", "billing", "shipping"]
    refused(client.post(url, json={"to": "main"}), "to")
    refused(client.post(url, json={}), "to")


def test_copy_without_main_address_is_refused(client):
    contact = create(client, last_name="NoMain", addresses=[{"kind": "billing", "city": "Lyon"}])
    refused(client.post(f"{API}/{contact['id']}/addresses/copy", json={"to": "shipping"}), "addresses")


# -- status ----------------------------------------------------------------------------------------


def test_status_and_supplier_flag(client):
    contact = create(client, last_name="Stat", status="customer", is_supplier=True)
    assert (contact["status"], contact["is_supplier"]) == ("customer", True)
    refused(client.post(API, json={"last_name": "S", "status": "vip"}), "status")
    forced = client.post(f"{API}/{contact['id']}/status", json={"status": "user", "is_supplier": False})
    assert forced.status_code == 200
    assert (forced.get_json()["status"], forced.get_json()["is_supplier"]) == ("user", False)
    refused(client.post(f"{API}/{contact['id']}/status", json={"status": "vip"}), "status")


def test_automatic_status_change_applies_unless_forced(client, app):
    free = create(client, last_name="Free")
    set_status(get_contact(free["id"]), "customer", automatic=True)
    assert client.get(f"{API}/{free['id']}").get_json()["status"] == "customer"

    forced = create(client, last_name="Forced")
    client.post(f"{API}/{forced['id']}/status", json={"status": "prospect"})
    client.post(f"{API}/{forced['id']}/status", json={"status": "user"})
    set_status(get_contact(forced["id"]), "customer", automatic=True)
    assert client.get(f"{API}/{forced['id']}").get_json()["status"] == "user"


def test_status_set_by_a_user_in_an_edit_is_forced(client, app):
    contact = create(client, last_name="Edited")
    client.patch(f"{API}/{contact['id']}", json={"status": "user"})
    set_status(get_contact(contact["id"]), "customer", automatic=True)
    assert client.get(f"{API}/{contact['id']}").get_json()["status"] == "user"


def test_automatic_change_does_not_force(client, app):
    contact = create(client, last_name="Auto")
    set_status(get_contact(contact["id"]), "customer", automatic=True)
    set_status(get_contact(contact["id"]), "user", automatic=True)
    assert client.get(f"{API}/{contact['id']}").get_json()["status"] == "user"


# -- owners, team, visibility ----------------------------------------------------------------------


@pytest.fixture
def people(make_user):
    from crmcore.services.users import create_team

    return (
        make_user(name="Alice", password=None).id,
        make_user(name="Bob", password=None).id,
        create_team("Sales").id,
    )


def test_owners_team_visibility_notify(client, people):
    alice, bob, team = people
    contact = create(
        client,
        last_name="Owned",
        owners=[bob, alice, bob],
        team_id=team,
        visibility="private",
        notify_owners=True,
    )
    assert contact["owners"] == [alice, bob]
    assert (contact["team_id"], contact["visibility"], contact["notify_owners"]) == (team, "private", True)
    listed = client.get(f"{API}?owner={alice}").get_json()["items"]
    assert [c["id"] for c in listed] == [contact["id"]]
    changed = client.patch(f"{API}/{contact['id']}", json={"owners": [bob], "team_id": None}).get_json()
    assert (changed["owners"], changed["team_id"]) == ([bob], None)


def test_bad_owners_team_visibility(client, people):
    refused(client.post(API, json={"last_name": "O", "owners": [99999]}), "owners")
    refused(client.post(API, json={"last_name": "O", "team_id": 99999}), "team_id")
    refused(client.post(API, json={"last_name": "O", "visibility": "secret"}), "visibility")
    refused(client.post(API, json={"last_name": "O", "owners": ["alice"]}), "owners[0]")


# -- delete and restore ----------------------------------------------------------------------------


def test_soft_delete_and_restore(client):
    contact = create(client, last_name="Gone", tags=["keep"], emails=[{"address": "g@acme.fr"}])
    url = f"{API}/{contact['id']}"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.get(url).get_json()["code"] == 404
    assert client.patch(url, json={"first_name": "x"}).status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get(API).get_json()["items"] == []
    assert [c["id"] for c in client.get(f"{API}?deleted=true").get_json()["items"]] == [contact["id"]]
    restored = client.post(f"{url}/restore")
    assert restored.status_code == 200
    body = restored.get_json()
    assert (body["tags"], body["emails"][0]["address"]) == (["keep"], "g@acme.fr")
    assert client.post(f"{url}/restore").status_code == 409
    assert [c["id"] for c in client.get(API).get_json()["items"]] == [contact["id"]]


def test_patch_replaces_lists_and_keeps_the_rest(client):
    contact = create(
        client,
        last_name="Lists",
        job_title="CEO",
        emails=[{"address": "a@acme.fr"}, {"address": "b@acme.fr"}],
        tags=["one", "two"],
    )
    updated = client.patch(
        f"{API}/{contact['id']}", json={"emails": [{"address": "c@acme.fr"}], "tags": []}
    ).get_json()
    assert [e["address"] for e in updated["emails"]] == ["c@acme.fr"]
    assert updated["emails"][0]["primary"] is True
    assert updated["tags"] == []
    assert updated["job_title"] == "CEO"
    assert updated["version"] == 2


def test_the_api_schema_describes_the_json_shape(client):
    """The list answers contact_to_dict as it is: the documented ContactSchema must describe it exactly."""
    from crmcore.api.schemas import ContactSchema

    contact = create(
        client,
        last_name="Shape",
        birthday="1990-01-02",
        emails=[{"address": "s@acme.fr"}],
        phones=[{"number": "06 12 34 56 78"}],
        addresses=[MAIN],
        social={"x": "https://x.com/s"},
        tags=["t"],
    )
    listed = client.get(API).get_json()["items"][0]
    assert listed == contact
    assert ContactSchema().dump(listed) == listed
    spec = client.get("/api/openapi.json").get_json()
    documented = spec["components"]["schemas"]["Contact"]["properties"]
    assert set(documented) == set(contact)


def test_visibility_decides_who_reads_and_writes(client, make_user, api_client):
    owner = make_user(name="Owner", password=None)
    other = api_client(make_user(name="Other", password=None))
    private = create(client, last_name="Private", visibility="private", owners=[owner.id])
    readable = create(client, last_name="Readable", visibility="public_read", owners=[owner.id])
    writable = create(client, last_name="Writable", visibility="public_write", owners=[owner.id])
    assert other.get(f"{API}/{private['id']}").status_code == 404
    assert {c["id"] for c in other.get(API).get_json()["items"]} == {readable["id"], writable["id"]}
    assert other.get(f"{API}/{readable['id']}").status_code == 200
    refused_write = other.patch(f"{API}/{readable['id']}", json={"job_title": "x"})
    assert refused_write.status_code == 403
    assert refused_write.get_json()["code"] == 403
    assert other.patch(f"{API}/{writable['id']}", json={"job_title": "x"}).status_code == 200
    assert api_client(owner).patch(f"{API}/{private['id']}", json={"job_title": "x"}).status_code == 200
