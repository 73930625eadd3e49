"""Links between contacts: organization and role, reports-to, related contacts (same email domain)."""

from __future__ import annotations

API = "/api/v1/contacts"


def admin_client(app):
    """A client of ``app`` (not the default test app) signed in as a new admin."""
    from crmcore.services.users import create_token, create_user

    admin = create_user(f"admin{id(app)}@example.com", None, is_admin=True)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {create_token(admin.id, 'test')[1]}"
    return client


def create(client, **fields):
    if fields.get("kind") != "organization":
        fields.setdefault("last_name", "Link")
    response = client.post(API, json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def org(client, name="Acme", **fields):
    return create(client, kind="organization", name=name, **fields)


def errors_of(response):
    assert response.status_code == 422, response.get_json()
    return response.get_json()["errors"]


# -- organization and role -------------------------------------------------------------------------


def test_person_belongs_to_an_organization_with_a_role(client):
    acme = org(client)
    person = create(client, organization_id=acme["id"], role="Décideur")
    assert (person["organization_id"], person["role"]) == (acme["id"], "decision_maker")
    members = client.get(f"{API}?organization_id={acme['id']}").get_json()["items"]
    assert [m["id"] for m in members] == [person["id"]]
    moved = client.patch(f"{API}/{person['id']}", json={"organization_id": None, "role": None}).get_json()
    assert (moved["organization_id"], moved["role"]) == (None, None)


def test_organization_links_are_checked(client):
    acme = org(client)
    person = create(client, last_name="Someone")
    assert "organization_id" in errors_of(client.post(API, json={"last_name": "X", "organization_id": 99999}))
    assert "organization_id" in errors_of(
        client.post(API, json={"last_name": "X", "organization_id": person["id"]})
    )
    assert "organization_id" in errors_of(
        client.post(API, json={"kind": "organization", "name": "Sub", "organization_id": acme["id"]})
    )
    assert "role" in errors_of(
        client.post(API, json={"kind": "organization", "name": "R", "role": "billing"})
    )
    assert "role" in errors_of(client.post(API, json={"last_name": "X", "role": "astronaut"}))
    assert "organization_id" in errors_of(
        client.patch(f"{API}/{acme['id']}", json={"organization_id": acme["id"]})
    )
    assert "organization_id" in errors_of(
        client.post(API, json={"last_name": "X", "organization_id": "acme"})
    )


def test_a_deleted_organization_cannot_be_linked(client):
    acme = org(client)
    client.delete(f"{API}/{acme['id']}")
    assert "organization_id" in errors_of(
        client.post(API, json={"last_name": "X", "organization_id": acme["id"]})
    )


def test_admin_added_role(client):
    assert client.post("/api/v1/roles", json={"label_en": "Champion", "key": "champion"}).status_code == 201
    acme = org(client)
    person = create(client, organization_id=acme["id"], role="champion")
    assert person["role"] == "champion"


def test_members_are_found_by_their_organization_name(client):
    acme = org(client, name="Zephyr Industries")
    person = create(client, last_name="Martin", organization_id=acme["id"])
    found = client.get(f"{API}?q=zephyr").get_json()["items"]
    assert {c["id"] for c in found} == {acme["id"], person["id"]}
    client.patch(f"{API}/{acme['id']}", json={"name": "Boreas Group"})
    assert {c["id"] for c in client.get(f"{API}?q=boreas").get_json()["items"]} == {acme["id"], person["id"]}
    assert client.get(f"{API}?q=zephyr").get_json()["items"] == []


# -- reports to ------------------------------------------------------------------------------------


def test_reports_to(client):
    boss = create(client, last_name="Boss")
    employee = create(client, last_name="Employee", reports_to_id=boss["id"])
    assert employee["reports_to_id"] == boss["id"]


def test_reports_to_links_two_people_without_loops(client):
    acme = org(client)
    a = create(client, last_name="A")
    b = create(client, last_name="B", reports_to_id=a["id"])
    c = create(client, last_name="C", reports_to_id=b["id"])
    assert "reports_to_id" in errors_of(client.patch(f"{API}/{a['id']}", json={"reports_to_id": c["id"]}))
    assert "reports_to_id" in errors_of(client.patch(f"{API}/{a['id']}", json={"reports_to_id": a["id"]}))
    assert "reports_to_id" in errors_of(
        client.post(API, json={"last_name": "X", "reports_to_id": acme["id"]})
    )
    assert "reports_to_id" in errors_of(client.post(API, json={"last_name": "X", "reports_to_id": 424242}))
    assert "reports_to_id" in errors_of(
        client.post(API, json={"kind": "organization", "name": "O", "reports_to_id": a["id"]})
    )
    assert client.get(f"{API}/{a['id']}").get_json()["reports_to_id"] is None


# -- related contacts ------------------------------------------------------------------------------


def related_ids(client, contact_id):
    response = client.get(f"{API}/{contact_id}/related")
    assert response.status_code == 200
    return [c["id"] for c in response.get_json()]


def test_related_contacts_share_an_email_domain(client):
    anna = create(client, last_name="Anna", emails=[{"address": "anna@acme.fr"}])
    bert = create(client, last_name="Bert", emails=[{"address": "bert@ACME.fr"}])
    acme = org(client, emails=[{"address": "contact@acme.fr"}])
    create(client, last_name="Other", emails=[{"address": "x@other.fr"}])
    assert sorted(related_ids(client, anna["id"])) == sorted([bert["id"], acme["id"]])


def test_public_mail_domains_do_not_relate(client):
    a = create(client, last_name="A", emails=[{"address": "a@gmail.com"}, {"address": "a@corp.fr"}])
    b = create(client, last_name="B", emails=[{"address": "b@gmail.com"}])
    c = create(client, last_name="C", emails=[{"address": "c@corp.fr"}])
    assert related_ids(client, a["id"]) == [c["id"]]
    assert related_ids(client, b["id"]) == []


def test_related_ignores_deleted_contacts_and_contacts_without_email(client):
    a = create(client, last_name="A", emails=[{"address": "a@corp.fr"}])
    b = create(client, last_name="B", emails=[{"address": "b@corp.fr"}])
    lonely = create(client, last_name="Lonely")
    client.delete(f"{API}/{b['id']}")
    assert related_ids(client, a["id"]) == []
    assert related_ids(client, lonely["id"]) == []
    assert client.get(f"{API}/{b['id']}/related").status_code == 404


def test_public_domains_are_configurable(crm_app_factory):
    app = crm_app_factory(PUBLIC_MAIL_DOMAINS=["corp.fr"])
    with app.app_context():
        client = admin_client(app)
        a = create(client, last_name="A", emails=[{"address": "a@corp.fr"}])
        create(client, last_name="B", emails=[{"address": "b@corp.fr"}])
        assert related_ids(client, a["id"]) == []
