"""crm-accounting is a real installed distribution that crmcore discovers and loads."""

import json

from crmcore.cli import main


def test_accounting_is_discovered_and_loaded(crm_app_factory):
    app = crm_app_factory(PLUGINS=["accounting"])
    report = {
        item["name"]: item
        for item in json.loads(app.test_cli_runner().invoke(main, ["plugins", "--json"]).output)
    }
    assert report["accounting"]["status"] == "loaded", report["accounting"]
    assert report["accounting"]["distribution"] == "crm-accounting"
    assert report["accounting"]["version"] == "0.1.0"


def test_accounting_can_be_disabled(crm_app_factory):
    app = crm_app_factory(PLUGINS=[])
    with app.app_context():
        record = app.extensions["crm"].host.records["accounting"]
    assert record.status == "disabled"
