"""A contact's team counts like its owners; new contacts take ``CRM_DEFAULT_VISIBILITY``.

Members of the contact's team may read a private contact and change it, through every path (API,
pages, search, export); a user of another team gets 404 as for any contact they may not see; leaving
the team takes that away at once.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from crmcore.config import ConfigError, build
from crmcore.services.contacts import get_contact
from crmcore.services.users import create_team, create_token, create_user, update_user

SECRET = "Quokkasecret"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class Browser:
    def __init__(self, app: Any, email: str) -> None:
        self.client = app.test_client()
        token = _csrf(self.client.get("/login").get_data(as_text=True))
        response = self.client.post(
            "/login", data={"email": email, "password": "password123", "csrf_token": token}
        )
        assert response.status_code == 302
        self.token = _csrf(self.client.get("/account").get_data(as_text=True))

    def get(self, url: str) -> Any:
        return self.client.get(url)

    def post(self, url: str, data: dict[str, Any]) -> Any:
        return self.client.post(url, data={"csrf_token": self.token, **data})


def _text(response: Any) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def teams(app, make_user, make_contact, api_client):
    sales, support = create_team("Sales"), create_team("Support")
    owner = make_user(email="owner@example.com")
    member = make_user(email="member@example.com")
    outsider = make_user(email="outsider@example.com")
    update_user(member.id, team_ids=[sales.id])
    update_user(outsider.id, team_ids=[support.id])
    private = make_contact(
        user=owner,
        first_name="Ada",
        last_name=SECRET,
        visibility="private",
        team_id=sales.id,
        emails=[{"address": "ada@quokka.example"}],
    )
    readable = make_contact(user=owner, last_name="Readable", visibility="public_read", team_id=sales.id)
    return {
        "sales": sales,
        "support": support,
        "member": member,
        "outsider": outsider,
        "private": private,
        "readable": readable,
        "member_api": api_client(member),
        "outsider_api": api_client(outsider),
    }


def test_a_team_member_reads_and_edits_a_private_contact_of_the_team_through_the_api(app, teams):
    api, contact_id = teams["member_api"], teams["private"].id
    answer = api.get(f"/api/v1/contacts/{contact_id}")
    assert answer.status_code == 200 and answer.json["last_name"] == SECRET
    changed = api.patch(f"/api/v1/contacts/{contact_id}", json={"job_title": "Engineer"})
    assert changed.status_code == 200, changed.json
    assert api.post(f"/api/v1/contacts/{contact_id}/notes", json={"body": "met"}).status_code == 201
    assert get_contact(contact_id).job_title == "Engineer"
    # public_read: a team member writes it as an owner would.
    readable = teams["readable"].id
    assert api.patch(f"/api/v1/contacts/{readable}", json={"job_title": "x"}).status_code == 200
    assert (
        teams["outsider_api"].patch(f"/api/v1/contacts/{readable}", json={"job_title": "y"}).status_code
        == 403
    )


def test_lists_searches_and_exports_show_it_to_the_team_only(app, teams):
    probes = [
        "/api/v1/contacts",
        f"/api/v1/contacts?q={SECRET}",
        "/api/v1/contacts?q=ada@quokka.example",
        "/api/v1/contacts/export?format=csv",
        "/api/v1/contacts/export?format=json",
        "/api/v1/contacts/export?format=vcf",
    ]
    for url in probes:
        seen = _text(teams["member_api"].get(url))
        assert SECRET in seen, url
        hidden = teams["outsider_api"].get(url)
        assert hidden.status_code == 200 and SECRET not in _text(hidden), url
    member, outsider = Browser(app, "member@example.com"), Browser(app, "outsider@example.com")
    for url in ("/contacts?view=list", "/contacts?view=cards", "/contacts?q=ada%40quokka"):
        assert SECRET in _text(member.get(url)), url
        assert SECRET not in _text(outsider.get(url)), url


def test_pages_let_a_team_member_edit_and_answer_404_to_another_team(app, teams):
    contact = teams["private"]
    member, outsider = Browser(app, "member@example.com"), Browser(app, "outsider@example.com")
    page = _text(member.get(f"/contacts/{contact.id}"))
    assert SECRET in page and 'id="edit-contact"' in page
    form = _text(member.get(f"/contacts/{contact.id}/edit"))
    version = re.search(r'name="version" value="(\d+)"', form).group(1)
    response = member.post(
        f"/contacts/{contact.id}/edit",
        {
            "kind": "person",
            "first_name": "Ada",
            "last_name": SECRET,
            "job_title": "Pilot",
            "visibility": "private",
            "team_id": str(teams["sales"].id),
            "owners": [str(o.id) for o in contact.owners],
            "version": version,
        },
    )
    assert response.status_code == 302, _text(response)
    assert get_contact(contact.id).job_title == "Pilot"
    for url in (f"/contacts/{contact.id}", f"/contacts/{contact.id}/edit"):
        answer = outsider.get(url)
        assert answer.status_code == 404 and SECRET not in _text(answer), url
    assert teams["outsider_api"].get(f"/api/v1/contacts/{contact.id}").status_code == 404
    assert outsider.post(f"/contacts/{contact.id}/delete", {}).status_code == 404


def test_leaving_the_team_removes_access(app, teams):
    api, contact_id = teams["member_api"], teams["private"].id
    assert api.get(f"/api/v1/contacts/{contact_id}").status_code == 200
    update_user(teams["member"].id, team_ids=[teams["support"].id])
    assert api.get(f"/api/v1/contacts/{contact_id}").status_code == 404
    assert SECRET not in _text(api.get(f"/api/v1/contacts?q={SECRET}"))
    assert SECRET not in _text(api.get("/api/v1/contacts/export?format=csv"))
    assert api.patch(f"/api/v1/contacts/{contact_id}", json={"job_title": "x"}).status_code == 404
    # The public_read one stays readable, no longer writable.
    readable = teams["readable"].id
    assert api.get(f"/api/v1/contacts/{readable}").status_code == 200
    assert api.patch(f"/api/v1/contacts/{readable}", json={"job_title": "x"}).status_code == 403


def test_a_contact_moved_to_another_team_follows_it(app, teams, client):
    contact_id = teams["private"].id
    moved = client.patch(f"/api/v1/contacts/{contact_id}", json={"team_id": teams["support"].id})
    assert moved.status_code == 200, moved.json
    assert teams["member_api"].get(f"/api/v1/contacts/{contact_id}").status_code == 404
    assert teams["outsider_api"].get(f"/api/v1/contacts/{contact_id}").status_code == 200


# -- CRM_DEFAULT_VISIBILITY ------------------------------------------------------------------------


@pytest.fixture
def private_app(crm_app_factory):
    application = crm_app_factory(DEFAULT_VISIBILITY="private")
    with application.app_context():
        yield application


def _api(app: Any, user: Any) -> Any:
    _row, token = create_token(user.id, "test")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def test_default_visibility_private_makes_new_contacts_private(private_app):
    author = create_user("author@example.com", "password123")
    other = _api(private_app, create_user("other@example.com", "password123"))
    api = _api(private_app, author)
    made = api.post("/api/v1/contacts", json={"kind": "person", "last_name": "Hidden"})
    assert made.status_code == 201 and made.json["visibility"] == "private"
    assert other.get(f"/api/v1/contacts/{made.json['id']}").status_code == 404
    explicit = api.post(
        "/api/v1/contacts", json={"kind": "person", "last_name": "Shown", "visibility": "public_write"}
    )
    assert explicit.status_code == 201 and explicit.json["visibility"] == "public_write"
    assert other.get(f"/api/v1/contacts/{explicit.json['id']}").status_code == 200
    batch = api.post("/api/v1/contacts/batch", json={"items": [{"kind": "person", "last_name": "Batched"}]})
    assert batch.status_code in (200, 201), batch.json
    batched = api.get("/api/v1/contacts?q=Batched").json["items"]
    assert [c["visibility"] for c in batched] == ["private"]
    # An update without visibility keeps the contact's own.
    updated = api.patch(f"/api/v1/contacts/{explicit.json['id']}", json={"job_title": "x"})
    assert updated.status_code == 200 and updated.json["visibility"] == "public_write"


def test_default_visibility_applies_to_imports_csv_and_vcard(private_app):
    author = create_user("author@example.com", "password123")
    other = _api(private_app, create_user("other@example.com", "password123"))
    api = _api(private_app, author)
    files = [
        ("x.csv", b"Last Name;Email\nImported;imported@example.com\n"),
        (
            "x.vcf",
            b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Cardholder;Vera;;;\r\nFN:Vera Cardholder\r\nEND:VCARD\r\n",
        ),
    ]
    for name, content in files:
        answer = api.post(
            "/api/v1/contacts/import",
            data={"file": (io.BytesIO(content), name)},
            content_type="multipart/form-data",
        )
        assert answer.status_code == 200 and answer.json["created"] == 1, answer.json
    mine = {c["last_name"]: c["visibility"] for c in api.get("/api/v1/contacts").json["items"]}
    assert mine == {"Imported": "private", "Cardholder": "private"}
    assert other.get("/api/v1/contacts").json["items"] == []
    explicit = api.post(
        "/api/v1/contacts/import",
        data={"file": (io.BytesIO(b"Last Name;visibility\nOpen;public_read\n"), "y.csv")},
        content_type="multipart/form-data",
    )
    assert explicit.status_code == 200 and explicit.json["created"] == 1, explicit.json
    assert [c["last_name"] for c in other.get("/api/v1/contacts").json["items"]] == ["Open"]


def test_the_new_contact_form_preselects_the_default(private_app):
    from werkzeug.security import generate_password_hash

    from crmcore.extensions import db

    user = create_user("writer@example.com", None)
    user.password_hash = generate_password_hash("password123", method="pbkdf2:sha256:1")
    db.session.commit()
    browser = Browser(private_app, "writer@example.com")
    page = _text(browser.get("/contacts/new"))
    assert re.search(r'<option value="private" selected>', page)
    assert not re.search(r'<option value="public_read" selected>', page)
    made = browser.post("/contacts/new", {"kind": "person", "last_name": "Formed"})
    assert made.status_code == 302, _text(made)
    chosen = browser.post(
        "/contacts/new", {"kind": "person", "last_name": "Chosen", "visibility": "public_read"}
    )
    assert chosen.status_code == 302, _text(chosen)
    api = _api(private_app, user)
    found = {c["last_name"]: c["visibility"] for c in api.get("/api/v1/contacts").json["items"]}
    assert found == {"Formed": "private", "Chosen": "public_read"}


def test_the_default_is_public_read_and_a_bad_value_names_the_variable():
    assert build({}, environ={})["DEFAULT_VISIBILITY"] == "public_read"
    assert build({}, environ={"CRM_DEFAULT_VISIBILITY": "Private"})["DEFAULT_VISIBILITY"] == "private"
    with pytest.raises(ConfigError, match="CRM_DEFAULT_VISIBILITY.*private, public_read, public_write"):
        build({}, environ={"CRM_DEFAULT_VISIBILITY": "secret"})
    with pytest.raises(ConfigError, match="CRM_DEFAULT_VISIBILITY"):
        build({"DEFAULT_VISIBILITY": "everyone"}, environ={})
