"""Imports reading and validating their file in a second process (interchange/read_ahead.py).

The same file imported with and without reading ahead gives the same report and the same contacts;
a failure in the reading process reaches the import; the importing process's own database
connection keeps working (it is never touched by the copy); nothing is left running.
"""

from __future__ import annotations

import io
import multiprocessing
from typing import Any

import pytest
from sqlalchemy import select

from crmcore.extensions import db
from crmcore.interchange import read_ahead
from crmcore.interchange.importer import ImportOptions, import_file
from crmcore.models import Contact
from crmcore.plugin_api import Problem, hookimpl
from crmcore.services.serialize import contact_to_dict

FILE = (
    "First Name,Last Name,E-mail Address,Mobile Phone,Company,Categories,Notes,Custom 1\n"
    "Ada,Lovelace,ada@example.com,+44 20 7946 0958,Analytical Engines,maths;vip,met at a fair,x1\n"
    "Charles,Babbage,not-an-email,,Analytical Engines,maths,,\n"
    ",,,,,,,\n"
    "Grace,Hopper,grace@example.com,06 12 34 56 78,Navy,,,\n"
    "Alan,,alan@example.com,,,,,\n"
    "Mary,Watson,mary@example.com,,Baker Street,,,\n"
    "Sherlock,Holmes,sherlock@example.com,06 99 99 99 9,Baker Street,detective,,\n"
) + "".join(f"P{n},Person {n},p{n}@example.com,,Org {n % 3},bulk,,\n" for n in range(40))


class NoWatson:
    @hookimpl
    def contact_validate(self, data):
        return [Problem("no Watsons", "last_name")] if data.get("last_name") == "Watson" else []


def _import(app: Any, content: str = FILE, overrides: tuple[str, ...] = (), **options: Any) -> Any:
    with app.app_context():
        return import_file(
            io.BytesIO(content.encode()),
            None,
            ImportOptions(chunk_size=7, **options),
            None,
            file_name="people.csv",
            overrides=overrides,
        )


def _stored(app: Any) -> list[dict[str, Any]]:
    keep = ("kind", "first_name", "last_name", "name", "emails", "phones", "tags", "custom", "status")
    with app.app_context():
        out = []
        for contact in db.session.scalars(select(Contact).order_by(Contact.id)):
            data = {
                key: _without_ids(value) for key, value in contact_to_dict(contact).items() if key in keep
            }
            data["organization"] = contact.organization.name if contact.organization else None
            out.append(data)
        return out


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "number")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _report(report: Any) -> dict[str, Any]:
    return {
        "created": report.created,
        "updated": report.updated,
        "skipped": report.skipped,
        "organizations": report.organizations,
        "rejected": [(r.position, r.reason) for r in report.rejected],
        "warnings": [(w.position, w.reason) for w in report.warnings],
    }


def test_reading_ahead_gives_the_same_report_and_contacts(register_plugin, crm_migrated):
    from crmcore.services.fields import create_definition
    from crmcore.testing import _empty_database

    results = []
    for setting in ("off", "on"):
        app = register_plugin(NoWatson(), "no_watson", IMPORT_READ_AHEAD=setting)
        with app.app_context():
            create_definition({"key": "c1", "label_en": "C1", "type": "text"})
        report = _import(app, overrides=("Custom 1=custom.c1",))
        results.append((_report(report), _stored(app)))
        _empty_database(app, crm_migrated)
    (report_off, stored_off), (report_on, stored_on) = results
    assert report_on == report_off
    assert stored_on == stored_off
    assert report_off["created"] == 43 and report_off["skipped"] == 1 and report_off["organizations"] == 6
    assert [position for position, _reason in report_off["rejected"]] == [3, 6, 7]
    (ada,) = [c for c in stored_off if c["last_name"] == "Lovelace"]
    assert ada["custom"] == {"c1": "x1"} and ada["tags"] == ["maths", "vip"]
    assert ada["organization"] == "Analytical Engines"
    assert multiprocessing.active_children() == []


def test_a_failure_while_reading_ahead_reaches_the_import(register_plugin):
    class Broken:
        @hookimpl
        def contact_validate(self, data):
            if data.get("last_name") == "Person 30":
                raise RuntimeError("validator crashed")
            return []

    app = register_plugin(Broken(), "broken", IMPORT_READ_AHEAD="on")
    with pytest.raises(RuntimeError, match="validator crashed"):
        _import(app)
    with app.app_context():
        # The chunks written before the failing one are kept, as without reading ahead.
        stored = db.session.scalars(select(Contact.last_name).where(Contact.kind == "person")).all()
        assert "Lovelace" in stored and "Person 30" not in stored
    assert multiprocessing.active_children() == []


def test_the_importing_connection_survives_the_copy(crm_app_factory):
    app = crm_app_factory(IMPORT_READ_AHEAD="on")
    with app.app_context():
        connection = db.session.connection()  # opened before the copy exists
        before = connection.exec_driver_sql("select 1").scalar()
        report = import_file(
            io.BytesIO(FILE.encode()),
            None,
            ImportOptions(dry_run=True, chunk_size=5),
            None,
            file_name="p.csv",
        )
        assert report.created == 44 and report.batch is None
        assert db.session.connection().exec_driver_sql("select 2").scalar() == 2
        assert before == 1
        assert db.session.scalar(select(Contact.id).limit(1)) is None  # the dry run wrote nothing
        report = import_file(io.BytesIO(FILE.encode()), None, ImportOptions(), None, file_name="p.csv")
        assert report.created == 44
        assert db.session.scalar(select(Contact.last_name).where(Contact.last_name == "Hopper")) == "Hopper"


def test_progress_follows_the_reading_process(crm_app_factory):
    app = crm_app_factory(IMPORT_READ_AHEAD="on")
    seen: list[tuple[int, int]] = []
    content = FILE.encode()
    with app.app_context():
        import_file(
            io.BytesIO(content),
            None,
            ImportOptions(chunk_size=10),
            lambda done, _report, source: seen.append((done, source.bytes_read)),
            file_name="p.csv",
            size=len(content),
        )
    assert [done for done, _bytes in seen] == [10, 20, 30, 40, 47]
    positions = [position for _done, position in seen]
    assert positions == sorted(positions) and 0 < positions[0] < len(content)
    assert positions[-1] == len(content)


def test_when_reading_ahead_is_used(crm_app_factory):
    auto = crm_app_factory()
    with auto.app_context():
        cpus = read_ahead._cpus()
        assert read_ahead.wanted("csv", 5 << 20) is (cpus >= 2)
        assert read_ahead.wanted("csv", 1000) is False  # small files: not worth a process
        assert read_ahead.wanted("csv", None) is False
        assert read_ahead.wanted("vcf", 5 << 20) is False  # records carry a function
    on = crm_app_factory(IMPORT_READ_AHEAD="on")
    with on.app_context():
        assert read_ahead.wanted("json", 10) is True
        assert read_ahead.wanted("vcf", 10) is False
    off = crm_app_factory(IMPORT_READ_AHEAD="off")
    with off.app_context():
        assert read_ahead.wanted("csv", 5 << 20) is False
    memory = crm_app_factory(IMPORT_READ_AHEAD="on", DATABASE_URL="sqlite://")
    with memory.app_context():
        assert read_ahead.wanted("csv", 5 << 20) is False  # a copy of the process has its own database
