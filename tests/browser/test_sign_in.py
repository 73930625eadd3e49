"""Signing in and out through the real pages."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_sign_in_page_then_signed_in_and_out(page, admin, login, screenshot):
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=/account"))
    expect(page.locator("input[name=email]")).to_be_focused()
    screenshot(page, "login")

    login(page, admin, next_path="/account")
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")
    sign_out = page.locator("form[action$='/logout'] button")
    expect(sign_out).to_be_visible()
    sign_out.click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login"))


def test_wrong_password_is_refused(page, member):
    page.goto("/login")
    page.locator("input[name=email]").fill(member.email)
    page.locator("input[name=password]").fill("not the password")
    page.locator("form:has(input[name=password]) button[type=submit]").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    expect(page).to_have_url(re.compile(r"/login"))
