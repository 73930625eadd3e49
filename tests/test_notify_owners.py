"""'Notify responsibles on change': each change emails the contact's owners, after the commit only."""

import pytest

from crmcore.testing import token_client


def _client(app, user):
    return token_client(app, user)


@pytest.fixture
def notifying_app(crm_app_factory, smtp_server):
    app = crm_app_factory(**smtp_server.config)
    with app.app_context():
        yield app


def test_a_change_emails_the_owners_but_not_the_author(notifying_app, smtp_server):
    from crmcore.services.contacts import create_contact
    from crmcore.services.users import create_user

    owner = create_user("owner@example.com", "password123", language="fr")
    colleague = create_user("colleague@example.com", "password123")
    contact = create_contact(
        {
            "kind": "person",
            "first_name": "Léa",
            "last_name": "Michel",
            "notify_owners": True,
            "visibility": "public_write",
            "owners": [owner.id],
        },
        owner,
    )
    response = _client(notifying_app, colleague).patch(
        f"/api/v1/contacts/{contact.id}", json={"job_title": "Gérante"}
    )
    assert response.status_code == 200
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message.envelope_to == ["owner@example.com"]
    assert "Léa Michel" in message["Subject"] and "modifié" in message["Subject"]
    assert "job_title: — -> Gérante" in message.get_content()
    # The owner changing their own contact is not told about it.
    _client(notifying_app, owner).patch(f"/api/v1/contacts/{contact.id}", json={"job_title": "Directrice"})
    assert len(smtp_server.messages) == 1


def test_no_email_without_the_flag_or_when_the_change_fails(notifying_app, smtp_server):
    from crmcore.services.contacts import create_contact
    from crmcore.services.users import create_user

    owner = create_user("owner@example.com", "password123")
    other = create_user("other@example.com", "password123")
    quiet = create_contact(
        {"kind": "person", "last_name": "Quiet", "visibility": "public_write", "owners": [owner.id]}, owner
    )
    loud = create_contact(
        {
            "kind": "person",
            "last_name": "Loud",
            "visibility": "public_write",
            "notify_owners": True,
            "owners": [owner.id],
        },
        owner,
    )
    client = _client(notifying_app, other)
    assert client.patch(f"/api/v1/contacts/{quiet.id}", json={"job_title": "x"}).status_code == 200
    assert client.patch(f"/api/v1/contacts/{loud.id}", json={"phones": [{"number": "12"}]}).status_code == 422
    assert smtp_server.messages == []


def test_an_unreachable_mail_server_does_not_fail_the_save(crm_app_factory):
    app = crm_app_factory(SMTP_HOST="127.0.0.1", SMTP_PORT=1, SMTP_TIMEOUT=2)
    with app.app_context():
        from crmcore.services.contacts import create_contact, get_contact
        from crmcore.services.users import create_user

        owner = create_user("owner@example.com", "password123")
        other = create_user("other@example.com", "password123")
        contact = create_contact(
            {
                "kind": "person",
                "last_name": "Loud",
                "visibility": "public_write",
                "notify_owners": True,
                "owners": [owner.id],
            },
            owner,
        )
        response = _client(app, other).patch(f"/api/v1/contacts/{contact.id}", json={"job_title": "kept"})
        assert response.status_code == 200
        assert get_contact(contact.id).job_title == "kept"


def test_a_change_rolled_back_to_a_savepoint_notifies_nobody(notifying_app, smtp_server):
    from crmcore.extensions import db
    from crmcore.services.contacts import create_contact, update_contact
    from crmcore.services.transactions import savepoint, transaction
    from crmcore.services.users import create_user

    owner = create_user("owner@example.com", "password123")
    other = create_user("other@example.com", "password123")
    kept = create_contact(
        {
            "kind": "person",
            "last_name": "Kept",
            "visibility": "public_write",
            "notify_owners": True,
            "owners": [owner.id],
        },
        owner,
    )
    dropped = create_contact(
        {
            "kind": "person",
            "last_name": "Dropped",
            "visibility": "public_write",
            "notify_owners": True,
            "owners": [owner.id],
        },
        owner,
    )
    with transaction():
        update_contact(kept.id, {"job_title": "kept change"}, other)
        try:
            with savepoint():
                update_contact(dropped.id, {"job_title": "undone"}, other)
                raise RuntimeError("this row is rejected")
        except RuntimeError:
            pass
    db.session.expire_all()
    assert len(smtp_server.messages) == 1
    assert "Kept" in smtp_server.messages[0]["Subject"]
