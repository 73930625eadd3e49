"""Assignment notices: a user who becomes an owner of a contact is emailed once, after the commit only."""

import io
import json

import pytest

from crmcore.testing import token_client

PUBLIC_URL = "https://crm.example.com/base/"


def _client(app, user):
    return token_client(app, user)


@pytest.fixture
def notifying_app(crm_app_factory, smtp_server):
    app = crm_app_factory(PUBLIC_URL=PUBLIC_URL, **smtp_server.config)
    with app.app_context():
        yield app


@pytest.fixture
def users(notifying_app):
    from crmcore.services.users import create_user

    return {
        "admin": create_user("admin@example.com", "password123", is_admin=True, name="Alice Admin"),
        "fr": create_user("camille@example.com", "password123", language="fr"),
        "en": create_user("john@example.com", "password123", language="en"),
    }


def _person(last_name, owners, **extra):
    return {"kind": "person", "first_name": "Léa", "last_name": last_name, "owners": owners, **extra}


def test_a_contact_created_for_someone_else_emails_them_once_in_their_language(
    notifying_app, smtp_server, users
):
    from crmcore.services.contacts import create_contact

    contact = create_contact(_person("Michel", [users["admin"].id, users["fr"].id]), users["admin"])
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message.envelope_to == ["camille@example.com"]
    assert message["Subject"] == f"Contact qui vous est attribué : Léa Michel ({contact.number})"
    body = message.get_content()
    assert f"Alice Admin vous a attribué le contact Léa Michel ({contact.number})." in body
    assert f"https://crm.example.com/base/contacts/{contact.id}" in body

    other = create_contact(_person("Durand", [users["en"].id]), users["admin"])
    assert len(smtp_server.messages) == 2
    message = smtp_server.messages[1]
    assert message.envelope_to == ["john@example.com"]
    assert message["Subject"] == f"Contact assigned to you: Léa Durand ({other.number})"
    assert f"Alice Admin assigned you the contact Léa Durand ({other.number})." in message.get_content()


def test_no_notice_for_ones_own_contacts_or_deactivated_users(notifying_app, smtp_server, users):
    from crmcore.services.contacts import create_contact
    from crmcore.services.users import update_user

    create_contact({"kind": "person", "last_name": "Mine"}, users["fr"])  # owner by default: the creator
    create_contact(_person("Mine too", [users["fr"].id]), users["fr"])
    update_user(users["en"].id, active=False)
    create_contact(_person("Gone", [users["en"].id]), users["admin"])
    assert smtp_server.messages == []


def test_created_through_the_api_and_the_batch_each_assignee_once_per_contact(crm_app_factory, smtp_server):
    # Without CRM_PUBLIC_URL the link points where the request came.
    app = crm_app_factory(**smtp_server.config)
    with app.app_context():
        from crmcore.services.users import create_user

        admin = create_user("admin@example.com", "password123", is_admin=True)
        owner = create_user("owner@example.com", "password123", language="en")
        client = _client(app, admin)
        response = client.post("/api/v1/contacts", json=_person("Api", [owner.id]))
        assert response.status_code == 201, response.get_json()
        created = response.get_json()
        assert len(smtp_server.messages) == 1
        assert f"http://localhost/contacts/{created['id']}" in smtp_server.messages[0].get_content()
        assert "admin@example.com assigned you" in smtp_server.messages[0].get_content()

        items = [_person(f"Batch {n}", [owner.id, admin.id]) for n in range(3)]
        items.append(_person("Not theirs", [admin.id]))
        response = client.post("/api/v1/contacts/batch", json={"items": items})
        assert response.status_code in (200, 201), response.get_json()
        subjects = sorted(message["Subject"] for message in smtp_server.messages[1:])
        assert len(subjects) == 3 and all("Léa Batch" in subject for subject in subjects)
        assert {tuple(message.envelope_to) for message in smtp_server.messages} == {("owner@example.com",)}


