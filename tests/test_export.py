"""Export: CSV (round trip through the importer), JSON (the API's shape), vCard; access; CLI and API."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import select

from crmcore.cli import main
from crmcore.extensions import db
from crmcore.interchange.export import csv_header, export_csv, export_json
from crmcore.interchange.importer import ImportOptions, import_file
from crmcore.models import Contact
from crmcore.services.serialize import contact_to_dict


@pytest.fixture
def people(make_contact: Any) -> list[Contact]:
    from crmcore.services.fields import create_definition

    create_definition({"key": "vat", "label_en": "VAT", "type": "text"})
    create_definition(
        {"key": "sectors", "label_en": "Sectors", "type": "multi_choice", "choices": ["a", "b"]}
    )
    org = make_contact(kind="organization", name="Acme", custom={"vat": "FR1"})
    return [
        org,
        make_contact(
            first_name="Zoé",
            last_name="Ångström",
            organization_id=org.id,
            emails=[
                {"address": "zoe@acme.example", "primary": True},
                {"address": "zoe@home.example", "label": "home"},
            ],
            phones=[{"number": "+33612345678", "type": "mobile"}, {"number": "+33140000000", "type": "fax"}],
            addresses=[
                {"kind": "main", "street": '1, rue "Haute"', "city": "Lyon", "country": "FR"},
                {"kind": "billing", "city": "Paris", "postal_code": "75001"},
            ],
            tags=["vip", "salon"],
            birthday="1990-04-05",
            country="FR",  # the CSV "country" is the main address's, also given to the contact on import
            custom={"sectors": ["a", "b"]},
            description="line 1\nline 2",
        ),
        make_contact(last_name='=HYPERLINK("x")', first_name="-2+3"),
    ]


def parse_csv(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def test_csv_columns_values_and_formula_guard(app, people):
    rows = parse_csv("".join(export_csv(None)))
    assert list(rows[0]) == csv_header()
    by_number = {row["number"]: row for row in rows}
    zoe = by_number[people[1].number]
    assert (zoe["first_name"], zoe["organization"], zoe["email"], zoe["email.home"]) == (
        "Zoé",
        "Acme",
        "zoe@acme.example",
        "zoe@home.example",
    )
    assert (zoe["mobile"], zoe["phone.fax"], zoe["street"], zoe["address.billing.city"]) == (
        "+33612345678",
        "+33140000000",
        '1, rue "Haute"',
        "Paris",
    )
    assert (zoe["tags"], zoe["custom.sectors"], zoe["birthday"]) == ("salon; vip", "a, b", "1990-04-05")
    assert by_number[people[0].number]["custom.vat"] == "FR1"
    risky = by_number[people[2].number]
    assert (risky["last_name"], risky["first_name"]) == ('\'=HYPERLINK("x")', "'-2+3")


def test_csv_export_imports_back_the_same_contacts(app, people):
    text = "".join(export_csv(None))
    report = import_file(io.BytesIO(text.encode("utf-8")), None, ImportOptions(), file_name="export.csv")
    assert (report.created, report.rejected, report.organizations) == (3, [], 0), report.to_dict()
    skip = {"id", "number", "created_at", "updated_at", "version", "organization_id", "owners"}
    originals = {c.display_name: contact_to_dict(c) for c in people}
    copies = {
        c.display_name: contact_to_dict(c)
        for c in db.session.scalars(select(Contact).where(Contact.id > people[-1].id))
    }
    assert sorted(copies) == sorted(originals)
    for name, original in originals.items():
        assert {k: v for k, v in copies[name].items() if k not in skip} == {
            k: v for k, v in original.items() if k not in skip
        }
    # The person is linked to an organization of the same name (the existing one, found by name).
    assert copies["Zoé Ångström"]["organization_id"] == people[0].id


def test_json_export_is_the_api_shape(app, people, client):
    exported = json.loads("".join(export_json(None)))
    assert sorted(c["id"] for c in exported) == [c.id for c in people]
    for item in exported:
        assert item == client.get(f"/api/v1/contacts/{item['id']}").json


def test_vcard_export(app, people):
    pytest.importorskip("crmcore.interchange.vcard")
    from crmcore.interchange.export import export_vcf

    text = "".join(export_vcf(None))
    assert text.count("BEGIN:VCARD") == 3 and "Ångström" in text


def test_pages_follow_the_keyset(crm_app_factory):
    app = crm_app_factory(MAX_PAGE_SIZE=2)
    with app.app_context():
        from crmcore.services.contacts import create_contact

        for i in range(5):
            create_contact({"kind": "person", "last_name": f"P{i}"})
        assert len(json.loads("".join(export_json(None)))) == 5
        assert len(parse_csv("".join(export_csv(None)))) == 5


def test_api_export_respects_access_and_filters(app, api_client, make_user, make_contact):
    alice, bob = make_user(), make_user()
    make_contact(alice, last_name="Private", visibility="private")
    shared = make_contact(alice, last_name="Shared", tags=["x"])
    other = make_contact(bob, last_name="Other")
    as_bob = api_client(bob)
    answer = as_bob.get("/api/v1/contacts/export?format=json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert "attachment" in answer.headers["Content-Disposition"]
    assert sorted(c["last_name"] for c in answer.json) == ["Other", "Shared"]
    as_alice = api_client(alice)
    assert len(as_alice.get("/api/v1/contacts/export?format=json").json) == 3
    by_ids = as_bob.get(f"/api/v1/contacts/export?format=json&ids={shared.id},{other.id}&ids=999")
    assert sorted(c["id"] for c in by_ids.json) == [shared.id, other.id]
    tagged = as_bob.get("/api/v1/contacts/export?format=csv&tag=x&bom=false")
    assert tagged.mimetype == "text/csv" and [
        r["last_name"] for r in csv.DictReader(io.StringIO(tagged.text))
    ] == ["Shared"]
    assert as_bob.get("/api/v1/contacts/export?format=xls").status_code == 422
    assert as_bob.get("/api/v1/contacts/export?ids=abc").status_code == 422


def test_api_export_vcard(app, client, make_contact):
    pytest.importorskip("crmcore.interchange.vcard")
    make_contact(last_name="Card")
    answer = client.get("/api/v1/contacts/export?format=vcf&version=4.0")
    assert answer.status_code == 200 and answer.mimetype == "text/vcard"
    assert "VERSION:4.0" in answer.text and "Card" in answer.text


def test_cli_export_to_file_and_stdout(app, runner, make_contact, tmp_path):
    make_contact(last_name="Cli", tags=["t"])
    make_contact(last_name="Other")
    target = tmp_path / "out.json"
    result = runner.invoke(main, ["export", "--format", "json", "-o", str(target), "--tag", "t"])
    assert result.exit_code == 0, result.output
    assert [c["last_name"] for c in json.loads(target.read_text())] == ["Cli"]
    result = runner.invoke(main, ["export"])
    assert result.exit_code == 0 and len(parse_csv(result.stdout)) == 2
    assert runner.invoke(main, ["export", "--ids", "x"]).exit_code != 0


def test_json_export_imports_back(app, people):
    text = "".join(export_json(None))
    report = import_file(io.BytesIO(text.encode()), None, ImportOptions(), file_name="contacts.json")
    assert (report.created, report.rejected) == (3, []), report.to_dict()
    report = import_file(
        io.BytesIO(text.encode()), None, ImportOptions(mode="update", match="number"), file_name="x.json"
    )
    assert (report.updated, report.skipped) == (0, 3)
    # The file wins over a later change: no version check on import.
    from crmcore.services.contacts import update_contact

    update_contact(people[1].id, {"first_name": "Changed"})
    report = import_file(
        io.BytesIO(text.encode()), None, ImportOptions(mode="update", match="number"), file_name="x.json"
    )
    assert (report.updated, report.skipped, report.rejected) == (1, 2, [])
    db.session.expire_all()
    assert db.session.get(Contact, people[1].id).first_name == "Zoé"
