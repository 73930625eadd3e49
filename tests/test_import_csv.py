"""CSV import: sniffing, header families, modes, rejections, revert, --map, CLI and API."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crmcore.cli import main
from crmcore.errors import Conflict, ValidationError
from crmcore.extensions import db
from crmcore.interchange.csv_io import CsvReader, detect_encoding
from crmcore.interchange.importer import ImportOptions, import_file, revert_import
from crmcore.models import Contact, HistoryEntry, ImportBatch, Note
from crmcore.plugin_api import Problem, hookimpl
from crmcore.services.contacts import create_contact, get_contact, insert_contacts, prepare_contact

CORPORA = Path("/work/shared/corpora")
THUNDERBIRD = CORPORA / "csv" / "thunderbird-export.csv"


def run(content: bytes | str, name: str = "contacts.csv", user: Any = None, **options: Any) -> Any:
    data = content.encode("utf-8") if isinstance(content, str) else content
    source = {k: options.pop(k) for k in ("overrides", "encoding", "delimiter", "format") if k in options}
    return import_file(io.BytesIO(data), user, ImportOptions(**options), None, file_name=name, **source)


def live() -> list[Contact]:
    return list(db.session.scalars(select(Contact).where(Contact.deleted_at.is_(None)).order_by(Contact.id)))


def person(last_name: str) -> Contact:
    return db.session.scalars(select(Contact).where(Contact.last_name == last_name)).one()


# -- encodings and delimiters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "bom", "detected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", b"\xef\xbb\xbf", "utf-8"),
        ("cp1252", b"", "cp1252"),
        ("latin-1", b"", "cp1252"),
        ("iso8859-15", b"", "iso8859-15"),
    ],
)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_encodings_and_delimiters(app, encoding, bom, detected, delimiter):
    # Each encoding with the letters it has: cp1252's curly apostrophe, ISO-8859-15's œ.
    last = {"cp1252": "D’Œuvre", "iso8859-15": "Cœur"}.get(encoding, "Lefèvre")
    sep = delimiter + (" " if delimiter != "\t" else "")  # spaces after the delimiter are tolerated
    text = f"First Name{sep}Last Name{sep}City\r\nÉlodie{sep}{last}{sep}Besançon\r\n"
    data = bom + text.encode(encoding)
    reader = CsvReader(io.BytesIO(data))
    assert (reader.encoding, reader.delimiter) == (detected, delimiter)
    assert reader.header == ["First Name", "Last Name", "City"]
    report = run(data)
    assert report.created == 1, report.to_dict()
    contact = person(last)
    assert (contact.first_name, contact.addresses[0].city) == ("Élodie", "Besançon")


def test_utf16_with_bom_from_excel(app):
    data = "\ufeffFirst Name\tLast Name\r\nZoë\tBrontë\r\n".encode("utf-16-le")
    data = b"\xff\xfe" + data[2:]
    report = run(data, "unicode.txt")
    assert report.created == 1
    assert person("Brontë").first_name == "Zoë"


def test_encoding_detection_rules():
    assert detect_encoding("é".encode()) == "utf-8"
    assert detect_encoding("é".encode()[:1], complete=False) == "utf-8"  # a character cut by the sample
    assert detect_encoding(b"\x92") == "cp1252"
    assert detect_encoding(b"\xbd") == "iso8859-15"
    assert detect_encoding(b"caf\xe9 au lait") == "cp1252"


def test_a_stray_cp1252_cell_in_a_utf8_file_is_read(app):
    data = "Last Name,City\nMüller,Zürich\n".encode() + "Dupré,Nîmes\n".encode("cp1252")
    assert run(data).created == 2
    assert person("Dupré").addresses[0].city == "Nîmes"


def test_quoted_cells_hold_delimiters_quotes_tabs_and_newlines(app):
    data = 'Last Name;Job Title;Notes\n"Dupont; fils";"the ""boss""";"line 1\nline\t2"\nMartin;x;y\n'
    report = run(data)
    assert report.created == 2 and not report.rejected
    contact = person("Dupont; fils")
    assert contact.job_title == 'the "boss"'
    assert db.session.scalar(select(Note.body).where(Note.contact_id == contact.id)) == "line 1\nline\t2"
    # Martin starts on line 4: the quoted newline made line 3 two lines long.
    assert person("Martin") is not None


