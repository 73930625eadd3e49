"""The plugin host with in-memory plugin objects (``register_plugin``): contributions reach the API,
a failing UI contribution is isolated and reported, a failing data hook rolls the change back,
loading problems are reported (or fatal with ``CRM_STRICT_PLUGINS``), built-ins can be switched
off unless essential, and plugin commands join ``crm`` without taking a core command's name."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import click
import pytest
from sqlalchemy import func, select

from crmcore.cli import main
from crmcore.errors import PluginError
from crmcore.plugin_api import Action, Channel, FieldDef, Problem, SendResult, Tab, hookimpl


def client_for(application: Any) -> Any:
    """A test client of ``application``, signed in as a new admin through an API token."""
    from crmcore.services.users import create_token, create_user

    with application.app_context():
        admin = create_user(f"admin-{uuid.uuid4().hex[:8]}@example.com", None, is_admin=True)
        _row, token = create_token(admin.id, "plugin host tests")
    test_client = application.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return test_client


def _create(test_client: Any, **fields: Any) -> dict[str, Any]:
    response = test_client.post("/api/v1/contacts", json={"last_name": "Martin", **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _count(application: Any, model: Any) -> int:
    from crmcore.extensions import db

    with application.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _report(application: Any) -> dict[str, dict[str, Any]]:
    # Core commands run in the current app context: make it this application's, not the ``app`` fixture's.
    with application.app_context():
        result = application.test_cli_runner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    return {item["name"]: item for item in json.loads(result.output)}


def _send(message: Any) -> SendResult:
    return SendResult(provider_id="x-1")


class Contributor:
    """One of each UI contribution and definition."""

    @hookimpl
    def contact_tabs(self, contact):
        return [
            Tab(
                key="invoices",
                label={"en": "Invoices", "fr": "Factures"},
                render=lambda c: f"<p>invoices of {c.id}</p>",
                order=10,
                count=2,
            )
        ]

    @hookimpl
    def contact_actions(self, contact, user):
        return [
            Action(key="send_invoice", label="Send invoice", url=f"/x/{contact.id}", method="POST", order=5)
        ]

    @hookimpl
    def register_custom_fields(self):
        return [FieldDef(key="vat_number", label={"en": "VAT number", "fr": "N° TVA"}, max_length=20)]

    @hookimpl
    def register_channels(self):
        return [
            Channel(key="pager", label="Pager", target="phone", consent="calls", send=_send, max_length=80)
        ]


def test_contributions_reach_the_api(register_plugin: Any):
    application = register_plugin(Contributor(), "billing")
    test_client = client_for(application)
    contact = _create(test_client, custom={"vat_number": "FR123"})
    assert contact["custom"] == {"vat_number": "FR123"}

    tabs = test_client.get(f"/api/v1/contacts/{contact['id']}/tabs?lang=fr").get_json()
    invoices = next(t for t in tabs if t["key"] == "invoices")
    assert invoices == {
        "key": "invoices",
        "label": "Factures",
        "plugin": "billing",
        "order": 10,
        "count": 2,
        "html": f"<p>invoices of {contact['id']}</p>",
        "error": None,
    }
    assert [t["order"] for t in tabs] == sorted(t["order"] for t in tabs)
    assert {"notes", "history"} <= {t["key"] for t in tabs}  # the built-ins' tabs are there too

    actions = test_client.get(f"/api/v1/contacts/{contact['id']}/actions").get_json()
    action = next(a for a in actions if a["key"] == "send_invoice")
    assert action["plugin"] == "billing"
    assert action["url"] == f"/x/{contact['id']}"
    assert action["method"] == "POST"

    field = test_client.get("/api/v1/custom-fields/vat_number").get_json()
    assert field["source"] == "billing"
    too_long = test_client.post(
        "/api/v1/contacts", json={"last_name": "M", "custom": {"vat_number": "9" * 21}}
    )
    assert too_long.status_code == 422
    assert "custom.vat_number" in too_long.get_json()["errors"]

    channels = test_client.get("/api/v1/plugins/channels").get_json()
    assert next(c for c in channels if c["key"] == "pager") == {
        "key": "pager",
        "label": "Pager",
        "target": "phone",
        "consent": "calls",
        "has_subject": False,
        "max_length": 80,
    }

    record = _report(application)["billing"]
    assert record["status"] == "loaded"
    assert record["hooks"] == [
        "contact_actions",
        "contact_tabs",
        "register_channels",
        "register_custom_fields",
    ]


class RaisingTabs:
    @hookimpl
    def contact_tabs(self, contact):
        raise RuntimeError("tab service is down")


def test_a_raising_tab_hook_is_skipped_logged_and_recorded(
    register_plugin: Any, caplog: pytest.LogCaptureFixture
):
    from crmcore.models import PluginIncident

    application = register_plugin(RaisingTabs(), "flaky")
    test_client = client_for(application)
    contact = _create(test_client)

    with caplog.at_level(logging.ERROR, logger="crmcore.plugins"):
        response = test_client.get(f"/api/v1/contacts/{contact['id']}/tabs")
    assert response.status_code == 200
    keys = [t["key"] for t in response.get_json()]
    assert "notes" in keys and "history" in keys  # the other plugins' tabs still render
    assert any(
        "flaky" in r.getMessage()
        and "contact_tabs" in r.getMessage()
        and "tab service is down" in r.getMessage()
        for r in caplog.records
    )

    # Persisted, so any process (and the admin) sees it.
    assert _count(application, PluginIncident) == 1
    incidents = _report(application)["flaky"]["incidents"]
    assert [(i["hook"], i["error"]) for i in incidents] == [
        ("contact_tabs", "RuntimeError: tab service is down")
    ]
    api_report = {p["name"]: p for p in test_client.get("/api/v1/plugins").get_json()}
    assert api_report["flaky"]["status"] == "loaded"  # an incident does not unload the plugin
    assert [i["error"] for i in api_report["flaky"]["incidents"]] == ["RuntimeError: tab service is down"]


def _broken_render(contact: Any) -> str:
    raise ValueError("template missing")


class TwoTabs:
    @hookimpl
    def contact_tabs(self, contact):
        return [
            Tab(key="broken_tab", label="Broken", render=_broken_render, order=1),
            Tab(key="fine_tab", label="Fine", render=lambda c: "<b>fine</b>", order=2),
        ]


def test_a_tab_whose_render_raises_shows_an_error_box(register_plugin: Any):
    application = register_plugin(TwoTabs(), "twotabs")
    test_client = client_for(application)
    contact = _create(test_client)

    tabs = {t["key"]: t for t in test_client.get(f"/api/v1/contacts/{contact['id']}/tabs").get_json()}
    broken = tabs["broken_tab"]
    assert broken["error"] == "The twotabs plugin could not show this tab."
    assert 'class="plugin-error"' in broken["html"]
    assert "template missing" not in broken["html"]  # details go to the log and the incident, not the page
    assert tabs["fine_tab"]["html"] == "<b>fine</b>" and tabs["fine_tab"]["error"] is None
    assert tabs["notes"]["error"] is None and tabs["history"]["error"] is None
    incidents = _report(application)["twotabs"]["incidents"]
    assert [(i["hook"], i["error"]) for i in incidents] == [
        ("contact_tabs.render", "ValueError: template missing")
    ]


class WrongTypes:
    @hookimpl
    def contact_tabs(self, contact):
        return [
            {"key": "loose", "label": "A dict is not a Tab"},
            Action(key="misplaced", label="An action is not a tab", url="/x"),
            Tab(key="typed", label="Typed", render=lambda c: "ok"),
        ]

    @hookimpl
    def register_custom_fields(self):
        return {"key": "loose_field"}


def test_a_contribution_of_the_wrong_type_is_skipped(register_plugin: Any):
    application = register_plugin(WrongTypes(), "sloppy")
    test_client = client_for(application)
    contact = _create(test_client)

    keys = [t["key"] for t in test_client.get(f"/api/v1/contacts/{contact['id']}/tabs").get_json()]
    assert "typed" in keys
    assert "loose" not in keys and "misplaced" not in keys
    assert "loose_field" not in {f["key"] for f in test_client.get("/api/v1/custom-fields").get_json()}
    host = application.extensions["crm"].host
    errors = [(i["hook"], i["error"]) for i in host.records["sloppy"].incidents]
    assert errors == [
        ("register_custom_fields", "TypeError: returned dict, expected FieldDef"),
        ("contact_tabs", "TypeError: returned dict, expected Tab"),
        ("contact_tabs", "TypeError: returned Action, expected Tab"),
    ]
    reported = [(i["hook"], i["error"]) for i in _report(application)["sloppy"]["incidents"]]
    assert ("contact_tabs", "TypeError: returned Action, expected Tab") in reported


def test_startup_incidents_stay_in_the_report_after_a_run_time_incident(register_plugin: Any):
    application = register_plugin(WrongTypes(), "sloppy")
    test_client = client_for(application)
    contact = _create(test_client)
    test_client.get(f"/api/v1/contacts/{contact['id']}/tabs")  # a run-time incident, persisted
    reported = [(i["hook"], i["error"]) for i in _report(application)["sloppy"]["incidents"]]
    assert ("register_custom_fields", "TypeError: returned dict, expected FieldDef") in reported


class Misspelled:
    @hookimpl
    def contact_tab(self, contact):  # the spec says contact_tabs
        return []

    @hookimpl
    def contact_tabs(self, contact):
        return [Tab(key="never", label="Never shown", render=lambda c: "")]


def test_an_unknown_hook_name_marks_the_plugin_failed(register_plugin: Any):
    application = register_plugin(Misspelled(), "typo")
    record = _report(application)["typo"]
    assert record["status"] == "failed"
    assert record["error"] == "implements unknown hooks: contact_tab"
    # The plugin is not half-registered: none of its hooks run.
    test_client = client_for(application)
    contact = _create(test_client)
    keys = [t["key"] for t in test_client.get(f"/api/v1/contacts/{contact['id']}/tabs").get_json()]
    assert "never" not in keys


class Validator:
    @hookimpl
    def contact_validate(self, data, contact):
        problems = []
        if data.get("first_name") == "Bob":
            problems.append(Problem("Bob is not allowed here", field="first_name"))
        if data.get("last_name") == "Nobody":
            problems.append(Problem("this record is refused"))
        return problems


def test_contact_validate_problems_give_422_naming_the_field(register_plugin: Any):
    from crmcore.models import Contact

    application = register_plugin(Validator(), "rules")
    test_client = client_for(application)

    response = test_client.post("/api/v1/contacts", json={"first_name": "Bob", "last_name": "Nobody"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "first_name": ["Bob is not allowed here"],
        "_record": ["this record is refused"],
    }
    assert _count(application, Contact) == 0

    contact = _create(test_client, first_name="Alice")
    response = test_client.patch(f"/api/v1/contacts/{contact['id']}", json={"first_name": "Bob"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"first_name": ["Bob is not allowed here"]}
    assert test_client.get(f"/api/v1/contacts/{contact['id']}").get_json()["first_name"] == "Alice"


class RaisingEvents:
    @hookimpl
    def contact_created(self, contact):
        if contact.last_name == "Doomed":
            raise RuntimeError("crm sync failed")

    @hookimpl
    def contact_updated(self, contact, changes):
        if "first_name" in changes:
            raise RuntimeError("crm sync failed")


def test_a_raising_event_hook_rolls_the_change_back(register_plugin: Any):
    from crmcore.models import Contact, HistoryEntry
    from crmcore.services.contacts import create_contact

    application = register_plugin(RaisingEvents(), "sync")
    with application.app_context(), pytest.raises(RuntimeError, match="crm sync failed"):
        create_contact({"kind": "person", "last_name": "Doomed"}, None, "api")
    assert _count(application, Contact) == 0
    assert _count(application, HistoryEntry) == 0

    # Through the API the caller gets a JSON 500 and, again, nothing is stored.
    application.config["PROPAGATE_EXCEPTIONS"] = False
    test_client = client_for(application)
    response = test_client.post("/api/v1/contacts", json={"last_name": "Doomed"})
    assert response.status_code == 500
    assert response.get_json()["code"] == 500
    assert _count(application, Contact) == 0

    contact = _create(test_client, first_name="Ann")
    history_before = _count(application, HistoryEntry)
    response = test_client.patch(f"/api/v1/contacts/{contact['id']}", json={"first_name": "Anne"})
    assert response.status_code == 500
    stored = test_client.get(f"/api/v1/contacts/{contact['id']}").get_json()
    assert stored["first_name"] == "Ann"
    assert stored["version"] == contact["version"]
    assert _count(application, HistoryEntry) == history_before


def test_strict_plugins_makes_a_failing_plugin_fatal(register_plugin: Any, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRM_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin typo: implements unknown hooks: contact_tab"):
        register_plugin(Misspelled(), "typo")


def test_strict_plugins_makes_a_missing_plugin_fatal(crm_app_factory: Any, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRM_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin invoices: enabled in CRM_PLUGINS but not installed"):
        crm_app_factory(PLUGINS=["invoices"])


def test_a_plugin_enabled_but_not_installed_is_reported_failed(crm_app_factory: Any):
    application = crm_app_factory(PLUGINS=["sms", "invoices"])
    report = _report(application)
    assert report["invoices"]["status"] == "failed"
    assert report["invoices"]["error"] == "enabled in CRM_PLUGINS but not installed"
    assert report["sms"]["status"] == "loaded"
    assert report["geolocation"]["status"] == "disabled"  # installed, not listed


def test_builtins_can_be_disabled_unless_essential(crm_app_factory: Any):
    application = crm_app_factory(DISABLED_BUILTINS=["notes", "history"])
    report = _report(application)
    assert report["notes"]["status"] == "disabled" and report["notes"]["builtin"] is True
    assert report["history"]["status"] == "loaded"  # essential: listing it changes nothing
    test_client = client_for(application)
    contact = _create(test_client)
    keys = [t["key"] for t in test_client.get(f"/api/v1/contacts/{contact['id']}/tabs").get_json()]
    assert "notes" not in keys and "history" in keys


@click.command("hello-plugin", help="Say hello from a plugin.")
@click.argument("name")
def hello_command(name: str) -> None:
    from flask import current_app

    click.echo(f"hello {name} from {current_app.name}")


@click.command("db", help="A plugin trying to take the core's db command.")
def db_clash() -> None:
    click.echo("plugin db")


class Commands:
    @hookimpl
    def register_commands(self):
        return [hello_command, db_clash]


def test_plugin_commands_join_crm_but_cannot_take_a_core_name(register_plugin: Any):
    application = register_plugin(Commands(), "tools")
    cli = application.test_cli_runner()

    listing = cli.invoke(main, ["--help"])
    assert "hello-plugin" in listing.output
    result = cli.invoke(main, ["hello-plugin", "Ada"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello Ada from crmcore\n"  # runs inside the application context

    db_help = cli.invoke(main, ["db", "--help"])
    assert "upgrade" in db_help.output and "plugin db" not in db_help.output  # still the core's db
    incidents = _report(application)["tools"]["incidents"]
    assert [(i["hook"], i["error"]) for i in incidents] == [
        ("register_commands", "ValueError: command name 'db' is already taken")
    ]
