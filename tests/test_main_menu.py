"""The main menu: plugins add entries with ``register_menu_items`` (``MenuItem``), collected and checked
once per application, shown in the page header in the user's language, admin-only ones hidden from other
users, the current page's entry highlighted; a raising implementation or a bad endpoint is an incident
and the pages still render."""

from __future__ import annotations

import json
import re
import uuid
from html import unescape
from typing import Any

import pytest
from flask import Blueprint, render_template_string

from crmcore.cli import main
from crmcore.contributions import ContributionError
from crmcore.plugin_api import MenuItem, hookimpl

PAGE = '{% extends "base.html" %}{% block content %}<p>{{ text }}</p>{% endblock %}'
quotes_bp = Blueprint("crm_quotes", __name__, url_prefix="/plugins/quotes")


@quotes_bp.route("/")
def quotes() -> str:
    return render_template_string(PAGE, text="quotes")


@quotes_bp.route("/<int:quote_id>")
def quote(quote_id: int) -> str:
    return render_template_string(PAGE, text=f"quote {quote_id}")


class Quotes:
    @hookimpl
    def register_blueprints(self):
        return [quotes_bp]

    @hookimpl
    def register_menu_items(self):
        return [
            MenuItem(
                key="quotes",
                label={"en": "Quotes", "fr": "Devis"},
                endpoint="crm_quotes.quotes",
                section="commercial",
                order=10,
            ),
            MenuItem(key="pipeline", label={"en": "Pipeline", "fr": "Tunnel"}, url="/contacts", order=5),
            MenuItem(
                key="quote_settings",
                label={"en": "Quote settings", "fr": "Réglages des devis"},
                url="/plugins/quotes/settings",
                section="commercial",
                order=90,
                admin_only=True,
            ),
        ]


class Raising:
    @hookimpl
    def register_menu_items(self):
        raise RuntimeError("menu service is down")


class BadEndpoint:
    @hookimpl
    def register_menu_items(self):
        return [
            MenuItem(key="nowhere", label="Nowhere", endpoint="crm_nowhere.index"),
            MenuItem(key="needs_args", label="Needs args", endpoint="contact_pages.show"),
            MenuItem(key="contacts", label="Mine", url="/contacts"),  # the core's key
            MenuItem(key="fine", label="Fine", url="/contacts/duplicates"),
        ]


class WrongType:
    @hookimpl
    def register_menu_items(self):
        return [{"key": "loose", "label": "A dict"}]


def _client(application: Any, is_admin: bool = True, language: str = "en") -> Any:
    from crmcore.services.users import create_token, create_user

    with application.app_context():
        user = create_user(f"u-{uuid.uuid4().hex[:8]}@example.com", None, is_admin=is_admin)
        _row, token = create_token(user.id, "menu tests")
    test_client = application.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    test_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    return test_client


