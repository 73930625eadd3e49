"""Check duplicates and merge them in a real browser: the list's button, the pair, the merge screen (a new
original moves the untouched choices to its values, a hand-picked one stays), the result and its undo.

Element ids are the ones docs/ui.md lists: ``#check-duplicates``, ``#merge-<a>-<b>``, ``#original-<id>``,
``#choose-<field>-<id>``, ``#merge-submit``, ``#merge-original``, ``#undo-merge``.
"""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_check_merge_and_undo(page, admin, login, screenshot, make_contact):
    from crmcore.extensions import db
    from crmcore.models import Contact

    a = make_contact(
        first_name="Jean",
        last_name="Dupont",
        job_title="Buyer",
        emails=[{"address": "jean.dupont@acme.example"}],
        addresses=[{"kind": "main", "street": "1 rue A", "postal_code": "75001", "city": "Paris"}],
    )
    b = make_contact(
        first_name="Jean",
        last_name="Dupond",
        job_title="Head buyer",
        department="Purchasing",
        emails=[{"address": "jean.dupont@acme.example"}, {"address": "jd@home.example"}],
    )
    db.session.commit()
    page.on("dialog", lambda dialog: dialog.accept())

    login(page, admin, next_path="/contacts")
    page.locator("#check-duplicates").click()
    expect(page).to_have_url(re.compile(r"/contacts/duplicates$"))
    pair = page.locator(f'[data-testid=duplicate-pair][data-pair="{a.id}-{b.id}"]')
    expect(pair).to_contain_text("same email jean.dupont@acme.example")
    expect(pair).to_contain_text("Dupond")
    screenshot(page, "duplicates-list")

    page.locator(f"#merge-{a.id}-{b.id}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Merge duplicates")
    expect(page.locator(f"#original-{a.id}")).to_be_checked()
    expect(page.locator(f"#choose-job-title-{a.id}")).to_be_checked()
    expect(page.locator(f"#choose-last-name-{a.id}")).to_be_checked()
    expect(page.locator(f"#choose-department-{b.id}")).to_be_checked()  # the only value
    expect(page.locator("#merge-refresh")).to_have_count(0)  # the script recomputes the choices itself
    # Pick Dupond's job title by hand; another original moves the other choices, not that one.
    page.locator(f"#choose-job-title-{b.id}").check()
    page.locator(f"#original-{b.id}").check()
    expect(page.locator(f"#choose-last-name-{b.id}")).to_be_checked()  # followed the new original
    page.locator(f"#original-{a.id}").check()
    expect(page.locator(f"#choose-last-name-{a.id}")).to_be_checked()
    expect(page.locator(f"#choose-job-title-{b.id}")).to_be_checked()  # chosen by hand: kept
    screenshot(page, "merge-screen")

    page.locator("#merge-submit").click()
    expect(page.locator(".flash-success")).to_contain_text("1 contact merged into Jean Dupont.")
    expect(page.locator("#merge-original")).to_have_attribute("href", f"/contacts/{a.id}")
    screenshot(page, "merge-done")
    db.session.remove()
    kept = db.session.get(Contact, a.id)
    assert (kept.last_name, kept.job_title, kept.department) == ("Dupont", "Head buyer", "Purchasing")
    assert db.session.get(Contact, b.id).merged_into_id == a.id

    page.locator("#undo-merge").click()
    expect(page.locator(".flash-success")).to_contain_text("Merge undone: 1 contact is back (Jean Dupond).")
    expect(page.locator("#undo-merge")).to_have_count(0)
    db.session.remove()
    assert db.session.get(Contact, b.id).merged_into_id is None
    assert db.session.get(Contact, a.id).job_title == "Buyer"


@pytest.mark.browser_locale("fr-FR")
def test_in_french(page, member, login, make_contact):
    for _ in range(2):
        make_contact(first_name="Zoé", last_name="Lefèvre", visibility="public_write",
                     emails=[{"address": "zoe@lefevre.example"}])  # fmt: skip
    login(page, member, next_path="/contacts")
    page.locator("#check-duplicates").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vérifier les doublons")
    expect(page.locator("[data-testid=duplicate-pair]")).to_contain_text("même email zoe@lefevre.example")
    page.locator("[data-testid=duplicate-pair] a.button.primary").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Fusionner les doublons")
    expect(page.locator("#merge-combined-note")).to_contain_text("Combinés automatiquement")