# -- the Thunderbird fixture and every header family ------------------------------------------------


def test_thunderbird_fixture_rejects_the_invalid_addresses_with_their_line(app):
    report = run(THUNDERBIRD.read_bytes(), "thunderbird-export.csv")
    assert report.created == 0
    assert [r.position for r in report.rejected] == [2, 3]
    assert "'Primary Email'" in report.rejected[0].reason
    assert "'contact1@invalid' is not an email address" in report.rejected[0].reason
    assert live() == []


def test_thunderbird_fixture_with_map(app):
    from crmcore.services.fields import create_definition

    for key in ("c1", "c2", "c4"):
        create_definition({"key": key, "label_en": key.upper(), "type": "long_text"})
    report = run(
        THUNDERBIRD.read_bytes(),
        overrides=["Primary Email=", "Custom 1=custom.c1", "Custom 2=custom.c2", "@36=custom.c4"],
    )
    assert (report.created, report.rejected) == (2, []), report.to_dict()
    two = person("two")
    assert (two.first_name, two.job_title) == ("contact", '"worker"')
    assert two.custom == {"c1": "custom, 1", "c2": "custom\t2", "c4": "custom\n4"}
    note = db.session.scalars(select(Note).where(Note.contact_id == two.id)).one()
    assert (note.kind, note.body) == ("internal", "here's some unicode text…")


def _one_contact(header: str, row: str, encoding: str = "utf-8", **options: Any) -> Contact:
    report = run((header + "\r\n" + row + "\r\n").encode(encoding), **options)
    assert report.created == 1, report.to_dict()
    return live()[-1]


def test_google_contacts_current_format(app):
    header = (
        "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,Name Prefix,"
        "Name Suffix,Nickname,File As,Organization Name,Organization Title,Organization Department,Birthday,Notes,"
        "Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,Phone 1 - Label,"
        "Phone 1 - Value,Phone 2 - Label,Phone 2 - Value,Address 1 - Label,Address 1 - Formatted,"
        "Address 1 - Street,Address 1 - City,Address 1 - PO Box,Address 1 - Region,Address 1 - Postal Code,"
        "Address 1 - Country,Address 1 - Extended Address,Website 1 - Label,Website 1 - Value"
    )
    row = (
        "Anne,,Martin,,,,Mrs,,,,Acme,CTO,R&D,1980-05-17,met at the fair,,* myContacts ::: Friends,"
        "* Work,anne@acme.example,Home,anne@home.example ::: a.martin@home.example,Mobile,+33 6 12 34 56 78,"
        'Work Fax,01 23 45 67 89,Home,"1 rue X, Lyon",1 rue X,Lyon,,Rhône,69001,France,Bât. B,,https://acme.example'
    )
    contact = _one_contact(header, row)
    assert (contact.first_name, contact.last_name, contact.salutation) == ("Anne", "Martin", "mrs")
    assert (contact.job_title, contact.department, contact.birthday.isoformat()) == (
        "CTO",
        "R&D",
        "1980-05-17",
    )
    assert contact.organization.name == "Acme"
    assert [(e.address, e.label, e.primary) for e in contact.emails] == [
        ("anne@acme.example", "work", True),
        ("anne@home.example", "home", False),
        ("a.martin@home.example", "home", False),
    ]
    assert [(p.type, p.e164) for p in contact.phones] == [("mobile", "+33612345678"), ("fax", "+33123456789")]
    address = contact.addresses[0]
    assert (address.kind, address.street, address.street2, address.city, address.country) == (
        "personal",
        "1 rue X",
        "Bât. B",
        "Lyon",
        "FR",
    )
    assert [t.name for t in contact.tags] == ["Friends"]
    assert contact.website == "https://acme.example"


