"""The contact pages in a real browser: form, contact page and history tab, list and cards, mass actions.

Element ids are the ones the templates document (docs/ui.md): ``#contact-form``, ``#phones-0-number``,
``#tab-history``, ``#view-cards``, ``#mass-action`` ...
"""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _contact_id(page) -> int:
    match = re.search(r"/contacts/(\d+)(?:[?#].*)?$", page.url)
    assert match, f"not on a contact page: {page.url}"
    return int(match.group(1))


def test_create_a_person_with_two_phones_and_an_address(page, admin, login, screenshot):
    from crmcore.extensions import db
    from crmcore.services.contacts import get_contact

    login(page, admin, next_path="/contacts")
    page.locator("#new-person").click()
    expect(page).to_have_url(re.compile(r"/contacts/new\?kind=person"))
    expect(page.locator("#kind-person")).to_be_checked()
    page.locator("#first_name").fill("Camille")
    page.locator("#last_name").fill("Moreau")

    page.locator("#add-phone").click()
    page.locator("#phones-0-number").fill("06 12 34 56 78")
    page.locator("#add-phone").click()
    page.locator("#phones-1-number").fill("+41 44 668 18 00")
    page.locator("#phones-1-type").select_option(index=1)
    second_type = page.locator("#phones-1-type").input_value()

    page.locator("#add-address").click()
    page.locator("#addresses-0-street").fill("12 rue de la Paix")
    page.locator("#addresses-0-postal_code").fill("75002")
    page.locator("#addresses-0-city").fill("Paris")
    page.locator("#addresses-0-country").select_option("FR")
    screenshot(page, "contact-form")

    page.locator("#save").click()
    expect(page.locator("#contact-name")).to_have_text(re.compile(r"Camille\s+Moreau"))
    contact_id = _contact_id(page)
    phones = page.locator("#details-phones li")
    expect(phones).to_have_count(2)
    expect(phones.nth(0)).to_contain_text("06 12 34 56 78")
    expect(page.locator("#details-addresses")).to_contain_text("12 rue de la Paix")
    expect(page.locator("#details-addresses")).to_contain_text("75002 Paris")
    screenshot(page, "contact-page")

    db.session.remove()  # read what the server wrote, not a cached object
    contact = get_contact(contact_id, None)
    assert [p.e164 for p in contact.phones] == ["+33612345678", "+41446681800"]
    assert contact.phones[1].type == second_type
    assert [(a.street, a.postal_code, a.city, a.country) for a in contact.addresses] == [
        ("12 rue de la Paix", "75002", "Paris", "FR")
    ]
    assert [u.id for u in contact.owners] == [admin.id]  # the creator is its responsible


def test_the_form_shows_the_fields_of_the_chosen_kind(page, admin, login):
    login(page, admin)
    page.goto("/contacts/new?kind=person")
    expect(page.locator("#last_name")).to_be_visible()
    expect(page.locator("#name")).to_be_hidden()  # the organization name is not asked of a person
    page.locator("#kind-organization").check()
    expect(page.locator("#name")).to_be_visible()
    expect(page.locator("#last_name")).to_be_hidden()
    expect(page.locator("#organization")).to_be_hidden()  # a person's employer
    page.goto("/contacts/new?kind=organization")
    expect(page.locator("#kind-organization")).to_be_checked()
    expect(page.locator("#name")).to_be_visible()
    expect(page.locator("#first_name")).to_be_hidden()


def test_refused_form_keeps_what_was_typed_and_names_the_field(page, admin, login):
    login(page, admin)
    page.goto("/contacts/new?kind=person")
    page.locator("#first_name").fill("Sans")
    page.locator("#add-phone").click()
    page.locator("#phones-0-number").fill("not a number")
    page.locator("#save").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(page.locator("#last_name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#last_name-error")).to_be_visible()
    expect(page.locator("#phones-0-number-error")).to_contain_text("not a number")
    expect(page.locator("#first_name")).to_have_value("Sans")
    expect(page.locator("#phones-0-number")).to_have_value("not a number")


@pytest.mark.parametrize(
    ("locale", "title"),
    [("en-US", "A contact with this name already exists"), ("fr-FR", "Il y a déjà un contact avec ce nom")],
)
def test_duplicate_warning_while_typing_a_name(pages, admin, login, make_contact, locale, title):
    make_contact(first_name="Jeanne", last_name="Dupont")
    page = pages.open(locale)
    login(page, admin)
    page.goto("/contacts/new?kind=person")
    warning = page.locator("#duplicate-warning")
    page.locator("#first_name").fill("Jeanne")
    expect(warning).to_be_hidden()
    page.locator("#last_name").press_sequentially("Dupont")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(title)
    expect(warning.get_by_role("link", name=re.compile("Jeanne Dupont"))).to_be_visible()
    # A name no one has: the warning goes away.
    page.locator("#last_name").fill("Zygomatique")
    expect(warning).to_be_hidden()


