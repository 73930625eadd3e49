"""crm-sms is a real installed distribution that crmcore discovers and loads."""

import json

from crmcore.cli import main


def test_sms_is_discovered_and_loaded(crm_app_factory):
    app = crm_app_factory(PLUGINS=["sms"])
    report = {
        item["name"]: item
        for item in json.loads(app.test_cli_runner().invoke(main, ["plugins", "--json"]).output)
    }
    assert report["sms"]["status"] == "loaded", report["sms"]
    assert report["sms"]["distribution"] == "crm-sms"
    assert report["sms"]["version"] == "0.1.0"


def test_sms_can_be_disabled(crm_app_factory):
    app = crm_app_factory(PLUGINS=[])
    with app.app_context():
        record = app.extensions["crm"].host.records["sms"]
    assert record.status == "disabled"
