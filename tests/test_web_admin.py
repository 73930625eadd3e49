"""Administration pages: admins only; users, teams, lists, custom fields, tags and plugins."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

ADMIN_PAGES = [
    "/admin",
    "/admin/users",
    "/admin/teams",
    "/admin/roles",
    "/admin/phone-types",
    "/admin/origins",
    "/admin/salutations",
    "/admin/fields",
    "/admin/tags",
    "/admin/plugins",
]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def quick_user(email: str, is_admin: bool = False, **kw: Any) -> Any:
    from werkzeug.security import generate_password_hash

    from crmcore.extensions import db
    from crmcore.services.users import create_user

    user = create_user(email, None, is_admin=is_admin, **kw)
    user.password_hash = generate_password_hash("password123", method="pbkdf2:sha256:1")
    db.session.commit()
    return user


class Browser:
    def __init__(self, client: Any, user: Any) -> None:
        self.client, self.user = client, user
        token = _csrf(client.get("/login").get_data(as_text=True))
        client.post("/login", data={"email": user.email, "password": "password123", "csrf_token": token})
        self.token = _csrf(client.get("/contacts").get_data(as_text=True))

    def get(self, url: str) -> Any:
        return self.client.get(url)

    def post(self, url: str, data: Any = None) -> Any:
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})})


def text(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


@pytest.fixture
def admin(app):
    return Browser(app.test_client(), quick_user("root@example.com", is_admin=True, name="Root"))


@pytest.fixture
def member(app):
    return Browser(app.test_client(), quick_user("member@example.com"))


def test_admin_pages_are_forbidden_to_other_users(app, member, anonymous_client):
    for url in ADMIN_PAGES:
        response = member.get(url)
        assert response.status_code == 403, url
        assert "this page is for administrators" in text(response)
        assert anonymous_client.get(url).status_code == 302  # to the sign-in page
    assert (
        member.post("/admin/users", {"email": "x@example.com", "password": "password123"}).status_code == 403
    )
    assert member.post("/admin/tags", {"name": "x"}).status_code == 403
    assert 'id="nav-admin"' not in text(member.get("/contacts"))


def test_admin_pages_render_for_admins(app, admin):
    for url in ADMIN_PAGES:
        assert admin.get(url).status_code == 200, url
    assert 'id="nav-admin"' in text(admin.get("/contacts"))
    assert admin.get("/admin/nothing-here").status_code == 404


def test_users_create_errors_deactivate_admin_flag_and_teams(app, admin):
    from crmcore.services import users

    team = users.create_team("Sales")
    bad = admin.post("/admin/users", {"email": "not-an-email", "name": "Kept name", "password": "short"})
    assert bad.status_code == 422
    html = text(bad)
    assert 'value="Kept name"' in html and 'id="user-email-error"' in html
    created = admin.post(
        "/admin/users",
        {"email": "new@example.com", "name": "New", "password": "password123", "teams": str(team.id)},
    )
    assert created.status_code == 302
    user = users.find_user("new@example.com")
    assert [t.name for t in user.teams] == ["Sales"] and not user.is_admin
    duplicate = admin.post("/admin/users", {"email": "new@example.com", "password": "password123"})
    assert duplicate.status_code == 409 and "already exists" in text(duplicate)

    admin.post(f"/admin/users/{user.id}", {"name": "Renamed", "is_admin": "1"})  # "active" unticked
    user = users.get_user(user.id)
    assert (user.name, user.is_admin, user.active, user.teams) == ("Renamed", True, False, [])
    assert "User new@example.com updated." in text(admin.get("/admin/users"))
    myself = admin.post(f"/admin/users/{admin.user.id}", {"name": "Root", "is_admin": "1"})
    assert myself.status_code == 302
    assert users.get_user(admin.user.id).active
    assert "You cannot deactivate yourself" in text(admin.get("/admin/users"))


def test_teams(app, admin):
    from crmcore.services import users

    admin.post("/admin/teams", {"name": "Support"})
    assert [t.name for t in users.list_teams()] == ["Support"]
    admin.post("/admin/teams", {"name": "Support"})
    assert "team Support already exists" in text(admin.get("/admin/teams"))
    admin.post(f"/admin/teams/{users.list_teams()[0].id}/delete")
    assert users.list_teams() == []


def test_phone_types_added_by_admin_reach_the_contact_form(app, admin):
    from crmcore.services import lookups

    admin.post("/admin/phone-types", {"label_en": "Pager", "label_fr": "Bipeur"})
    assert "pager" in lookups.keys("phone_type")
    assert '<option value="pager">Pager</option>' in text(admin.get("/contacts/new")).replace(
        "\n", ""
    )  # template row
    admin.post(
        "/admin/phone-types/pager",
        {"label_en": "Beeper", "label_fr": "Bipeur", "position": "5", "action": "update"},
    )
    assert lookups.get("phone_type", "pager").label_en == "Beeper"
    admin.post("/admin/phone-types/mobile", {"action": "delete"})
    assert "ships with crmcore and cannot be deleted" in text(admin.get("/admin/phone-types"))
    admin.post("/admin/phone-types/pager", {"action": "delete"})
    assert "pager" not in lookups.keys("phone_type")
    admin.post("/admin/roles", {"label_en": ""})
    assert "label_en: a label is required" in text(admin.get("/admin/roles"))


def test_custom_fields_create_edit_delete(app, admin):
    from crmcore.services import fields

    bad = admin.post(
        "/admin/fields", {"key": "Bad Key", "label_en": "Size", "type": "choice", "kinds": "person"}
    )
    assert bad.status_code == 422
    assert 'value="Size"' in text(bad)
    created = admin.post(
        "/admin/fields",
        {
            "key": "size",
            "label_en": "Size",
            "label_fr": "Taille",
            "type": "choice",
            "kinds": "person",
            "choices": "S\nM, L",
        },
    )
    assert created.status_code == 302
    field = fields.all_fields()["size"]
    assert (field.choices, field.kinds) == (("S", "M", "L"), ("person",))
    page = text(admin.get("/admin/fields"))
    assert 'id="edit-field-size"' in page
    admin.post(
        "/admin/fields/size",
        {
            "label_en": "Shirt size",
            "label_fr": "Taille",
            "kinds": ["person", "organization"],
            "choices": "S\nM\nL\nXL",
        },
    )
    field = fields.all_fields()["size"]
    assert field.choices[-1] == "XL" and field.kinds == ("person", "organization")
    admin.post("/admin/fields/size", {"action": "delete"})
    assert "size" not in fields.all_fields()


def test_tags_rename_merge_delete(app, admin, make_contact):
    from crmcore.services import tags

    make_contact(last_name="A", tags=["vip", "Gold"])
    make_contact(last_name="B", tags=["V.I.P."])
    by_name = {tag.name: tag for tag, _count in tags.list_tags()}
    admin.post(f"/admin/tags/{by_name['V.I.P.'].id}", {"name": "Gold", "action": "rename"})
    assert "merge the two tags instead" in text(admin.get("/admin/tags"))
    admin.post(
        "/admin/tags/merge", {"source_ids": [by_name["V.I.P."].id], "target_id": str(by_name["vip"].id)}
    )
    counts = {tag.name: count for tag, count in tags.list_tags()}
    assert counts == {"Gold": 1, "vip": 2}
    admin.post(f"/admin/tags/{by_name['vip'].id}", {"name": "VIP", "action": "rename"})
    admin.post(f"/admin/tags/{by_name['Gold'].id}", {"action": "delete"})
    assert {tag.name for tag, _count in tags.list_tags()} == {"VIP"}
    admin.post("/admin/tags/merge", {"source_ids": [], "target_id": ""})
    assert "choose the tag to keep" in text(admin.get("/admin/tags"))


def test_plugins_page_shows_status_and_errors(crm_app_factory):
    app = crm_app_factory(PLUGINS=["not_installed_plugin"])
    with app.app_context():
        browser = Browser(app.test_client(), quick_user("p@example.com", is_admin=True))
        html = text(browser.get("/admin/plugins"))
    assert 'data-plugin="not_installed_plugin" class="plugin-failed"' in html
    assert "enabled in CRM_PLUGINS but not installed" in html
    assert 'data-plugin="notes" class="plugin-loaded"' in html