def test_google_contacts_legacy_format(app):
    header = (
        "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,Additional Name Yomi,"
        "Family Name Yomi,Name Prefix,Name Suffix,Initials,Nickname,Short Name,Maiden Name,Birthday,Gender,"
        "Location,Billing Information,Directory Server,Mileage,Occupation,Hobby,Sensitivity,Priority,Subject,"
        "Notes,Language,Photo,Group Membership,E-mail 1 - Type,E-mail 1 - Value,Phone 1 - Type,Phone 1 - Value,"
        "Organization 1 - Type,Organization 1 - Name"
    )
    row = (
        "Jean Dupont,Jean,,Dupont,,,,,,,,,,,,,,,,,Plombier,,,,,,French,,* myContacts,* Home,jean@example.fr,"
        "Mobile,06 11 22 33 44,,Dupont SARL"
    )
    contact = _one_contact(header, row)
    assert (contact.first_name, contact.last_name, contact.job_title, contact.language) == (
        "Jean",
        "Dupont",
        "Plombier",
        "fr",
    )
    assert [(e.address, e.label) for e in contact.emails] == [("jean@example.fr", "home")]
    assert [(p.type, p.e164) for p in contact.phones] == [("mobile", "+33611223344")]
    assert contact.organization.name == "Dupont SARL"


OUTLOOK_EN = (
    '"Title","First Name","Middle Name","Last Name","Suffix","Company","Department","Job Title",'
    '"Business Street","Business Street 2","Business Street 3","Business City","Business State",'
    '"Business Postal Code","Business Country/Region","Home Street","Home City","Home Postal Code",'
    '"Home Country/Region","Business Phone","Home Phone","Mobile Phone","Business Fax","Categories",'
    '"E-mail Address","E-mail Type","E-mail Display Name","E-mail 2 Address","Birthday","Notes","Web Page"'
)


def test_outlook_english(app):
    row = (
        '"Dr","John","Q","Smith","Jr.","Contoso Ltd","Sales","Manager","1 Main St","Suite 5","","Seattle","WA",'
        '"98101","United States of America","2 Home Rd","Redmond","98052","United States of America",'
        '"(206) 555-0100","","(206) 555-0199","","VIP;Customers","john@contoso.example","SMTP","John Smith",'
        '"","1/31/1975","Likes golf","www.contoso.example"'
    )
    contact = _one_contact(OUTLOOK_EN, row)
    assert (contact.salutation, contact.first_name, contact.last_name, contact.job_title) == (
        "dr",
        "John",
        "Smith",
        "Manager",
    )
    assert contact.organization.name == "Contoso Ltd"
    assert contact.country == "US"
    assert [(a.kind, a.city, a.region, a.country) for a in contact.addresses] == [
        ("main", "Seattle", "WA", "US"),
        ("personal", "Redmond", None, "US"),
    ]
    assert [(p.type, p.e164) for p in contact.phones] == [
        ("work", "+12065550100"),
        ("mobile", "+12065550199"),
    ]
    assert sorted(t.name for t in contact.tags) == ["Customers", "VIP"]
    assert contact.birthday.isoformat() == "1975-01-31"  # month first: day 31 cannot be a month
    assert contact.website == "https://www.contoso.example"


def test_outlook_french_iso_8859_15_with_trailing_spaces_and_two_titres(app):
    header = (
        '"Titre","Prénom","Deuxième prénom","Nom","Suffixe","Surnom","Société ","Service ","Titre",'
        '"Rue (bureau)","Rue (bureau) 2","Rue (bureau) 3","Ville (bureau)","Dép/Région (bureau)",'
        '"Code postal (bureau)","Pays/Région (bureau)","Téléphone (bureau)","Tél. mobile",'
        '"Adresse de messagerie","Type de messagerie","Anniversaire","Catégories","Notes"'
    )
    row = (
        '"M.","Loïc","","Lœuvre","","","Société Générale d\'Œuvres","Comptabilité","Directeur financier",'
        '"3 place de l\'Église","","","Strasbourg","Bas-Rhin","67000","France","03 88 12 34 56",'
        '"06 12 34 56 78","loic@sgo.example","SMTP","31/12/1970","Client;VIP","coût : 5 €"'
    )
    data = (header + "\r\n" + row + "\r\n").encode("iso8859-15")
    assert CsvReader(io.BytesIO(data)).encoding == "iso8859-15"
    report = run(data)
    assert report.created == 1, report.to_dict()
    contact = person("Lœuvre")
    assert (contact.salutation, contact.first_name, contact.job_title, contact.department) == (
        "mr",
        "Loïc",
        "Directeur financier",
        "Comptabilité",
    )
    assert contact.organization.name == "Société Générale d'Œuvres"
    assert [(p.type, p.e164) for p in contact.phones] == [
        ("work", "+33388123456"),
        ("mobile", "+33612345678"),
    ]
    assert contact.birthday.isoformat() == "1970-12-31"
    assert contact.addresses[0].country == "FR"
    assert db.session.scalar(select(Note.body).where(Note.contact_id == contact.id)) == "coût : 5 €"


