"""Notes (internal, customer), warnings (info, blocking) with ensure_not_blocked, and the photo."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from crmcore.errors import BlockedContact
from crmcore.services.contacts import ensure_not_blocked, get_contact

API = "/api/v1/contacts"


def create(client, **fields):
    fields.setdefault("last_name", "Noted")
    response = client.post(API, json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def image(size=(1000, 800), mode="RGB", fmt="JPEG"):
    out = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else (255, 0, 0, 128)).save(out, fmt)
    return out.getvalue()


# -- notes -----------------------------------------------------------------------------------------


def test_notes(client, admin_user):
    contact = create(client)
    url = f"{API}/{contact['id']}/notes"
    internal = client.post(url, json={"body": "  Called, no answer "})
    assert internal.status_code == 201
    note = internal.get_json()
    assert (note["kind"], note["body"], note["author_id"], note["author"]) == (
        "internal",
        "Called, no answer",
        admin_user.id,
        "Admin",
    )
    customer = client.post(url, json={"body": "Delivery at the back door", "kind": "customer"}).get_json()
    assert [n["id"] for n in client.get(url).get_json()] == [customer["id"], note["id"]]  # newest first
    assert [n["id"] for n in client.get(f"{url}?kind=customer").get_json()] == [customer["id"]]
    assert [n["id"] for n in client.get(f"{url}?kind=internal").get_json()] == [note["id"]]
    assert client.get(f"{url}?kind=secret").status_code == 422


def test_edit_and_delete_notes(client):
    contact = create(client)
    url = f"{API}/{contact['id']}/notes"
    note = client.post(url, json={"body": "draft"}).get_json()
    edited = client.patch(f"{url}/{note['id']}", json={"body": "final", "kind": "customer"})
    assert edited.status_code == 200
    assert (edited.get_json()["body"], edited.get_json()["kind"]) == ("final", "customer")
    assert client.delete(f"{url}/{note['id']}").status_code == 204
    assert client.get(url).get_json() == []
    assert client.delete(f"{url}/{note['id']}").status_code == 404
    fields = [
        e["field"] for e in client.get(f"{API}/{contact['id']}/history").get_json() if e["action"] == "note"
    ]
    assert fields == [f"notes[{note['id']}]"] * 3


def test_bad_notes(client):
    contact = create(client)
    other = create(client, last_name="Other")
    url = f"{API}/{contact['id']}/notes"
    for body, field in (({"body": "  "}, "body"), ({}, "body"), ({"body": "x", "kind": "public"}, "kind")):
        response = client.post(url, json=body)
        assert response.status_code == 422
        assert field in response.get_json()["errors"]
    note = client.post(url, json={"body": "mine"}).get_json()
    # A note is reached only through its own contact.
    assert client.patch(f"{API}/{other['id']}/notes/{note['id']}", json={"body": "x"}).status_code == 404
    assert client.delete(f"{API}/{other['id']}/notes/{note['id']}").status_code == 404
    assert client.post(f"{API}/424242/notes", json={"body": "x"}).status_code == 404
    assert client.patch(f"{url}/{note['id']}", json={"body": " "}).status_code == 422


# -- warnings --------------------------------------------------------------------------------------


def test_warnings_and_blocking(client, app):
    contact = create(client, first_name="Bad", last_name="Payer")
    url = f"{API}/{contact['id']}/warnings"
    info = client.post(url, json={"message": "Prefers calls in the morning"})
    assert info.status_code == 201
    assert info.get_json()["level"] == "info"
    ensure_not_blocked(get_contact(contact["id"]), "create an invoice")  # info only: allowed
    blocking = client.post(url, json={"message": "Unpaid invoices", "level": "blocking"}).get_json()
    assert [w["level"] for w in client.get(url).get_json()] == ["info", "blocking"]
    with pytest.raises(BlockedContact) as raised:
        ensure_not_blocked(get_contact(contact["id"]), "create an invoice")
    assert "create an invoice" in raised.value.message
    assert "Unpaid invoices" in raised.value.message
    assert raised.value.details["warnings"] == ["Unpaid invoices"]
    assert client.delete(f"{url}/{blocking['id']}").status_code == 204
    ensure_not_blocked(get_contact(contact["id"]), "create an invoice")
    assert client.delete(f"{url}/{blocking['id']}").status_code == 404
    actions = [e["action"] for e in client.get(f"{API}/{contact['id']}/history").get_json()]
    assert actions.count("warning") == 3


def test_bad_warnings(client):
    contact = create(client)
    url = f"{API}/{contact['id']}/warnings"
    for body, field in (
        ({"message": "x", "level": "fatal"}, "level"),
        ({"message": ""}, "message"),
        ({"message": "x" * 501}, "message"),
        ({}, "message"),
    ):
        response = client.post(url, json=body)
        assert response.status_code == 422, body
        assert field in response.get_json()["errors"]
    other = create(client, last_name="Other")
    warning = client.post(url, json={"message": "m"}).get_json()
    assert client.delete(f"{API}/{other['id']}/warnings/{warning['id']}").status_code == 404


# -- photo -----------------------------------------------------------------------------------------


def test_photo_upload_is_resized(client):
    contact = create(client)
    url = f"{API}/{contact['id']}/photo"
    assert client.get(url).status_code == 404
    assert client.put(url, data=image(), content_type="image/jpeg").status_code == 204
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    stored = Image.open(io.BytesIO(response.data))
    assert stored.width <= 200 and stored.height <= 300
    assert stored.size == (200, 160)  # proportions kept


def test_photo_as_a_form_field_keeps_transparency(client):
    contact = create(client)
    url = f"{API}/{contact['id']}/photo"
    png = image((50, 50), "RGBA", "PNG")
    response = client.put(
        url, data={"photo": (io.BytesIO(png), "me.png")}, content_type="multipart/form-data"
    )
    assert response.status_code == 204
    assert client.get(url).mimetype == "image/png"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    history = client.get(f"{API}/{contact['id']}/history").get_json()
    assert [e["field"] for e in history[:2]] == ["photo", "photo"]


def test_bad_photos(client):
    contact = create(client)
    url = f"{API}/{contact['id']}/photo"
    for data in (b"", b"not an image at all", image()[:100]):
        response = client.put(url, data=data, content_type="application/octet-stream")
        assert response.status_code == 422, data[:20]
        assert "photo" in response.get_json()["errors"]
    assert client.put(f"{API}/424242/photo", data=image()).status_code == 404
