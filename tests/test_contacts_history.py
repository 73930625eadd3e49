"""History (who, when, source, field, old, new) and optimistic concurrency (ETag/If-Match, body version)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from crmcore.errors import Conflict
from crmcore.extensions import db
from crmcore.models import Contact
from crmcore.services.contacts import create_contact, delete_contact, get_contact, update_contact

API = "/api/v1/contacts"


def create(client, **fields):
    fields.setdefault("last_name", "History")
    response = client.post(API, json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def history(client, contact_id):
    response = client.get(f"{API}/{contact_id}/history")
    assert response.status_code == 200
    return response.get_json()


# -- history ---------------------------------------------------------------------------------------


def test_creation_is_recorded_with_a_snapshot(client, admin_user):
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    contact = create(client, first_name="Ana", emails=[{"address": "ana@acme.fr"}])
    [entry] = history(client, contact["id"])
    assert entry["action"] == "create"
    assert entry["field"] is None
    assert entry["new"]["first_name"] == "Ana"
    assert entry["new"]["emails"][0]["address"] == "ana@acme.fr"
    assert (entry["source"], entry["user_id"], entry["user"]) == ("api", admin_user.id, "Admin")
    assert entry["revision"] == 1
    assert dt.datetime.fromisoformat(entry["at"]) >= before


def test_update_records_one_entry_per_field(client):
    contact = create(client, first_name="Ana", job_title="Dev")
    client.patch(f"{API}/{contact['id']}", json={"first_name": "Anna", "job_title": None, "tags": ["x"]})
    entries = history(client, contact["id"])
    assert [e["action"] for e in entries] == ["update"] * 3 + ["create"]
    changes = {e["field"]: (e["old"], e["new"]) for e in entries[:3]}
    assert changes == {"first_name": ("Ana", "Anna"), "job_title": ("Dev", None), "tags": ([], ["x"])}
    assert {e["revision"] for e in entries[:3]} == {2}


def test_a_change_that_changes_nothing_is_not_recorded(client):
    contact = create(client, first_name="Ana")
    response = client.patch(f"{API}/{contact['id']}", json={"first_name": " Ana "})
    assert response.status_code == 200
    assert response.get_json()["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert len(history(client, contact["id"])) == 1


def test_delete_and_restore_are_recorded(client):
    contact = create(client)
    client.delete(f"{API}/{contact['id']}")
    deleted = history(client, contact["id"])  # still readable once deleted
    assert deleted[0]["action"] == "delete"
    client.post(f"{API}/{contact['id']}/restore")
    assert [e["action"] for e in history(client, contact["id"])] == ["restore", "delete", "create"]


def test_history_keeps_who_and_source(client, make_user):
    clerk = make_user(name="Clerk", password=None)
    contact = create_contact({"kind": "person", "last_name": "Cli"}, clerk, "cli")
    update_contact(contact.id, {"first_name": "Jo"}, None, "import")
    delete_contact(contact.id, clerk, "ui")
    entries = history(client, contact.id)
    assert [(e["action"], e["source"], e["user_id"], e["user"]) for e in entries] == [
        ("delete", "ui", clerk.id, "Clerk"),
        ("update", "import", None, None),
        ("create", "cli", clerk.id, "Clerk"),
    ]


def test_status_changes_are_recorded(client):
    contact = create(client)
    client.post(f"{API}/{contact['id']}/status", json={"status": "customer", "is_supplier": True})
    entries = history(client, contact["id"])
    changes = {e["field"]: (e["old"], e["new"]) for e in entries if e["action"] == "status"}
    assert changes == {"status": ("prospect", "customer"), "is_supplier": (False, True)}


def test_history_of_unknown_contact(client):
    assert client.get(f"{API}/424242/history").status_code == 404


# -- ETag and If-Match -----------------------------------------------------------------------------


def test_etag_is_the_version(client):
    contact = create(client)
    url = f"{API}/{contact['id']}"
    assert client.get(url).headers["ETag"] == '"1"'
    assert client.get(url, headers={"If-None-Match": '"1"'}).status_code == 304
    updated = client.patch(url, json={"first_name": "New"})
    assert updated.headers["ETag"] == '"2"'
    assert client.get(url, headers={"If-None-Match": '"1"'}).status_code == 200


def test_stale_if_match_gets_412_with_the_current_state(client):
    contact = create(client, first_name="One")
    url = f"{API}/{contact['id']}"
    client.patch(url, json={"first_name": "Two"})  # someone else's change: version 2
    response = client.patch(url, json={"first_name": "Mine"}, headers={"If-Match": '"1"'})
    assert response.status_code == 412
    body = response.get_json()
    assert body["code"] == 412
    assert body["current"]["first_name"] == "Two"
    assert body["current"]["version"] == 2
    assert response.headers["ETag"] == '"2"'
    assert client.get(url).get_json()["first_name"] == "Two"  # never a silent overwrite


def test_matching_if_match_is_accepted(client):
    contact = create(client)
    url = f"{API}/{contact['id']}"
    for header in ('"1"', 'W/"2"', "*"):
        response = client.patch(url, json={"job_title": header}, headers={"If-Match": header})
        assert response.status_code == 200, (header, response.get_json())


def test_garbage_if_match_is_a_failed_precondition(client):
    contact = create(client)
    response = client.patch(f"{API}/{contact['id']}", json={"job_title": "x"}, headers={"If-Match": "abc"})
    assert response.status_code == 412
    assert "If-Match" in response.get_json()["message"]


def test_stale_body_version_gets_409_with_the_current_state(client):
    contact = create(client, first_name="One")
    url = f"{API}/{contact['id']}"
    first = client.patch(url, json={"first_name": "Two", "version": 1})
    assert first.status_code == 200
    response = client.patch(url, json={"first_name": "Mine", "version": 1})
    assert response.status_code == 409
    body = response.get_json()
    assert (body["current"]["first_name"], body["current"]["version"]) == ("Two", 2)
    assert response.headers["ETag"] == '"2"'
    assert client.get(url).get_json()["first_name"] == "Two"
    assert len(history(client, contact["id"])) == 2


def test_sending_back_what_was_read_with_its_version(client):
    contact = create(client, first_name="One")
    url = f"{API}/{contact['id']}"
    edited = {**contact, "first_name": "Two"}
    response = client.patch(url, json=edited)
    assert response.status_code == 200
    assert client.patch(url, json={**contact, "first_name": "Three"}).status_code == 409


def test_a_write_racing_another_is_refused(app):
    """The database itself refuses an UPDATE from a stale version (two requests racing)."""
    contact = create_contact({"kind": "person", "last_name": "Race"})
    get_contact(contact.id)  # the session now holds version 1
    with db.engine.begin() as connection:  # another process commits version 2 meanwhile
        connection.execute(update(Contact.__table__).where(Contact.id == contact.id).values(version=2))
    with pytest.raises(Conflict):
        update_contact(contact.id, {"first_name": "Late"})
    db.session.expire_all()
    assert get_contact(contact.id).first_name is None