def test_thunderbird_header_with_separate_birth_date_parts(app):
    header = THUNDERBIRD.read_text(encoding="utf-8").splitlines()[0]
    row = ",".join(
        {
            0: "Ada",
            1: "Lovelace",
            4: "ada@example.org",
            7: "+44 20 7946 0000",
            11: "+44 7700 900123",
            18: "12 St James's Sq",
            20: "London",
            23: "United Kingdom",
            26: "Analytical Engines",
            29: "1815",
            30: "12",
            31: "10",
        }.get(i, "")
        for i in range(37)
    )
    contact = _one_contact(header, row)
    assert contact.birthday.isoformat() == "1815-12-10"
    assert contact.organization.name == "Analytical Engines"
    assert contact.addresses[0].country == "GB"
    assert [p.type for p in contact.phones] == ["work", "mobile"]


def test_canonical_columns_and_custom_fields(app):
    from crmcore.services.fields import create_definition

    create_definition({"key": "vat", "label_en": "VAT number", "type": "text"})
    create_definition({"key": "employees", "label_en": "Employees", "type": "integer"})
    data = (
        "kind,name,email,phone,street,postal_code,city,country,tags,custom.vat,Employees,external_id,is_supplier\n"
        'organization,Globex,info@globex.example,01 40 00 00 00,5 av. Foch,75016,Paris,FR,"a, b; c",'
        "FR123,250,ERP-1,oui\n"
    )
    contact = _one_contact(*data.strip().split("\n"))
    assert (contact.kind, contact.name, contact.external_id, contact.is_supplier) == (
        "organization",
        "Globex",
        "ERP-1",
        True,
    )
    assert contact.custom == {"vat": "FR123", "employees": 250}
    assert [t.name for t in contact.tags] == ["a", "b", "c"]


def test_a_file_without_any_known_column_is_refused_up_front(app):
    with pytest.raises(ValidationError) as caught:
        run(b"\x00\x01foo;bar\n1;2\n")
    assert "no column is a contact field" in caught.value.errors["map"][0]
    assert live() == []


def test_a_company_only_row_is_an_organization(app):
    contact = _one_contact("Company,E-mail Address", "Initech,contact@initech.example")
    assert (contact.kind, contact.name, contact.organization_id) == ("organization", "Initech", None)


# -- organizations and notes ----------------------------------------------------------------------


def test_organization_found_or_created_once_and_linked(app, make_contact):
    existing = make_contact(kind="organization", name="Société Générale")
    report = run("Last Name,Company\nA,ACME\nB,Acme\nC,societe generale\n")
    assert (report.created, report.organizations) == (3, 1)
    acme = db.session.scalars(select(Contact).where(Contact.name == "ACME")).one()
    assert person("A").organization_id == person("B").organization_id == acme.id
    assert person("C").organization_id == existing.id


def test_organization_of_rejected_rows_is_not_left_behind(app):
    report = run("Last Name,Company,Mobile\nA,Brand New Co,not a phone\n")
    assert report.created == 0 and report.rejected_total == 1
    assert live() == []


# -- modes ------------------------------------------------------------------------------------------


def test_create_mode_creates_even_when_the_email_exists(app, make_contact):
    make_contact(last_name="Old", emails=[{"address": "a@example.com"}])
    assert run("Last Name,Email\nNew,a@example.com\n").created == 1
    assert len(live()) == 2


