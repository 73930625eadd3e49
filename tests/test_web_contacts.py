"""Contact pages: list (cards/table), filters, mass actions, the form, the contact page and its tabs."""

from __future__ import annotations

import io
import re
from html import unescape
from typing import Any

import pytest
from PIL import Image

from crmcore.plugin_api import Action, Tab, hookimpl


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class Browser:
    """A test client signed in through the sign-in page, posting forms with the CSRF token."""

    def __init__(self, client: Any, user: Any) -> None:
        self.client = client
        self.user = user
        token = _csrf(client.get("/login").get_data(as_text=True))
        response = client.post(
            "/login", data={"email": user.email, "password": "password123", "csrf_token": token}
        )
        assert response.status_code == 302
        self.token = _csrf(client.get("/contacts").get_data(as_text=True))

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, data: Any = None, **kw: Any) -> Any:
        data = dict(data or {})
        data.setdefault("csrf_token", self.token)
        return self.client.post(url, data=data, **kw)


def text(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


def quick_user(email: str, is_admin: bool = False, **kw: Any) -> Any:
    """A user whose password ("password123") is hashed cheaply: signing in stays fast in tests."""
    from werkzeug.security import generate_password_hash

    from crmcore.extensions import db
    from crmcore.services.users import create_user

    user = create_user(email, None, is_admin=is_admin, **kw)
    user.password_hash = generate_password_hash("password123", method="pbkdf2:sha256:1")
    db.session.commit()
    return user


@pytest.fixture
def admin_browser(app):
    return Browser(app.test_client(), quick_user("boss@example.com", is_admin=True, name="Boss"))


@pytest.fixture
def user_browser(app):
    return Browser(app.test_client(), quick_user("sam@example.com", name="Sam", language="en"))


PERSON_FORM = {
    "kind": "person",
    "salutation": "mrs",
    "first_name": "Élodie",
    "last_name": "Martin",
    "job_title": "Buyer",
    "emails-0-address": "elodie@apollo.example.fr",
    "emails-0-label": "work",
    "emails-primary": "0",
    "emails-0-accepts_email": "1",
    "phones-0-number": "06 12 34 56 78",
    "phones-0-type": "mobile",
    "phones-0-sms": "1",
    "phones-0-whatsapp": "1",
    "phones-3-number": "01 42 68 53 00",
    "phones-3-type": "work",
    "phones-3-calls": "1",
    "addresses-0-kind": "main",
    "addresses-0-street": "12 rue de la Paix",
    "addresses-0-postal_code": "75002",
    "addresses-0-city": "Paris",
    "addresses-0-country": "FR",
    "status": "prospect",
    "visibility": "public_read",
    "tags": "VIP, Paris",
}


def _only_contact() -> Any:
    from sqlalchemy import select

    from crmcore.extensions import db
    from crmcore.models import Contact

    return db.session.scalars(select(Contact)).one()


def test_root_goes_to_the_contacts(admin_browser):
    response = admin_browser.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/contacts")


def test_create_a_person_with_two_phones_and_an_address(app, admin_browser):
    page = admin_browser.get("/contacts/new?kind=person")
    assert page.status_code == 200
    html = text(page)
    for element_id in ("kind-person", "last_name", "add-phone", "save", "save-and-new", "duplicate-warning"):
        assert f'id="{element_id}"' in html
    assert '<label for="last_name">Last name <abbr class="required"' in page.get_data(as_text=True)

    response = admin_browser.post("/contacts/new", PERSON_FORM)
    assert response.status_code == 302, text(response)[:2000]
    contact = _only_contact()
    assert response.headers["Location"].endswith(f"/contacts/{contact.id}")
    assert (contact.first_name, contact.last_name, contact.salutation) == ("Élodie", "Martin", "mrs")
    assert [(p.number, p.type, p.sms, p.whatsapp, p.calls) for p in contact.phones] == [
        ("06 12 34 56 78", "mobile", True, True, False),
        ("01 42 68 53 00", "work", False, False, True),
    ]
    assert [(a.kind, a.street, a.city, a.country) for a in contact.addresses] == [
        ("main", "12 rue de la Paix", "Paris", "FR")
    ]
    assert [(e.address, e.primary, e.accepts_email) for e in contact.emails] == [
        ("elodie@apollo.example.fr", True, True)
    ]
    assert sorted(t.name for t in contact.tags) == ["Paris", "VIP"]
    assert [o.email for o in contact.owners] == ["boss@example.com"]  # the creator is responsible
    shown = text(admin_browser.get(response.headers["Location"]))
    assert "Élodie Martin saved." in shown
    assert "06 12 34 56 78" in shown and "12 rue de la Paix" in shown


def test_validation_errors_appear_beside_fields_and_keep_the_input(app, admin_browser):
    from crmcore.services.contact_query import list_contacts

    form = {
        **PERSON_FORM,
        "last_name": "",
        "first_name": "Typed first name",
        "phones-3-number": "12",
        "emails-0-address": "not-an-email",
        "birthday": "2999-01-01",
        "description": "A long description I do not want to type again",
    }
    response = admin_browser.post("/contacts/new", form)
    assert response.status_code == 422
    html = text(response)
    assert 'id="error-summary"' in html
    # Beside each field, with the input marked invalid.
    assert re.search(r'id="last_name"[^>]*aria-invalid="true"', html)
    assert 'id="last_name-error">is required for a person<' in html
    assert 'id="phones-1-number-error">' in html  # the second phone row, renumbered
    assert 'id="emails-0-address-error">' in html
    assert 'id="birthday-error">cannot be in the future<' in html
    # Nothing typed is lost.
    assert 'value="Typed first name"' in html
    assert 'value="12"' in html and 'value="06 12 34 56 78"' in html
    assert 'value="not-an-email"' in html
    assert "A long description I do not want to type again</textarea>" in html
    assert 'value="VIP, Paris"' in html
    assert re.search(r'id="phones-0-whatsapp"[^>]*checked', html)
    assert list_contacts(None).items == []  # nothing half-written


def test_save_and_create_new(admin_browser):
    response = admin_browser.post(
        "/contacts/new", {"kind": "organization", "name": "Moulins de Provence", "next": "new"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/contacts/new?kind=organization")
    page = text(admin_browser.get(response.headers["Location"]))
    assert "Moulins de Provence saved. You can create the next one." in page
    assert re.search(r'id="kind-organization"[^>]*checked', page)


def test_edit_changes_the_contact_and_refuses_a_stale_form(app, admin_browser, make_contact):
    contact = make_contact(first_name="Jean", last_name="Dupont", phones=[{"number": "0612345678"}])
    page = text(admin_browser.get(f"/contacts/{contact.id}/edit"))
    assert 'value="Dupont"' in page and 'value="0612345678"' in page
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    form = {
        "kind": "person",
        "first_name": "Jean",
        "last_name": "Durand",
        "phones-0-number": "0612345678",
        "phones-0-type": "mobile",
        "status": "customer",
        "visibility": "public_read",
        "owners": str(admin_browser.user.id),
        "version": version,
    }
    response = admin_browser.post(f"/contacts/{contact.id}/edit", form)
    assert response.status_code == 302
    from crmcore.services.contacts import get_contact

    updated = get_contact(contact.id)
    assert (updated.last_name, updated.status) == ("Durand", "customer")
    stale = admin_browser.post(f"/contacts/{contact.id}/edit", {**form, "last_name": "Other"})
    assert stale.status_code == 409
    assert "changed by someone else" in text(stale)
    assert 'value="Other"' in text(stale)  # still not lost


def test_person_linked_to_organization_by_typed_name(app, admin_browser, make_contact):
    org = make_contact(name="Boulangerie Apollo", kind="organization")
    response = admin_browser.post(
        "/contacts/new",
        {"kind": "person", "last_name": "Petit", "organization": "boulangerie apollo", "role": "purchasing"},
    )
    assert response.status_code == 302
    person = [c for c in org.members][0] if org.members else None
    from crmcore.services.contact_query import list_contacts

    person = list_contacts(None, organization_id=org.id).items[0]
    assert (person.last_name, person.role) == ("Petit", "purchasing")
    unknown = admin_browser.post(
        "/contacts/new", {"kind": "person", "last_name": "Grand", "organization": "Nowhere Inc"}
    )
    assert unknown.status_code == 422
    assert 'id="organization-error">no contact has exactly this name' in text(unknown)


def test_custom_fields_get_their_widget_and_errors(app, admin_browser):
    from crmcore.services import fields

    fields.create_definition(
        {"key": "shoe_size", "label_en": "Shoe size", "type": "integer", "kinds": ["person"]}
    )
    fields.create_definition(
        {"key": "segment", "label_en": "Segment", "type": "choice", "choices": ["retail", "wholesale"]}
    )
    fields.create_definition(
        {"key": "channels", "label_en": "Channels", "type": "multi_choice", "choices": ["web", "shop"]}
    )
    fields.create_definition({"key": "vip", "label_en": "VIP", "type": "boolean", "required": True})
    fields.create_definition(
        {"key": "since", "label_en": "Customer since", "type": "date", "kinds": ["organization"]}
    )
    html = text(admin_browser.get("/contacts/new"))
    assert re.search(r'<input type="number" id="custom-shoe_size"', html)
    assert '<select id="custom-segment"' in html
    assert 'id="custom-channels-1" name="custom-channels" value="shop"' in html
    assert '<select id="custom-vip"' in html
    assert re.search(
        r'data-kinds="organization"[^>]*hidden', html
    )  # organization-only field hidden for a person

    bad = admin_browser.post(
        "/contacts/new",
        {"kind": "person", "last_name": "Roux", "custom-shoe_size": "forty", "custom-segment": "retail"},
    )
    assert bad.status_code == 422
    html = text(bad)
    assert 'id="custom-shoe_size-error">must be a whole number<' in html
    assert 'id="custom-vip-error">is required<' in html
    assert 'value="forty"' in html
    good = admin_browser.post(
        "/contacts/new",
        {
            "kind": "person",
            "last_name": "Roux",
            "custom-shoe_size": "42",
            "custom-segment": "retail",
            "custom-channels": ["web", "shop"],
            "custom-vip": "false",
        },
    )
    assert good.status_code == 302
    contact = _only_contact()
    assert contact.custom == {"shoe_size": 42, "segment": "retail", "channels": ["web", "shop"], "vip": False}
    page = text(admin_browser.get(f"/contacts/{contact.id}"))
    assert "Shoe size" in page and "web, shop" in page


def _image(size: tuple[int, int] = (800, 600), fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, fmt)
    return out.getvalue()


def test_photo_upload_is_resized_and_bad_files_are_refused(app, admin_browser, make_contact):
    contact = make_contact(last_name="Photo")
    base = {"kind": "person", "last_name": "Photo", "status": "prospect", "visibility": "public_read"}
    refused = admin_browser.post(
        f"/contacts/{contact.id}/edit",
        {**base, "last_name": "Changed", "photo": (io.BytesIO(b"not an image"), "x.jpg")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    html = text(refused)
    assert "the file is not an image (JPEG, PNG, GIF or WebP)" in html
    assert 'value="Changed"' in html and "choose it again" in html
    too_big = admin_browser.post(
        f"/contacts/{contact.id}/edit",
        {**base, "photo": (io.BytesIO(b"\0" * (10 * 1024 * 1024 + 1)), "big.jpg")},
        content_type="multipart/form-data",
    )
    assert too_big.status_code == 422 and "the limit is 10 MB" in text(too_big)
    ok = admin_browser.post(
        f"/contacts/{contact.id}/edit",
        {**base, "photo": (io.BytesIO(_image()), "me.jpg")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302
    photo = admin_browser.get(f"/contacts/{contact.id}/photo")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(photo.data)).size == (200, 150)
    assert f'src="/contacts/{contact.id}/photo"' in text(admin_browser.get(f"/contacts/{contact.id}"))


# -- list --------------------------------------------------------------------------------------------


def test_list_and_cards_views_are_remembered(app, admin_browser, make_contact):
    beta = make_contact(name="Beta Corp", kind="organization", is_supplier=True)
    make_contact(last_name="Alpha", emails=[{"address": "a@x.example"}], organization_id=beta.id)
    listed = text(admin_browser.get("/contacts?view=list"))
    assert 'id="contact-table"' in listed and "a@x.example" in listed
    alpha_row = re.search(r'data-testid="contact-row".*?</tr>', listed, re.S).group(0)
    assert "Alpha" in alpha_row and "Beta Corp" in alpha_row  # a person shows its organization
    cards = text(admin_browser.get("/contacts?view=cards"))
    assert 'id="contact-cards"' in cards and cards.count('data-testid="contact-card"') == 2
    assert 'data-testid="supplier-badge"' in cards
    again = text(admin_browser.get("/contacts"))
    assert 'id="contact-cards"' in again  # remembered in the session
    assert 'id="view-cards" class="button active"' in again


def test_search_filters_and_sorting(app, admin_browser, make_contact):
    other = quick_user("other@example.com")
    make_contact(last_name="Alpha", status="customer", tags=["VIP"])
    make_contact(last_name="Bravo", owners=[other.id])
    make_contact(name="Charlie SA", kind="organization", is_supplier=True)

    def names(url: str) -> list[str]:
        html = text(admin_browser.get(url))
        return re.findall(r'<a href="/contacts/\d+">([^<]+)</a>', html)

    assert names("/contacts?view=list") == ["Alpha", "Bravo", "Charlie SA"]
    assert names("/contacts?sort=-name") == ["Charlie SA", "Bravo", "Alpha"]
    assert names("/contacts?q=brav") == ["Bravo"]
    assert names("/contacts?kind=organization") == ["Charlie SA"]
    assert names("/contacts?status=customer") == ["Alpha"]
    assert names("/contacts?status=supplier") == ["Charlie SA"]
    assert names("/contacts?tag=vip") == ["Alpha"]
    assert names(f"/contacts?owner={other.id}") == ["Bravo"]
    html = text(admin_browser.get("/contacts?sort=name"))
    assert 'aria-sort="ascending"' in html and 'id="sort-name" href="/contacts?sort=-name"' in html
    assert "No contact matches these filters." in text(admin_browser.get("/contacts?q=zzzz"))


def test_cursor_pagination_has_next_and_first(crm_app_factory):
    from crmcore.services.contacts import create_contact

    app = crm_app_factory(PAGE_SIZE=2)
    with app.app_context():
        user = quick_user("pager@example.com", is_admin=True)
        for name in ("A1", "A2", "A3", "A4", "A5"):
            create_contact({"kind": "person", "last_name": name})
        browser = Browser(app.test_client(), user)
        first = text(browser.get("/contacts?view=list"))
        # The names in the rows (a CSRF token may contain "A3" too).
        listed = re.compile(r'<a href="/contacts/\d+">([^<]+)</a>')
        assert listed.findall(first) == ["A1", "A2"] and 'id="page-first"' not in first
        next_url = unescape(re.search(r'id="page-next" class="button" href="([^"]+)"', first).group(1))
        second = text(browser.get(next_url))
        assert listed.findall(second) == ["A3", "A4"]
        assert 'id="page-first"' in second
        assert "is not a cursor" in text(browser.get("/contacts?cursor=garbage"))


def test_mass_tag_reports_changed_and_refused(app, user_browser, make_contact):
    me = user_browser.user
    someone = quick_user("owner@example.com")
    mine = make_contact(last_name="Mine", owners=[me.id])
    tagged = make_contact(last_name="Tagged", owners=[me.id], tags=["Salon"])
    theirs = make_contact(last_name="Theirs", owners=[someone.id], visibility="public_read")
    response = user_browser.post(
        "/contacts/mass",
        {
            "action": "add_tag",
            "tag": "salon",
            "ids": [mine.id, tagged.id, theirs.id],
            "next": "/contacts?view=list",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/contacts?view=list"
    html = text(user_browser.get("/contacts?view=list"))
    assert "1 contact changed. 1 was already up to date." in html
    assert "1 contact refused: Theirs (you may read contact" in html
    from crmcore.services.contacts import get_contact

    assert [t.name for t in get_contact(mine.id).tags] == ["Salon"]
    assert get_contact(theirs.id).tags == []
    removed = user_browser.post(
        "/contacts/mass", {"action": "remove_tag", "tag": "SALON", "ids": [mine.id, tagged.id]}
    )
    assert removed.status_code == 302
    assert get_contact(mine.id).tags == [] and get_contact(tagged.id).tags == []
    assert "2 contacts changed." in text(user_browser.get("/contacts"))


def test_mass_assign_status_delete_and_export(app, admin_browser, make_contact):
    from crmcore.services.contacts import get_contact

    helper = quick_user("helper@example.com")
    a = make_contact(last_name="A")
    b = make_contact(last_name="B")
    ids = [a.id, b.id]
    assert (
        admin_browser.post("/contacts/mass", {"action": "assign", "owner": helper.id, "ids": ids}).status_code
        == 302
    )
    assert [o.id for o in get_contact(a.id).owners] == [helper.id]
    admin_browser.post("/contacts/mass", {"action": "status", "status": "customer", "ids": ids})
    assert get_contact(b.id).status == "customer"
    missing = admin_browser.post("/contacts/mass", {"action": "add_tag", "tag": "", "ids": ids})
    assert missing.status_code == 302
    assert "Tag: is required" in text(admin_browser.get("/contacts"))
    export = admin_browser.post("/contacts/mass", {"action": "export", "ids": ids})
    assert export.headers["Location"] == f"/api/v1/contacts/export?format=csv&ids={a.id}%2C{b.id}"
    admin_browser.post("/contacts/mass", {"action": "delete", "ids": [a.id]})
    assert get_contact(a.id, include_deleted=True).deleted_at is not None
    assert "1 contact changed." in text(admin_browser.get("/contacts"))


class FailingHookPlugin:
    @hookimpl
    def contact_updated(self, contact, changes, user, source):
        if contact.last_name == "Bomb":
            raise RuntimeError("this plugin breaks on Bomb")


def test_mass_action_undoes_only_the_contact_whose_hook_failed(register_plugin):
    from crmcore.services import history
    from crmcore.services.contacts import create_contact, get_contact

    app = register_plugin(FailingHookPlugin(), name="fragile")
    with app.app_context():
        browser = Browser(app.test_client(), quick_user("f@example.com", is_admin=True))
        ok = create_contact({"kind": "person", "last_name": "Fine"})
        bomb = create_contact({"kind": "person", "last_name": "Bomb"})
        also = create_contact({"kind": "person", "last_name": "Also fine"})
        browser.post(
            "/contacts/mass", {"action": "add_tag", "tag": "Salon", "ids": [ok.id, bomb.id, also.id]}
        )
        html = text(browser.get("/contacts"))
        assert "2 contacts changed." in html and "Bomb (unexpected error (logged))" in html
        assert [t.name for t in get_contact(ok.id).tags] == ["Salon"]
        assert [t.name for t in get_contact(also.id).tags] == ["Salon"]
        assert get_contact(bomb.id).tags == []
        assert [e.action for e in history.entries(bomb.id)] == ["create"]  # its history untouched too


class MassPlugin:
    @hookimpl
    def register_mass_actions(self, user):
        return [
            Action(
                key="print_labels",
                label={"en": "Print labels", "fr": "Imprimer des étiquettes"},
                url="/labels",
            ),
            Action(key="send_sms", label="Send SMS", url="/sms/bulk", method="POST"),
        ]


def test_plugin_mass_actions_receive_the_selection(register_plugin):
    app = register_plugin(MassPlugin(), name="massy")
    with app.app_context():
        browser = Browser(app.test_client(), quick_user("m@example.com", is_admin=True))
        html = text(browser.get("/contacts"))
        assert 'value="plugin:massy:print_labels"' in html and ">Print labels<" in html
        get = browser.post("/contacts/mass", {"action": "plugin:massy:print_labels", "ids": ["3", "4"]})
        assert get.status_code == 303 and get.headers["Location"] == "/labels?ids=3&ids=4"
        post = browser.post("/contacts/mass", {"action": "plugin:massy:send_sms", "ids": ["3"]})
        assert post.status_code == 307 and post.headers["Location"] == "/sms/bulk"


# -- contact page ----------------------------------------------------------------------------------------


class TabsPlugin:
    @hookimpl
    def contact_tabs(self, contact, user):
        def boom(_contact):
            raise RuntimeError("tab exploded")

        return [
            Tab(
                key="invoices",
                label={"en": "Invoices", "fr": "Factures"},
                render=lambda c: "<p id='inv'>2 invoices</p>",
                count=2,
            ),
            Tab(key="broken", label="Broken", render=boom, order=50),
        ]

    @hookimpl
    def contact_actions(self, contact, user):
        return [
            Action(key="vcard", label="Export vCard", url=f"/vcard/{contact.id}"),
            Action(
                key="envelope",
                label="Print envelope",
                url=f"/envelope/{contact.id}",
                method="POST",
                confirm="Sure?",
            ),
        ]


def test_contact_page_renders_every_tab_and_a_raising_tab_as_an_error_box(register_plugin):
    from crmcore.services.contacts import create_contact

    app = register_plugin(TabsPlugin(), name="tabby")
    with app.app_context():
        browser = Browser(app.test_client(), quick_user("t@example.com", is_admin=True))
        contact = create_contact({"kind": "person", "last_name": "Tabbed"})
        response = browser.get(f"/contacts/{contact.id}")
        assert response.status_code == 200
        html = text(response)
        for key in ("details", "notes", "history", "invoices", "broken"):
            assert f'id="tab-{key}"' in html and f'id="panel-{key}"' in html
        assert "<p id='inv'>2 invoices</p>" in html
        assert '<span class="count">2</span>' in html
        assert 'class="plugin-error" role="alert">The tabby plugin could not show this tab.' in html
        assert 'id="action-vcard" href="/vcard/' in html
        assert re.search(r'<form method="post" action="/envelope/\d+" data-confirm="Sure\?">', html)
        chosen = text(browser.get(f"/contacts/{contact.id}?tab=invoices"))
        assert re.search(r'id="panel-invoices"[^>]*>', chosen).group(0).find("hidden") == -1
        assert re.search(r'id="panel-details"[^>]*hidden', chosen)


def test_details_tab_shows_links_members_related_and_consents(app, admin_browser, make_contact):
    org = make_contact(name="Apollo", kind="organization", emails=[{"address": "contact@apollo.example"}])
    boss = make_contact(first_name="Anne", last_name="Chef", organization_id=org.id)
    person = make_contact(
        first_name="Léa",
        last_name="Petit",
        organization_id=org.id,
        reports_to_id=boss.id,
        role="billing",
        emails=[{"address": "lea@apollo.example", "accepts_email": True}],
        phones=[{"number": "0612345678", "sms": True}],
        do_not_email=True,
    )
    html = text(admin_browser.get(f"/contacts/{person.id}"))
    assert f'id="organization-link" href="/contacts/{org.id}"' in html
    assert "Reports to" in html and "Anne Chef" in html and "Billing" in html
    assert "accepts emails" in html and 'title="SMS: Yes"' in html and 'title="WhatsApp: No"' in html
    related = html[html.index('id="related-contacts"') :]
    assert "Apollo" in related[:400]
    org_page = text(admin_browser.get(f"/contacts/{org.id}"))
    members = org_page[org_page.index('id="members"') :]
    assert "Léa Petit" in members and "Anne Chef" in members


def test_notes_tab_adds_a_note_and_keeps_the_text_on_error(app, admin_browser, make_contact):
    contact = make_contact(last_name="Noted")
    empty = admin_browser.post(f"/contacts/{contact.id}/notes", {"body": "   ", "kind": "internal"})
    assert empty.status_code == 422 and 'id="note-body-error">is required<' in text(empty)
    too_long = admin_browser.post(f"/contacts/{contact.id}/notes", {"body": "x" * 20001, "kind": "customer"})
    assert too_long.status_code == 422 and "x" * 20001 + "</textarea>" in text(too_long)
    response = admin_browser.post(
        f"/contacts/{contact.id}/notes", {"body": "Called, wants a quote", "kind": "customer"}
    )
    assert response.headers["Location"].endswith("?tab=notes")
    html = text(admin_browser.get(response.headers["Location"]))
    assert "Called, wants a quote" in html and "Customer note" in html


def test_history_tab_is_a_readable_diff(app, admin_browser, make_contact):
    from crmcore.services.contacts import update_contact

    contact = make_contact(last_name="Dupont", status="prospect")
    update_contact(
        contact.id, {"last_name": "Durand", "status": "customer", "tags": ["VIP"]}, admin_browser.user, "ui"
    )
    html = text(admin_browser.get(f"/contacts/{contact.id}?tab=history"))
    rows = re.findall(r'data-testid="history-row">(.*?)</tr>', html, re.S)
    flat = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    assert any("Last name Dupont → Durand" in row and "Boss (web interface)" in row for row in flat), flat
    assert any("Status Prospect → Customer" in row for row in flat), flat
    assert any("Tags — → VIP" in row for row in flat), flat
    assert any(row.endswith("Created") or "Created" in row for row in flat)


def test_delete_restore_and_warnings(app, admin_browser, make_contact):
    contact = make_contact(last_name="Gone")
    deleted = admin_browser.post(f"/contacts/{contact.id}/delete")
    assert deleted.status_code == 302
    html = text(admin_browser.get(f"/contacts/{contact.id}"))
    assert 'id="deleted-banner"' in html and 'id="restore-contact"' in html
    assert "Gone" not in text(admin_browser.get("/contacts?view=list")).split('id="contact-table"')[-1]
    assert admin_browser.post(f"/contacts/{contact.id}/restore").status_code == 302
    html = text(admin_browser.get(f"/contacts/{contact.id}"))
    assert 'id="deleted-banner"' not in html and "Gone was restored." in html

    empty = admin_browser.post(f"/contacts/{contact.id}/warnings", {"message": "", "level": "info"})
    assert empty.status_code == 422 and 'id="warning-message-error">is required<' in text(empty)
    admin_browser.post(f"/contacts/{contact.id}/warnings", {"message": "Bad payer", "level": "blocking"})
    admin_browser.post(f"/contacts/{contact.id}/warnings", {"message": "Prefers mornings", "level": "info"})
    html = text(admin_browser.get(f"/contacts/{contact.id}"))
    blocking = re.search(
        r'class="warning warning-blocking" data-testid="warning-blocking" role="alert">(.*?)</div>',
        html,
        re.S,
    )
    assert blocking and "Bad payer" in blocking.group(1)
    assert html.index("Bad payer") < html.index("Prefers mornings")  # blocking ones first
    warning_id = re.search(r'id="remove-warning-(\d+)"', html).group(1)
    admin_browser.post(f"/contacts/{contact.id}/warnings/{warning_id}/delete")
    html = text(admin_browser.get(f"/contacts/{contact.id}"))
    warnings = html[html.index('id="warnings"') : html.index('id="tabs"')]
    assert "Bad payer" not in warnings and "Prefers mornings" in warnings


def test_pages_respect_access(app, user_browser, make_contact):
    someone = quick_user("owner2@example.com")
    private = make_contact(last_name="Secret", owners=[someone.id], visibility="private")
    readable = make_contact(last_name="Readable", owners=[someone.id], visibility="public_read")
    assert user_browser.get(f"/contacts/{private.id}").status_code == 404
    assert "Secret" not in text(user_browser.get("/contacts?view=list"))
    page = text(user_browser.get(f"/contacts/{readable.id}"))
    assert "Readable" in page and 'id="edit-contact"' not in page and 'id="delete-contact"' not in page
    assert 'id="note-form"' not in page
    refused = user_browser.get(f"/contacts/{readable.id}/edit")
    assert refused.status_code == 403 and "you may read contact" in text(refused)
    assert user_browser.post(f"/contacts/{readable.id}/delete").status_code == 403
    user_browser.post("/contacts/mass", {"action": "add_tag", "tag": "x", "ids": [private.id]})
    html = text(user_browser.get("/contacts"))
    assert f"1 contact refused: #{private.id} (contact not found)" in html and "Secret" not in html


def test_pages_need_a_session_and_posts_need_csrf(app, anonymous_client, admin_browser, make_contact):
    assert anonymous_client.get("/contacts").status_code == 302
    contact = make_contact(last_name="Safe")
    no_token = admin_browser.client.post(f"/contacts/{contact.id}/delete", data={})
    assert no_token.status_code == 400


def test_people_are_linked_and_unlinked_from_the_organization_page(
    app, admin_browser, user_browser, make_contact
):
    from crmcore.services.contacts import get_contact

    org = make_contact(name="Garage Durand", kind="organization")
    paul = make_contact(last_name="Lefort", first_name="Paul")
    page = text(admin_browser.get(f"/contacts/{org.id}"))
    assert 'id="add-member"' in page
    assert f'id="new-member" href="/contacts/new?kind=person&organization_id={org.id}"' in page
    # The person typed by name, with a role.
    response = admin_browser.post(
        f"/contacts/{org.id}/members", {"person": "paul lefort", "role": "technical"}
    )
    assert response.status_code == 302, text(response)
    linked = get_contact(paul.id)
    assert (linked.organization_id, linked.role) == (org.id, "technical")
    page = text(admin_browser.get(f"/contacts/{org.id}"))
    assert "Paul Lefort" in page and f'id="remove-member-{paul.id}"' in page
    history = [
        (e["field"], e["new"]) for e in admin_browser.get(f"/api/v1/contacts/{paul.id}/history").get_json()
    ]
    assert ("organization_id", org.id) in history
    # Nobody by that name: the error is beside the field and nothing changes.
    missing = admin_browser.post(f"/contacts/{org.id}/members", {"person": "Nobody Here"})
    assert missing.status_code == 422
    assert 'id="member-person-error"' in text(missing)
    # Removing.
    assert admin_browser.post(f"/contacts/{org.id}/members/{paul.id}/remove").status_code == 302
    unlinked = get_contact(paul.id)
    assert (unlinked.organization_id, unlinked.role) == (None, None)
    assert admin_browser.post(f"/contacts/{org.id}/members/{paul.id}/remove").status_code == 404
    # "New person in this organization" starts the form in it.
    form = text(admin_browser.get(f"/contacts/new?kind=person&organization_id={org.id}"))
    assert f'name="organization_id" value="{org.id}"' in form and 'value="Garage Durand"' in form


def test_linking_needs_write_access_to_the_person(app, admin_browser, user_browser, make_contact):
    from crmcore.services.contacts import get_contact

    org = make_contact(name="Open Org", kind="organization", visibility="public_write")
    private = make_contact(admin_browser.user, last_name="Secret", visibility="public_read")
    response = user_browser.post(
        f"/contacts/{org.id}/members", {"person": "Secret", "person_id": str(private.id)}
    )
    assert response.status_code in (403, 404, 422)
    assert get_contact(private.id).organization_id is None
