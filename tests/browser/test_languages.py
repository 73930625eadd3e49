"""French and English: the browser's language first, then the switch in the header (remembered)."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LANGUAGE_SWITCH = "header form[action*='/language/'] button"


def _label_for(page, input_id: str):
    return page.locator(f"label[for='{input_id}']")


@pytest.mark.browser_locale("fr-FR")
def test_a_french_browser_gets_french_pages(page, admin, login, make_contact):
    contact = make_contact(first_name="Hélène", last_name="Roux")
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
    expect(page.locator("form:has(input[name=password])")).to_contain_text("Mot de passe")
    expect(page.locator(LANGUAGE_SWITCH)).to_have_text("English")

    login(page, admin)
    page.goto("/contacts?view=list")
    expect(_label_for(page, "q")).to_have_text("Rechercher")
    expect(_label_for(page, "filter-status")).to_have_text("Statut")
    expect(page.locator("#view-cards")).to_have_text("Cartes")
    expect(page.locator("#view-list")).to_have_text("Liste")
    expect(page.locator("#mass-apply")).to_have_text("Appliquer")
    expect(page.locator("header")).to_contain_text("Se déconnecter")

    page.goto("/contacts/new?kind=person")
    expect(_label_for(page, "first_name")).to_have_text("Prénom")
    expect(page.locator("#add-phone")).to_contain_text("Ajouter un téléphone")
    expect(page.locator("#save")).to_have_text("Enregistrer")

    page.goto(f"/contacts/{contact.id}")
    expect(page.locator("#tab-details")).to_have_text("Détails")
    expect(page.locator("#tab-history")).to_contain_text("Historique")


def test_the_header_switch_changes_the_language(page, admin, login, screenshot):
    login(page, admin)
    page.goto("/contacts")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(_label_for(page, "q")).to_have_text("Search")
    expect(page.locator("#view-cards")).to_have_text("Cards")
    switch = page.locator(LANGUAGE_SWITCH)
    expect(switch).to_have_text("Français")

    switch.click()
    expect(page).to_have_url(re.compile(r"/contacts"))  # back on the same page
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(_label_for(page, "q")).to_have_text("Rechercher")
    expect(page.locator("#view-cards")).to_have_text("Cartes")
    expect(switch).to_have_text("English")
    screenshot(page, "contact-list-fr")

    page.goto("/contacts/new?kind=person")  # the choice holds on the other pages
    expect(_label_for(page, "first_name")).to_have_text("Prénom")
    page.locator(LANGUAGE_SWITCH).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(_label_for(page, "first_name")).to_have_text("First name")
    expect(page.locator("#save")).to_have_text("Save")


def test_the_chosen_language_follows_the_user_to_a_new_session(page, admin, login):
    login(page, admin)
    page.goto("/contacts")
    page.locator(LANGUAGE_SWITCH).click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.context.clear_cookies()  # another day, another browser session (still an English browser)
    login(page, admin)
    page.goto("/contacts/new?kind=person")
    expect(page.locator("html")).to_have_attribute("lang", "fr", timeout=2000)