def test_update_mode_merges_and_skips_unmatched_rows(app, make_contact):
    old = make_contact(
        last_name="Dupont",
        first_name="Jean",
        job_title="Intern",
        emails=[{"address": "jean@example.com", "primary": True}],
        phones=[{"number": "+33612345678"}],
        tags=["old"],
    )
    report = run(
        "Email,Job Title,Mobile,Tags,First Name\n"
        "JEAN@example.com,Engineer,+33 6 12 34 56 78,new,\n"
        "nobody@example.com,Boss,,,\n",
        mode="update",
    )
    assert (report.created, report.updated, report.skipped) == (0, 1, 1), report.to_dict()
    assert [(w.position, w.reason) for w in report.warnings] == [
        (3, "no contact has email nobody@example.com: skipped")
    ]
    db.session.expire_all()
    contact = get_contact(old.id)
    assert (contact.job_title, contact.first_name, contact.version) == ("Engineer", "Jean", 2)
    assert len(contact.phones) == 1 and [t.name for t in contact.tags] == ["new", "old"]
    assert contact.import_batch == report.batch
    assert len(live()) == 1


def test_update_with_a_company_column_links_people_and_leaves_organizations_alone(app, make_contact):
    jean = make_contact(last_name="Jean", emails=[{"address": "jean@example.com"}])
    org = make_contact(kind="organization", name="Umbrella", emails=[{"address": "info@umbrella.example"}])
    report = run(
        "Email,Company,Job Title\njean@example.com,Umbrella,Chemist\ninfo@umbrella.example,Other Co,\n",
        mode="update",
    )
    assert (report.updated, report.skipped, report.organizations) == (1, 1, 0), report.to_dict()
    db.session.expire_all()
    assert (get_contact(jean.id).kind, get_contact(jean.id).organization_id) == ("person", org.id)
    assert (get_contact(org.id).kind, get_contact(org.id).name) == ("organization", "Umbrella")


def test_update_with_nothing_new_is_skipped(app, make_contact):
    make_contact(last_name="Same", emails=[{"address": "same@example.com"}])
    report = run("Email,Last Name\nsame@example.com,Same\n", mode="update")
    assert (report.updated, report.skipped) == (0, 1)


@pytest.mark.parametrize(
    ("match", "column", "stored", "value", "other"),
    [
        ("email", "Email", {"emails": [{"address": "k@example.com"}]}, "K@Example.com", "o@example.com"),
        ("phone", "Phone", {"phones": [{"number": "+33612345678"}]}, "06 12 34 56 78", "0699999999"),
        ("number", "number", {}, "C-000001", "C-999999"),
        ("external_id", "external_id", {"external_id": "X-9"}, "X-9", "Y-1"),
    ],
)
def test_create_or_update_on_each_natural_key(app, make_contact, match, column, stored, value, other):
    make_contact(last_name="Kept", **stored)
    report = run(
        f"{column},Job Title,Last Name\n{value},Found,Kept\n{other},New,Other\n",
        mode="create-or-update",
        match=match,
    )
    assert (report.created, report.updated, report.rejected) == (1, 1, []), report.to_dict()
    assert person("Kept").job_title == "Found"


def test_create_or_update_with_the_same_key_twice_in_the_file(app):
    report = run(
        "Email,Last Name,Job Title,Tags\nz@example.com,Z,First,a\nz@example.com,Z,Second,b\n",
        mode="create-or-update",
        chunk_size=50,
    )
    assert (report.created, report.updated) == (1, 1), report.to_dict()
    contact = person("Z")
    assert contact.job_title == "Second" and [t.name for t in contact.tags] == ["a", "b"]


def test_ambiguous_match_is_rejected(app, make_contact):
    make_contact(last_name="A", emails=[{"address": "dup@example.com"}])
    make_contact(last_name="B", emails=[{"address": "dup@example.com"}])
    report = run("Email,Job Title\ndup@example.com,X\n", mode="update")
    assert report.rejected[0].position == 2
    assert "matches several contacts: C-000001, C-000002" in report.rejected[0].reason


def test_dry_run_reports_and_writes_nothing(app, make_contact):
    make_contact(last_name="Here", emails=[{"address": "here@example.com"}])
    before = db.session.scalar(select(func.count()).select_from(HistoryEntry))
    report = run(
        "Email,Last Name,Company,Notes\nhere@example.com,Here,Acme,n\nnew@example.com,New,Acme,n\nbad,Bad,,\n",
        mode="create-or-update",
        dry_run=True,
    )
    assert report.to_dict()["dry_run"] is True and report.batch is None
    assert (report.created, report.updated, [r.position for r in report.rejected]) == (1, 1, [4])
    db.session.expire_all()
    assert [c.last_name for c in live()] == ["Here"]
    assert db.session.scalar(select(func.count()).select_from(HistoryEntry)) == before
    assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_chunks_and_blank_rows(app):
    rows = "".join(f"P{i},p{i}@example.com\n" for i in range(7))
    report = run("Last Name,Email\n" + rows + ",\n\n", chunk_size=3)
    assert (report.created, report.skipped) == (7, 1)
    assert len({c.number for c in live()}) == 7