def _header(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    html = response.get_data(as_text=True)
    return unescape(html.split("<header", 1)[1].split("</header>", 1)[0])


def _link(header: str, key: str) -> re.Match[str] | None:
    return re.search(rf'<a id="nav-{key}" href="([^"]+)" data-plugin="([^"]+)"([^>]*)>([^<]+)</a>', header)


def _report(application: Any) -> dict[str, dict[str, Any]]:
    with application.app_context():
        result = application.test_cli_runner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    return {item["name"]: item for item in json.loads(result.output)}


def test_entries_appear_in_the_header_in_english_and_french(register_plugin: Any) -> None:
    application = register_plugin(Quotes(), "quotes")
    english = _header(_client(application, language="en").get("/contacts"))
    quotes = _link(english, "quotes")
    assert quotes and quotes.group(1) == "/plugins/quotes/" and quotes.group(2) == "quotes"
    assert quotes.group(4) == "Quotes"
    assert 'id="nav-section-commercial"' in english and "<summary>Sales</summary>" in english
    assert _link(english, "pipeline").group(4) == "Pipeline"
    # Order: the top-level pipeline (5) before the commercial section (its first item: 10).
    assert english.index('id="nav-pipeline"') < english.index('id="nav-section-commercial"')
    assert english.index('id="nav-quotes"') < english.index('id="nav-quote_settings"')

    french = _header(_client(application, language="fr").get("/contacts"))
    assert _link(french, "quotes").group(4) == "Devis"
    assert _link(french, "quotes").group(1) == "/plugins/quotes/"
    assert _link(french, "pipeline").group(4) == "Tunnel"
    assert "<summary>Commercial</summary>" in french
    assert _link(french, "quote_settings").group(4) == "Réglages des devis"


def test_the_current_page_is_highlighted(register_plugin: Any) -> None:
    application = register_plugin(Quotes(), "quotes")
    test_client = _client(application)
    on_quotes = _header(test_client.get("/plugins/quotes/"))
    assert 'aria-current="page"' in _link(on_quotes, "quotes").group(3)
    assert 'class="nav-section active"' in on_quotes
    assert "aria-current" not in _link(on_quotes, "pipeline").group(3)
    # A page under the entry's path counts too.
    assert 'aria-current="page"' in _link(_header(test_client.get("/plugins/quotes/7")), "quotes").group(3)
    on_contacts = _header(test_client.get("/contacts"))
    assert "aria-current" not in _link(on_contacts, "quotes").group(3)
    assert 'class="nav-section"' in on_contacts
    assert 'aria-current="page"' in _link(on_contacts, "pipeline").group(3)


def test_admin_only_entries_are_hidden_from_other_users(register_plugin: Any) -> None:
    application = register_plugin(Quotes(), "quotes")
    admin = _header(_client(application, is_admin=True).get("/contacts"))
    assert _link(admin, "quote_settings") and 'id="nav-admin"' in admin
    member = _header(_client(application, is_admin=False).get("/contacts"))
    assert _link(member, "quotes") and not _link(member, "quote_settings")
    assert 'id="nav-admin"' not in member
    # Nobody signed in: no menu at all (the sign-in page).
    login = application.test_client().get("/login").get_data(as_text=True)
    assert 'id="nav-quotes"' not in login


def test_a_raising_implementation_is_an_incident_and_the_page_still_renders(register_plugin: Any) -> None:
    application = register_plugin(Raising(), "flakymenu")
    header = _header(_client(application).get("/contacts"))
    assert 'id="nav-contacts"' in header and 'id="nav-admin"' in header
    report = _report(application)["flakymenu"]
    assert report["status"] == "loaded"
    assert [(i["hook"], i["error"]) for i in report["incidents"]] == [
        ("register_menu_items", "RuntimeError: menu service is down")
    ]


def test_bad_endpoints_and_taken_keys_are_incidents_naming_the_plugin(register_plugin: Any) -> None:
    application = register_plugin(BadEndpoint(), "badmenu")
    header = _header(_client(application).get("/contacts"))
    assert _link(header, "fine").group(1) == "/contacts/duplicates"
    assert 'id="nav-nowhere"' not in header and 'id="nav-needs_args"' not in header
    assert header.count('id="nav-contacts"') == 1
    errors = [i["error"] for i in _report(application)["badmenu"]["incidents"]]
    assert any("unknown endpoint 'crm_nowhere.index'" in e and "nowhere" in e for e in errors), errors
    assert any("'contact_pages.show' needs arguments" in e for e in errors), errors
    assert any("'contacts': the key is already taken" in e for e in errors), errors
    assert len(errors) == 3


def test_a_wrong_contribution_type_is_an_incident(register_plugin: Any) -> None:
    application = register_plugin(WrongType(), "loosemenu")
    assert _client(application).get("/contacts").status_code == 200
    errors = [i["error"] for i in _report(application)["loosemenu"]["incidents"]]
    assert errors == ["TypeError: returned dict, expected MenuItem"]


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"key": "Bad Key", "label": "x", "url": "/x"}, "lowercase"),
        ({"key": "x", "label": "", "url": "/x"}, "non-empty label"),
        ({"key": "x", "label": "x"}, "either an endpoint or a url"),
        ({"key": "x", "label": "x", "url": "/x", "endpoint": "a.b"}, "either an endpoint or a url"),
        ({"key": "x", "label": "x", "url": "javascript:alert(1)"}, "must start with"),
        ({"key": "x", "label": "x", "url": "//evil.example"}, "must start with"),
        ({"key": "x", "label": "x", "url": "/x", "section": "Sales Dept"}, "lowercase"),
        ({"key": "x", "label": "x", "url": "/x", "admin_only": "yes"}, "admin_only"),
        ({"key": "x", "label": "x", "url": "/x", "order": "1"}, "order"),
    ],
)
def test_menu_items_check_themselves(kwargs: dict[str, Any], why: str) -> None:
    with pytest.raises(ContributionError, match=why):
        MenuItem(**kwargs)


def test_the_builtin_message_templates_entry(app: Any, client: Any, api_client: Any, make_user: Any) -> None:
    header = _header(client.get("/contacts"))
    entry = _link(header, "message_templates")
    assert entry and entry.group(1) == "/admin/message-templates" and entry.group(2) == "messages"
    assert 'id="nav-section-communication"' in header
    assert client.get(entry.group(1)).status_code == 200  # a real page, not a dead link
    member = api_client(make_user(email="plain@example.com"))
    assert not _link(_header(member.get("/contacts")), "message_templates")
