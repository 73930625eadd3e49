"""Administration pages: the plugin report, and that they are for administrators only."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_admin_sees_every_plugin_and_its_status(page, admin, login, screenshot):
    login(page, admin)
    page.locator("#nav-admin").click()
    page.locator("#admin-nav-plugins").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Plugins")
    expect(page.locator("#admin-nav-plugins")).to_have_attribute("aria-current", "page")
    rows = page.locator("#plugins-table [data-testid=plugin-row]")
    for name in ("history", "notes", "sms", "geolocation", "marketing", "accounting"):
        row = rows.and_(page.locator(f"[data-plugin={name}]"))
        expect(row).to_have_count(1)
        expect(row).to_contain_text("loaded")
    expect(rows.and_(page.locator("[data-plugin=history]"))).to_contain_text("contact_tabs")
    screenshot(page, "admin-plugins")


def test_a_normal_user_has_no_administration(page, member, login):
    login(page, member)
    page.goto("/contacts")
    expect(page.locator("#nav-contacts")).to_be_visible()
    expect(page.locator("#nav-admin")).to_have_count(0)
    for path in ("/admin", "/admin/plugins", "/admin/users"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