# -- rejections: whole rows only -------------------------------------------------------------------


def test_rejections_name_line_column_and_reason_and_write_nothing_of_the_row(app):
    report = run(
        "Last Name,Email,Mobile,Birthday,Is Supplier\n"
        "Good,good@example.com,0612345678,1990-01-02,no\n"
        "BadPhone,bp@example.com,12,,\n"
        "BadDate,bd@example.com,,31/02/1990,\n"
        ",nobody@example.com,,,\n"
        "BadFlag,bf@example.com,,,maybe\n"
        "Extra,e@example.com,,,,surplus\n",
        overrides=["Is Supplier=is_supplier"],
    )
    assert report.created == 1
    reasons = {r.position: r.reason for r in report.rejected}
    assert set(reasons) == {3, 4, 5, 6, 7}
    assert "phones[0].number (column 'Mobile')" in reasons[3]
    assert "'31/02/1990' is not a date" in reasons[4] and "'Birthday'" in reasons[4]
    assert "last_name: is required for a person" in reasons[5]
    assert "'maybe' is not yes or no" in reasons[6]
    assert "6 cells for 5 columns" in reasons[7]
    assert [c.last_name for c in live()] == ["Good"]
    assert db.session.scalar(select(func.count()).select_from(HistoryEntry)) == 1


class RefuseWatson:
    """A plugin that refuses one name at validation and one at creation (after the rows are written)."""

    @hookimpl
    def contact_validate(self, data):
        return [Problem("no Watsons", "last_name")] if data.get("last_name") == "Watson" else []

    @hookimpl
    def contacts_imported(self, contact_ids):
        names = db.session.scalars(select(Contact.last_name).where(Contact.id.in_(contact_ids)))
        if "Moriarty" in names:
            raise RuntimeError("not him")


def test_plugin_refusals_reject_only_their_row(register_plugin):
    app = register_plugin(RefuseWatson(), "refuse")
    with app.app_context():
        report = run("Last Name\nHolmes\nWatson\nMoriarty\nHudson\n")
        assert report.created == 2
        reasons = {r.position: r.reason for r in report.rejected}
        assert reasons[3] == "last_name (column 'Last Name'): no Watsons"
        assert reasons[4] == "RuntimeError: not him"
        assert sorted(c.last_name for c in live()) == ["Holmes", "Hudson"]


class ImportListener:
    def __init__(self) -> None:
        self.imported: list[tuple[list[int], str, str]] = []
        self.created: list[int] = []

    @hookimpl
    def contacts_imported(self, contact_ids, batch, source):
        self.imported.append((list(contact_ids), batch, source))

    @hookimpl
    def contact_created(self, contact):
        self.created.append(contact.id)


def test_imports_tell_plugins_the_ids_of_each_chunk_not_each_contact(register_plugin):
    listener = ImportListener()
    app = register_plugin(listener, "listener")
    with app.app_context():
        rows = "".join(f"P{n},Org {n % 2}\n" for n in range(5))
        report = run("Last Name,Company\n" + rows, chunk_size=3)
        assert report.created == 5 and report.organizations == 2
        assert listener.created == []
        assert {batch for _ids, batch, _source in listener.imported} == {report.batch}
        assert {source for _ids, _batch, source in listener.imported} == {"import"}
        told = [contact_id for ids, _batch, _source in listener.imported for contact_id in ids]
        assert sorted(told) == sorted(c.id for c in live())  # the five people and both organizations
        assert len(told) == len(set(told))
        # Chunk 1: its two new organizations, then its three people; chunk 2: two people.
        assert [len(ids) for ids, _batch, _source in listener.imported] == [2, 3, 2]
        create_contact({"kind": "person", "last_name": "By hand"}, None, "api")
        assert len(listener.created) == 1


