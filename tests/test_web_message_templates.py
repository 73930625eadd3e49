"""The message templates administration page (/admin/message-templates): list, create, edit, delete,
in French and English, errors beside their field with the input kept, CSRF, admins only."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.test_web_admin import Browser, quick_user, text


@pytest.fixture
def admin(app: Any) -> Browser:
    return Browser(app.test_client(), quick_user("root@example.com", is_admin=True, name="Root"))


@pytest.fixture
def member(app: Any) -> Browser:
    return Browser(app.test_client(), quick_user("member@example.com"))


def _rows() -> list[Any]:
    from crmcore.services.message_templates import list_templates

    return list_templates()


def _field_error(html: str, field: str) -> str:
    match = re.search(rf'<span class="field-error" id="template-{field}-error">([^<]+)</span>', html)
    assert match, f"no error beside {field}"
    return match.group(1)


WELCOME = {
    "key": "welcome",
    "name": "Welcome",
    "channel": "email",
    "language": "en",
    "subject": "Hello {{ contact.first_name }}",
    "body": "Dear {{ contact.display_name }},\nwelcome.\n{{ sender.name }}",
}


def test_create_list_edit_delete(app: Any, admin: Browser) -> None:
    empty = admin.get("/admin/message-templates")
    assert empty.status_code == 200 and 'id="no-message-templates"' in text(empty)
    assert 'id="admin-nav-message-templates"' in text(empty)
    assert 'aria-current="page"' in text(empty).split('id="admin-nav-message-templates"', 1)[1].split(">")[0]

    created = admin.post("/admin/message-templates", WELCOME)
    assert created.status_code == 302 and created.headers["Location"].endswith("/admin/message-templates")
    [row] = _rows()
    assert (row.key, row.channel, row.language, row.subject) == (
        "welcome",
        "email",
        "en",
        "Hello {{ contact.first_name }}",
    )
    assert row.body == WELCOME["body"]
    listing = text(admin.get("/admin/message-templates"))
    assert "Message template welcome created." in listing
    assert f'data-template-id="{row.id}" data-key="welcome"' in listing
    # A French version of the same key.
    assert (
        admin.post(
            "/admin/message-templates", {**WELCOME, "language": "fr", "subject": "Bonjour"}
        ).status_code
        == 302
    )

    edit = admin.get(f"/admin/message-templates/{row.id}")
    assert edit.status_code == 200
    page = text(edit)
    assert 'id="edit-template-form"' in page and 'value="Hello {{ contact.first_name }}"' in page
    saved = admin.post(
        f"/admin/message-templates/{row.id}",
        {**WELCOME, "name": "Welcome mail", "body": "Hi {{ contact.first_name }}"},
    )
    assert saved.status_code == 302
    from crmcore.extensions import db

    db.session.expire_all()
    assert db.session.get(type(row), row.id).name == "Welcome mail"
    assert db.session.get(type(row), row.id).body == "Hi {{ contact.first_name }}"

    deleted = admin.post(f"/admin/message-templates/{row.id}/delete")
    assert deleted.status_code == 302
    assert [(r.key, r.language) for r in _rows()] == [("welcome", "fr")]
    assert "Message template welcome deleted." in text(admin.get("/admin/message-templates"))
    assert admin.get(f"/admin/message-templates/{row.id}").status_code == 404


def test_errors_beside_their_field_with_the_input_kept(app: Any, admin: Browser) -> None:
    refused = admin.post(
        "/admin/message-templates",
        {
            "key": "Bad Key",
            "name": "Kept name",
            "channel": "email",
            "language": "en",
            "subject": "",
            "body": "",
        },
    )
    assert refused.status_code == 422
    page = text(refused)
    assert "lowercase letters" in _field_error(page, "key")
    assert _field_error(page, "body") == "is required"
    assert "is required for email templates" in _field_error(page, "subject")
    assert 'id="template-key" name="key" value="Bad Key"' in page
    assert 'value="Kept name"' in page
    assert '<option value="email" selected>' in page
    assert 'aria-invalid="true" aria-describedby="template-key-error"' in page
    assert _rows() == []

    placeholder = admin.post("/admin/message-templates", {**WELCOME, "body": "Hi {{ contact.nickname }}"})
    assert placeholder.status_code == 422
    assert "unknown placeholder" in _field_error(text(placeholder), "body")
    assert "Hi {{ contact.nickname }}" in text(placeholder)

    no_channel = admin.post("/admin/message-templates", {**WELCOME, "channel": ""})
    assert no_channel.status_code == 422 and _field_error(text(no_channel), "channel") == "choose a channel"

    assert admin.post("/admin/message-templates", WELCOME).status_code == 302
    twice = admin.post("/admin/message-templates", WELCOME)
    assert twice.status_code == 422
    assert "already exists" in _field_error(text(twice), "key")

    [row] = _rows()
    bad_edit = admin.post(f"/admin/message-templates/{row.id}", {**WELCOME, "body": "{% if %}"})
    assert bad_edit.status_code == 422
    assert "line 1" in _field_error(text(bad_edit), "body")
    assert "{% if %}" in text(bad_edit)  # what was typed, not the stored text


def test_french_page_and_errors(app: Any) -> None:
    french = Browser(app.test_client(), quick_user("racine@example.com", is_admin=True, language="fr"))
    page = text(french.get("/admin/message-templates"))
    assert "Modèles de messages" in page and "Nouveau modèle de message" in page
    refused = french.post("/admin/message-templates", {**WELCOME, "subject": "", "body": ""})
    assert refused.status_code == 422
    assert _field_error(text(refused), "body") == "est obligatoire"
    assert "email" in _field_error(text(refused), "subject")


def test_csrf_and_admins_only(app: Any, admin: Browser, member: Browser, anonymous_client: Any) -> None:
    no_token = admin.client.post("/admin/message-templates", data=WELCOME)
    assert no_token.status_code == 400 and _rows() == []
    assert member.get("/admin/message-templates").status_code == 403
    assert member.post("/admin/message-templates", WELCOME).status_code == 403
    assert anonymous_client.get("/admin/message-templates").status_code == 302
    assert _rows() == []