def test_an_update_adding_an_owner_emails_only_the_added_one(notifying_app, smtp_server, users):
    from crmcore.services.contacts import create_contact, update_contact

    quiet = create_contact(_person("Quiet", [users["admin"].id], visibility="public_write"), users["admin"])
    loud = create_contact(_person("Loud", [users["fr"].id], notify_owners=True), users["fr"])
    assert smtp_server.messages == []

    update_contact(quiet.id, {"owners": [users["admin"].id, users["en"].id]}, users["admin"])
    assert [m.envelope_to for m in smtp_server.messages] == [["john@example.com"]]
    assert smtp_server.messages[0]["Subject"] == f"Contact assigned to you: Léa Quiet ({quiet.number})"
    assert f"https://crm.example.com/base/contacts/{quiet.id}" in smtp_server.messages[0].get_content()

    # With "notify responsibles on change", the owner already there is told of the change and the
    # added one gets the assignment notice only.
    update_contact(loud.id, {"owners": [users["fr"].id, users["en"].id]}, users["admin"])
    received = {m.envelope_to[0]: m["Subject"] for m in smtp_server.messages[1:]}
    assert len(smtp_server.messages) == 3
    assert received["john@example.com"] == f"Contact assigned to you: Léa Loud ({loud.number})"
    assert "modifié" in received["camille@example.com"]

    # Removing an owner, or a change by the added owner themself, assigns nobody.
    update_contact(quiet.id, {"owners": [users["en"].id]}, users["admin"])
    update_contact(quiet.id, {"owners": [users["en"].id, users["fr"].id]}, users["fr"])
    assert len(smtp_server.messages) == 3


def test_rolled_back_creations_and_updates_notify_nobody(notifying_app, smtp_server, users):
    from crmcore.extensions import db
    from crmcore.services.contacts import create_contact, update_contact
    from crmcore.services.transactions import savepoint, transaction

    existing = create_contact(_person("Existing", [users["admin"].id]), users["admin"])
    with pytest.raises(RuntimeError), transaction():
        create_contact(_person("Undone", [users["fr"].id]), users["admin"])
        update_contact(existing.id, {"owners": [users["en"].id]}, users["admin"])
        raise RuntimeError("the whole change is rejected")
    db.session.expire_all()
    assert smtp_server.messages == []

    with transaction():
        create_contact(_person("Kept", [users["fr"].id]), users["admin"])
        try:
            with savepoint():
                create_contact(_person("Dropped", [users["en"].id]), users["admin"])
                update_contact(existing.id, {"owners": [users["en"].id]}, users["admin"])
                raise RuntimeError("this row is rejected")
        except RuntimeError:
            pass
    db.session.expire_all()
    assert [m.envelope_to for m in smtp_server.messages] == [["camille@example.com"]]
    assert "Léa Kept" in smtp_server.messages[0]["Subject"]


def test_the_switch_turns_assignment_notices_off(crm_app_factory, smtp_server):
    app = crm_app_factory(NOTIFY_ASSIGNMENT=False, **smtp_server.config)
    with app.app_context():
        from crmcore.services.contacts import create_contact, update_contact
        from crmcore.services.users import create_user

        admin = create_user("admin@example.com", "password123", is_admin=True)
        owner = create_user("owner@example.com", "password123")
        colleague = create_user("colleague@example.com", "password123")
        contact = create_contact(_person("Off", [owner.id]), admin)
        update_contact(contact.id, {"owners": [owner.id, colleague.id]}, admin)
        assert smtp_server.messages == []


def test_the_switch_is_read_from_the_environment():
    from crmcore.config import build

    assert build(environ={})["NOTIFY_ASSIGNMENT"] is True
    assert build(environ={"CRM_NOTIFY_ASSIGNMENT": "0"})["NOTIFY_ASSIGNMENT"] is False


def test_imports_send_no_assignment_notice(notifying_app, smtp_server, users):
    from crmcore.interchange.importer import ImportOptions, import_file
    from crmcore.services.contacts import create_contact, update_contact

    records = [_person(f"Imported {n}", [users["fr"].id]) for n in range(3)]
    report = import_file(
        io.BytesIO(json.dumps(records).encode()), users["admin"], ImportOptions(), file_name="c.json"
    )
    assert report.created == 3, report
    contact = create_contact(_person("Import row", [users["fr"].id]), users["admin"], source="import")
    update_contact(contact.id, {"owners": [users["fr"].id, users["en"].id]}, users["admin"], source="import")
    assert smtp_server.messages == []