def test_update_refused_by_access_rules(app, make_user, make_contact):
    owner = make_user()
    other = make_user()
    make_contact(owner, last_name="Mine", emails=[{"address": "mine@example.com"}], visibility="public_read")
    secret = make_contact(
        owner, last_name="Secret", emails=[{"address": "s@example.com"}], visibility="private"
    )
    report = run(
        "Email,Last Name,Job Title\nmine@example.com,Mine,X\ns@example.com,Secret,Y\n",
        user=other,
        mode="create-or-update",
    )
    assert "may read contact C-000001 but not change it" in report.rejected[0].reason
    # The private contact is invisible to this user: the row creates a new contact, owned by them.
    assert report.created == 1
    created = db.session.scalars(
        select(Contact).where(Contact.id != secret.id, Contact.last_name == "Secret")
    ).one()
    assert [o.id for o in created.owners] == [other.id]


# -- the bulk path is create_contact's path --------------------------------------------------------


def test_bulk_creation_writes_what_create_contact_writes(app):
    data = {
        "kind": "person",
        "first_name": "Élise",
        "last_name": "Reclus",
        "emails": [{"address": "e@example.com", "accepts_email": True}],
        "phones": [{"number": "0612345678", "sms": True}],
        "addresses": [{"city": "Orthez", "country": "FR"}],
        "tags": ["géo", "Géo", "anar"],
        "custom": {},
    }
    one = create_contact(data, None, "import")
    (other_id,) = insert_contacts([prepare_contact(data)], None, "import")
    db.session.commit()
    other = get_contact(other_id)

    def entries(contact_id):
        rows = db.session.scalars(
            select(HistoryEntry).where(HistoryEntry.contact_id == contact_id).order_by(HistoryEntry.id)
        )
        return [(e.action, e.field, e.old, e.new) for e in rows]

    assert entries(one.id) == entries(other.id)
    assert (other.display_name, other.sort_key, other.version) == (
        one.display_name,
        one.sort_key,
        one.version,
    )
    from crmcore.models import SearchToken

    def tokens(contact_id):
        return sorted(
            t.replace(one.number.lower(), "#").replace(one.number[2:].lstrip("0"), "#")
            for t in db.session.scalars(select(SearchToken.token).where(SearchToken.contact_id == contact_id))
        )

    assert len(tokens(one.id)) == len(tokens(other.id))


# -- revert -----------------------------------------------------------------------------------------


def test_revert_removes_created_restores_updated_and_drops_added_notes(app, make_contact):
    kept = make_contact(last_name="Kept", job_title="Old", emails=[{"address": "kept@example.com"}])
    first = run("Last Name,Email,Company\nNew,new@example.com,NewCo\n")
    second = run("Email,Job Title,Notes,Tags\nkept@example.com,Changed,imported note,t1\n", mode="update")
    assert (first.created, second.updated) == (1, 1)
    result = revert_import(second.batch)
    assert (result["restored"], result["notes_removed"], result["kept"]) == (1, 1, [])
    db.session.expire_all()
    contact = get_contact(kept.id)
    assert (contact.job_title, [t.name for t in contact.tags], contact.import_batch) == ("Old", [], None)
    assert db.session.scalar(select(func.count()).select_from(Note)) == 0
    result = revert_import(first.batch)
    assert result["deleted"] == 2  # the person and the organization created for them
    assert [c.last_name for c in live()] == ["Kept"]
    with pytest.raises(Conflict, match="already reverted"):
        revert_import(first.batch)


def test_revert_keeps_an_organization_another_import_linked_people_to(app):
    first = run("Last Name,Company\nP1,Acme\n")
    second = run("Last Name,Company\nP2,Acme\n")
    assert (first.organizations, second.organizations) == (1, 0)
    result = revert_import(first.batch)
    assert result["deleted"] == 1 and "organization still has members" in result["kept"][0]["reason"]
    assert sorted(c.display_name for c in live()) == ["Acme", "P2"]


def test_revert_keeps_fields_changed_since(app, make_contact):
    from crmcore.services.contacts import update_contact

    contact = make_contact(
        last_name="K", job_title="Old", department="D0", emails=[{"address": "k@example.com"}]
    )
    report = run("Email,Job Title,Department\nk@example.com,New,D1\n", mode="update")
    update_contact(contact.id, {"job_title": "Later"})
    result = revert_import(report.batch)
    assert result["kept"] == [
        {"contact": "C-000001", "reason": "changed since the import, left as is: job_title"}
    ]
    db.session.expire_all()
    assert (get_contact(contact.id).job_title, get_contact(contact.id).department) == ("Later", "D0")