def test_edit_then_read_the_history_tab(page, admin, login, make_contact, screenshot):
    contact = make_contact(first_name="Paul", last_name="Martin", job_title="Buyer")
    login(page, admin)
    page.goto(f"/contacts/{contact.id}")
    page.locator("#edit-contact").click()
    expect(page).to_have_url(re.compile(rf"/contacts/{contact.id}/edit$"))
    expect(page.locator("#job_title")).to_have_value("Buyer")
    page.locator("#job_title").fill("Head of purchasing")
    page.locator("#save").click()
    expect(page).to_have_url(re.compile(rf"/contacts/{contact.id}(\?.*)?$"))
    expect(page.get_by_role("status").filter(has_text="saved")).to_be_visible()

    page.locator("#tab-history").click()
    panel = page.locator("#panel-history")
    expect(panel).to_be_visible()
    expect(page.locator("#tab-history")).to_have_attribute("aria-selected", "true")
    change = panel.locator("[data-testid=history-row]").filter(has_text="Head of purchasing")
    expect(change).to_have_count(1)
    expect(change.locator("td.before")).to_have_text("Buyer")
    expect(change.locator("td.after")).to_have_text("Head of purchasing")
    expect(change).to_contain_text("Job title")
    expect(change).to_contain_text("Ada Admin")
    screenshot(page, "contact-history-tab")


def test_switch_between_list_and_cards(page, admin, login, make_contact, screenshot):
    for first, last in [("Alice", "Bernard"), ("Bruno", "Carré"), ("Chloé", "Durand")]:
        make_contact(first_name=first, last_name=last)
    make_contact(kind="organization", name="Acme SARL")
    login(page, admin)
    page.goto("/contacts")
    page.locator("#view-list").click()
    expect(page.locator("#contact-table [data-testid=contact-row]")).to_have_count(4)
    expect(page.locator("#contact-cards")).to_have_count(0)
    expect(page.locator("#view-list")).to_have_attribute("aria-current", "true")
    screenshot(page, "contact-list")

    page.locator("#view-cards").click()
    cards = page.locator("#contact-cards [data-testid=contact-card]")
    expect(cards).to_have_count(4)
    expect(page.locator("#contact-table")).to_have_count(0)
    expect(cards.filter(has_text="Acme SARL")).to_have_count(1)
    screenshot(page, "contact-cards")

    page.goto("/contacts")  # the chosen view is remembered
    expect(page.locator("#contact-cards [data-testid=contact-card]")).to_have_count(4)
    page.locator("#view-list").click()
    expect(page.locator("#contact-table [data-testid=contact-row]")).to_have_count(4)


def test_mass_tag_the_selected_rows(page, admin, login, make_contact):
    from crmcore.extensions import db
    from crmcore.services.contacts import get_contact

    first = make_contact(first_name="Anne", last_name="Aubert")
    second = make_contact(first_name="Benoît", last_name="Blanc")
    third = make_contact(first_name="Céline", last_name="Colin")
    login(page, admin)
    page.goto("/contacts?view=list")
    page.locator(f"#select-{first.id}").check()
    page.locator(f"#select-{third.id}").check()
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    page.locator("#mass-action").select_option("add_tag")
    expect(page.locator("#mass-tag")).to_be_visible()
    page.locator("#mass-tag").fill("salon-2026")
    page.locator("#mass-apply").click()

    expect(page.get_by_role("status").filter(has_text="2 contacts changed")).to_be_visible()
    rows = page.locator("[data-testid=contact-row]")
    expect(rows.filter(has_text="salon-2026")).to_have_count(2)
    expect(page.locator(f"[data-testid=contact-row][data-contact-id='{second.id}']")).not_to_contain_text(
        "salon-2026"
    )
    db.session.remove()
    assert [t.name for t in get_contact(first.id, None).tags] == ["salon-2026"]
    assert [t.name for t in get_contact(third.id, None).tags] == ["salon-2026"]
    assert get_contact(second.id, None).tags == []


def test_a_private_contact_is_invisible_to_another_user(pages, admin, member, login, make_contact):
    secret = make_contact(first_name="Victor", last_name="Secretan", visibility="private", owners=[admin.id])
    shared = make_contact(
        first_name="Victor", last_name="Publicus", visibility="public_read", owners=[admin.id]
    )

    other = pages.open()
    login(other, member, next_path="/contacts")
    other.goto("/contacts?view=list")
    rows = other.locator("[data-testid=contact-row]")
    expect(rows.filter(has_text="Publicus")).to_have_count(1)
    expect(rows.filter(has_text="Secretan")).to_have_count(0)

    other.locator("#q").fill("Victor")
    other.locator("#filter-apply").click()
    expect(other).to_have_url(re.compile(r"[?&]q=Victor"))
    expect(rows.filter(has_text="Publicus")).to_have_count(1)
    expect(rows.filter(has_text="Secretan")).to_have_count(0)
    other.goto("/contacts?q=Secretan")
    expect(other.locator("#no-contacts")).to_be_visible()

    response = other.goto(f"/contacts/{secret.id}")
    assert response is not None and response.status == 404
    response = other.goto(f"/contacts/{secret.id}/edit")
    assert response is not None and response.status == 404
    response = other.goto(f"/contacts/{shared.id}")
    assert response is not None and response.status == 200

    # Its responsible (an admin here) sees it in the list and on its page.
    owner = pages.open()
    login(owner, admin)
    owner.goto("/contacts?view=list&q=Victor")
    expect(owner.locator("[data-testid=contact-row]").filter(has_text="Secretan")).to_have_count(1)
    response = owner.goto(f"/contacts/{secret.id}")
    assert response is not None and response.status == 200
