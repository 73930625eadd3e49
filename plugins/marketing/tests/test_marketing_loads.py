"""crm-marketing is a real installed distribution that crmcore discovers and loads."""

import json

from crmcore.cli import main


def test_marketing_is_discovered_and_loaded(crm_app_factory):
    app = crm_app_factory(PLUGINS=["marketing"])
    report = {
        item["name"]: item
        for item in json.loads(app.test_cli_runner().invoke(main, ["plugins", "--json"]).output)
    }
    assert report["marketing"]["status"] == "loaded", report["marketing"]
    assert report["marketing"]["distribution"] == "crm-marketing"
    assert report["marketing"]["version"] == "0.1.0"


def test_marketing_can_be_disabled(crm_app_factory):
    app = crm_app_factory(PLUGINS=[])
    with app.app_context():
        record = app.extensions["crm"].host.records["marketing"]
    assert record.status == "disabled"