# -- command line -------------------------------------------------------------------------------------


def test_cli_import_json_report_map_and_revert(app, runner, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Nom;Prénom;Portable;Remarque\nCurie;Marie;06 00 00 00 01;x\nBad;;pas un numéro;\n")
    result = runner.invoke(main, ["import", str(path), "--json", "--map", "Remarque=job_title"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert {k: report[k] for k in ("created", "updated", "skipped")} == {
        "created": 1,
        "updated": 0,
        "skipped": 0,
    }
    assert (
        report["rejected"] == [{"position": 3, "reason": report["rejected"][0]["reason"]}]
        and "phones[0].number (column 'Portable')" in report["rejected"][0]["reason"]
    )
    assert person("Curie").job_title == "x"
    listed = runner.invoke(main, ["import", "--list"])
    assert report["batch"] in listed.output
    reverted = runner.invoke(main, ["import", "--revert", report["batch"]])
    assert reverted.exit_code == 0 and "1 deleted" in reverted.output
    bad = runner.invoke(main, ["import", str(path), "--map", "Remarque=nonsense"])
    assert bad.exit_code != 0 and "'nonsense' is not an import field" in bad.output


def test_cli_preview_and_dry_run(app, runner, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Last Name,E-mail Address\nA,a@example.com\n")
    preview = runner.invoke(main, ["import", str(path), "--preview", "5"])
    shown = json.loads(preview.stdout)
    assert [c["field"] for c in shown["columns"]] == ["last_name", "email"]
    assert shown["records"][0]["data"]["emails"][0]["address"] == "a@example.com"
    dry = runner.invoke(main, ["import", str(path), "--dry-run"])
    assert "dry run, nothing written: 1 created" in dry.output
    assert live() == []


def test_cli_imports_a_vcard_file(app, runner):
    pytest.importorskip("crmcore.interchange.vcard")
    result = runner.invoke(main, ["import", str(CORPORA / "vcards" / "rfc2426-example.vcf"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{") :])["created"] == 2  # the two cards of RFC 2426


# -- API ----------------------------------------------------------------------------------------------


def test_api_import_preview_list_and_revert(app, api_client, make_user):
    user = make_user()
    client = api_client(user)
    content = b"Last Name;Email\nApi;api@example.com\n;x\n"
    answer = client.post(
        "/api/v1/contacts/import/preview",
        data={"file": (io.BytesIO(content), "x.csv"), "rows": "1"},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["delimiter"] == ";" and len(answer.json["records"]) == 1
    answer = client.post(
        "/api/v1/contacts/import",
        data={"file": (io.BytesIO(content), "x.csv"), "map": ["Email=email.home"]},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 200, answer.json
    report = answer.json
    assert (report["created"], report["rejected"][0]["position"]) == (1, 3)
    contact = person("Api")
    assert [o.id for o in contact.owners] == [user.id] and contact.emails[0].label == "home"
    assert [b["batch"] for b in client.get("/api/v1/contacts/imports").json] == [report["batch"]]
    assert client.post(f"/api/v1/contacts/imports/{report['batch']}/revert").json["deleted"] == 1
    bad = client.post(
        "/api/v1/contacts/import",
        data={"file": (io.BytesIO(content), "x.csv"), "mode": "merge"},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "mode" in bad.json["errors"]


def test_a_bad_address_part_names_its_own_column(app):
    with app.app_context():
        report = run(
            "Last Name,Business Street,Business City,Business Country/Region\n"
            "Good,1 rue Haute,Rennes,France\n"
            "Nowhere,2 rue Basse,Atlantis,XX\n"
        )
        assert report.created == 1
        (rejection,) = report.rejected
        assert rejection.position == 3
        # The address's country and the contact's (taken from it) came from the country column.
        assert "addresses[0].country (column 'Business Country/Region')" in rejection.reason
        assert "country (column 'Business Country/Region')" in rejection.reason.replace(
            "addresses[0].country", ""
        )
        assert "Business Street" not in rejection.reason
        assert person("Good").country == "FR"
