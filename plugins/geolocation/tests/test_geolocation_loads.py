"""crm-geolocation is a real installed distribution that crmcore discovers and loads."""

import json

from crmcore.cli import main


def test_geolocation_is_discovered_and_loaded(crm_app_factory):
    app = crm_app_factory(PLUGINS=["geolocation"])
    report = {
        item["name"]: item
        for item in json.loads(app.test_cli_runner().invoke(main, ["plugins", "--json"]).output)
    }
    assert report["geolocation"]["status"] == "loaded", report["geolocation"]
    assert report["geolocation"]["distribution"] == "crm-geolocation"
    assert report["geolocation"]["version"] == "0.1.0"


def test_geolocation_can_be_disabled(crm_app_factory):
    app = crm_app_factory(PLUGINS=[])
    with app.app_context():
        record = app.extensions["crm"].host.records["geolocation"]
    assert record.status == "disabled"
