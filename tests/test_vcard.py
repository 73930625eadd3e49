"""vCard import (2.1, 3.0, 4.0) and export (3.0, 4.0): the corpus, round trips, malformed files, extras."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import vobject
from PIL import Image

from crmcore.interchange.vcard import read_cards, write_cards

#: shared/ sits beside the checkout (here and in CI).
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "vcards"
FILES = sorted(CORPUS.glob("*.vcf"))
KEYS = ("kind", "first_name", "last_name", "name", "emails", "phones", "addresses")


def apply(records):
    """What the importer does with each record (in create mode): find or create the organization it
    names, create the contact and run ``after_save``, all or nothing."""
    from sqlalchemy import select

    from crmcore.extensions import db
    from crmcore.models import Contact
    from crmcore.services.contacts import create_contact
    from crmcore.services.text import fold
    from crmcore.services.transactions import savepoint, transaction

    contacts = []
    for record in records:
        if record.error:
            continue
        data = dict(record.data)
        with transaction(), savepoint():
            name = data.pop("organization", None)
            if name:
                found = db.session.scalar(
                    select(Contact.id).where(Contact.kind == "organization", Contact.sort_key == fold(name))
                )
                data["organization_id"] = found or create_contact({"kind": "organization", "name": name}).id
            contact = create_contact(data, None, "import")
            if record.after_save is not None:
                record.after_save(contact)
        contacts.append(contact)
    return contacts


def read(text: str | bytes):
    return list(read_cards(io.BytesIO(text.encode() if isinstance(text, str) else text)))


def snapshot(contact):
    from crmcore.services.serialize import contact_to_dict

    data = contact_to_dict(contact)
    return {key: data[key] for key in KEYS}


def card(*lines: str, version: str = "3.0") -> str:
    return "\r\n".join(["BEGIN:VCARD", f"VERSION:{version}", *lines, "END:VCARD", ""])


def assert_valid(text: str, version: str) -> None:
    """What RFC 2426 (3.0), RFC 6350 (4.0) and the vCard 2.1 specification ask of a file; vobject reads
    3.0 and 4.0 back (it cannot read 2.1 quoted-printable reliably: our reader does)."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")[:-1]
    limit = 76 if version == "2.1" else 75  # 2.1: quoted-printable lines of 76 characters at most
    # (2.1 cannot fold a long name and parameters: the value then starts on the next line.)
    too_long = [line for line in lines if len(line.encode()) > limit and not line.endswith(":=")]
    assert too_long == [], f"lines are folded at {limit} octets"
    cards = text.split("END:VCARD\r\n")[:-1]
    for body in cards:
        unfolded = body.replace("=\r\n", "") if version == "2.1" else body.replace("\r\n ", "")
        unfolded = [line for line in unfolded.split("\r\n") if line and not line.startswith(" ")]
        assert unfolded[:2] == ["BEGIN:VCARD", f"VERSION:{version}"]
        names = [line.split(":", 1)[0].split(";")[0].split(".")[-1] for line in unfolded]
        assert names.count("FN") == 1 and names.count("N") == 1
        params = [line.split(":", 1)[0] for line in unfolded]
        if version == "4.0":
            assert not any(
                "ENCODING=" in p or "CHARSET=" in p or "pref" in p.lower().split("=")[-1] for p in params
            )
        elif version == "3.0":
            assert not any(";PREF=" in p for p in params)
        else:
            assert not any(";TYPE=" in p or "," in p for p in params), "2.1 parameters are bare, one each"
    if version == "2.1":
        assert all(record.error is None for record in read(text))
    else:
        assert len(list(vobject.readComponents(text))) == len(cards)


def test_corpus_is_there():
    assert len(FILES) == 18, f"expected the 18 corpus files in {CORPUS}"


def test_every_corpus_file_round_trips(app):
    """Import -> export (3.0 and 4.0) -> import keeps every readable card's names, emails, phones, addresses."""
    problems = []
    for path in FILES:
        with path.open("rb") as handle:
            records = list(read_cards(handle))
        assert [r.position for r in records] == list(range(1, len(records) + 1)), path.name
        readable = [r for r in records if r.error is None]
        if not readable:
            problems.append(f"{path.name}: no readable card ({[r.error for r in records]})")
            continue
        first = apply(readable)
        for version in ("3.0", "4.0", "2.1"):
            text = "".join(write_cards(first, version))
            assert text.count("BEGIN:VCARD") == len(first)
            assert_valid(text, version)
            again = apply(read(text))
            if [snapshot(c) for c in again] != [snapshot(c) for c in first]:
                problems.append(
                    f"{path.name} {version}: {[snapshot(c) for c in first]} != {[snapshot(c) for c in again]}"
                )
    assert problems == []


def test_android_2_1_quoted_printable_and_bad_photo_base64(app):
    with (CORPUS / "John_Doe_ANDROID.vcf").open("rb") as handle:
        records = list(read_cards(handle))
    assert len(records) == 6 and all(r.error is None for r in records)
    # Quoted-printable UTF-8, with soft line breaks inside the N value.
    assert records[2].data["last_name"] == "Ñ Ñ Ñ Ñ"
    assert records[3].data["last_name"] == " ".join(["Ñ"] * 11)
    assert records[4].data["first_name"] == "Ñ Ñ Ñ" and records[4].data["last_name"] == "Ñ Ñ"
    # The malformed card is kept; its photo (bad base64) is reported with its line.
    assert any("line 52: PHOTO has invalid base64" in w for w in records[4].warnings)
    assert records[4].data["emails"] == [{"address": "bob@company.com", "label": "work", "primary": True}]
    # A QP value that is not an email is reported, not fatal.
    assert any("is not an email address" in w for w in records[4].warnings)


def test_lotus_notes_duplicated_begin_is_reported_and_card_kept(app):
    with (CORPUS / "John_Doe_LOTUS_NOTES.vcf").open("rb") as handle:
        records = list(read_cards(handle))
    assert len(records) == 1
    record = records[0]
    assert record.error is None
    assert any("line 166: PROFILE:VCard" in w for w in record.warnings)
    assert record.data["last_name"] == "Doe"
    assert [e["address"] for e in record.data["emails"]] == ["john.doe@ibm.com", "billy_bob@gmail.com"]
    contact = apply(records)[0]
    from crmcore.builtin.vcard import extras_of

    names = {extra.name for extra in extras_of([contact.id])[contact.id]}
    assert {"X-GENERATOR", "X-LONG-STRING", "NICKNAME", "GEO"} <= names


def test_a_repeated_begin_line_and_unreadable_cards_are_reported(app):
    text = (
        "BEGIN:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nN:Dupont;Jean;;;\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nNOTE:nothing to file it under\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anne Martin\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Unfinished;;;;\r\n"
    )
    records = read(text)
    assert [r.position for r in records] == [1, 2, 3, 4]
    assert records[0].data["last_name"] == "Dupont"
    assert any("BEGIN:VCARD repeated" in w for w in records[0].warnings)
    assert (
        records[1].data is None
        and "card starting line 6" in records[1].error
        and "no name" in records[1].error
    )
    assert records[2].data["first_name"] == "Anne" and records[2].data["last_name"] == "Martin"
    assert records[3].data["last_name"] == "Unfinished"
    assert any("END:VCARD missing" in w for w in records[3].warnings)


def test_charsets_folding_and_line_breaks(app):
    latin1 = card("N;CHARSET=ISO-8859-1:Müller;Jürgen;;;", version="2.1").encode("latin-1")
    assert read(latin1)[0].data["last_name"] == "Müller"
    qp = card(
        "N;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Gr=E9goire;Andr=",
        "=E9;;;",
        "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:ligne 1, suite=0D=0Aligne 2",
        version="2.1",
    )
    record = read(qp)[0]
    assert (record.data["last_name"], record.data["first_name"]) == ("Grégoire", "André")
    contact = apply([record])[0]
    from crmcore.services.notes import list_notes

    assert [n.body for n in list_notes(contact.id)] == ["ligne 1, suite\nligne 2"]
    folded = card("N:Lon", " gname;Folded;;;", "EMAIL;TYPE=HOME:a@", " example.com")
    data = read(folded.replace("\r\n", "\r\r\n"))[0].data  # iPhone's CR CR LF
    assert data["last_name"] == "Longname"
    assert data["emails"] == [{"address": "a@example.com", "label": "home"}]


def test_item_groups_keep_their_labels(app):
    text = card(
        "N:Durand;Claire;;;",
        "item1.EMAIL;type=INTERNET:claire@school.example",
        "item1.X-ABLabel:School",
        "item2.TEL:+33 6 12 34 56 78",
        "item2.X-ABLabel:_$!<Mobile>!$_",
        "item3.X-ABRELATEDNAMES:Paul",
        "item3.X-ABLabel:_$!<Spouse>!$_",
    )
    record = read(text)[0]
    assert record.data["emails"] == [{"address": "claire@school.example", "label": "other"}]
    assert record.data["phones"] == [{"number": "+33 6 12 34 56 78", "type": "mobile"}]
    contact = apply([record])[0]
    out = "".join(write_cards([contact]))
    parsed = vobject.readOne(out)
    groups = {}
    for line in parsed.getChildren():
        if line.group:
            groups.setdefault(line.group, set()).add((line.name, line.value))
    assert {("EMAIL", "claire@school.example"), ("X-ABLABEL", "School")} in groups.values()
    assert {("TEL", "+33 6 12 34 56 78"), ("X-ABLABEL", "_$!<Mobile>!$_")} in groups.values()
    assert {("X-ABRELATEDNAMES", "Paul"), ("X-ABLABEL", "_$!<Spouse>!$_")} in groups.values()

    # The labelled email removed: its label goes with it, the others stay.
    from crmcore.services.contacts import update_contact

    update_contact(contact.id, {"emails": []}, None, "api")
    out = "".join(write_cards([contact]))
    assert "School" not in out and "Spouse" in out and "_$!<Mobile>!$_" in out


def test_x_properties_survive_export_and_reimport(app):
    text = card(
        "N:Petit;Léa;;;",
        "X-SKYPE:lea.petit",
        "X-CUSTOM;TYPE=home:a\\, b\\; c",
        "NICKNAME:Lili",
        "TEL;TYPE=CELL:12",  # phonenumbers cannot read it: kept as typed
    )
    record = read(text)[0]
    assert any("'12'" in w and "kept as typed" in w for w in record.warnings)
    contact = apply([record])[0]
    assert contact.phones == []
    for version in ("3.0", "4.0"):
        out = "".join(write_cards([contact], version))
        assert "X-SKYPE:lea.petit" in out
        assert "a\\, b\\; c" in out
        assert "TEL;TYPE=" in out and ":12\r\n" in out
        second = apply(read(out))[0]
        out2 = "".join(write_cards([second], version))
        assert sorted(out.splitlines()) == sorted(out2.splitlines())


def test_organization_cards_and_links(app, make_contact):
    org = make_contact(kind="organization", name="Acme SARL")
    records = read(
        card("FN:Acme SARL", "ORG:Acme SARL", "N:;;;;")
        + card("N:Roux;Marc;;M.;", "ORG:acme sarl;Achats", "TITLE:Acheteur")
        + card("FN:Globex", "KIND:org", "ORG:Globex", version="4.0")
    )
    assert records[0].data == {"kind": "organization", "name": "Acme SARL"}
    assert records[1].data["organization"] == "acme sarl"  # the importer finds "Acme SARL" or creates it
    assert records[1].data["salutation"] == "mr"
    assert records[1].data["department"] == "Achats" and records[1].data["job_title"] == "Acheteur"
    assert records[2].data["kind"] == "organization"
    person = apply([records[1]])[0]
    assert person.organization_id == org.id
    out = "".join(write_cards([person, org], "4.0"))
    assert "ORG:Acme SARL;Achats" in out and "KIND:org" in out


def test_photos_base64_and_data_uri(app):
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 30, 30)).save(buffer, "PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    records = read(
        card("N:Photo;Trois;;;", f"PHOTO;ENCODING=b;TYPE=PNG:{png}")
        + card("N:Photo;Quatre;;;", f"PHOTO:data:image/png;base64,{png}", version="4.0")
        + card(
            "N:Photo;Deux;;;",
            "PHOTO;ENCODING=BASE64;TYPE=PNG:",
            *[" " + png[i : i + 70] for i in range(0, len(png), 70)],
            "",
            version="2.1",
        )
        + card("N:Photo;Lien;;;", "PHOTO;VALUE=uri:https://example.com/me.jpg")
    )
    contacts = apply(records)
    from crmcore.models import ContactPhoto

    for contact in contacts[:3]:
        photo = app.extensions["sqlalchemy"].session.get(ContactPhoto, contact.id)
        assert photo is not None and Image.open(io.BytesIO(photo.data)).size == (200, 150)
    # Stored as photos.py normalises it (an opaque image becomes a JPEG).
    out3 = "".join(write_cards(contacts[:1], "3.0"))
    assert "PHOTO;ENCODING=b;TYPE=JPEG:/9j/" in out3
    out4 = "".join(write_cards(contacts[:1], "4.0"))
    assert "PHOTO:data:image/jpeg;base64,/9j/" in out4
    assert read(out4)[0].data["last_name"] == "Photo"
    # A link is never fetched; it is kept and written back.
    assert "PHOTO;VALUE=uri:https://example.com/me.jpg" in "".join(write_cards(contacts[3:], "3.0"))


def test_export_has_every_field(app, make_contact):
    from crmcore.services.fields import create_definition
    from crmcore.services.notes import add_note

    create_definition({"key": "fidelity", "label_en": "Fidelity", "type": "integer"})
    contact = make_contact(
        salutation="mrs",
        first_name="Émilie",
        last_name="Lefèvre",
        job_title="Directrice",
        department="Ventes",
        birthday="1985-04-12",
        website="https://lefevre.example",
        social={"linkedin": "https://linkedin.com/in/elefevre"},
        tags=["VIP", "Salon 2024"],
        custom={"fidelity": 3},
        emails=[
            {"address": "emilie@pro.example", "label": "work"},
            {"address": "emilie@home.example", "label": "home", "primary": True},
        ],
        phones=[
            {"number": "+33 6 12 34 56 78", "type": "mobile"},
            {"number": "01 23 45 67 89", "type": "fax"},
        ],
        addresses=[
            {
                "kind": "main",
                "street": "3 rue de la Paix",
                "street2": "Bât. B",
                "postal_code": "75002",
                "city": "Paris",
                "country": "FR",
            },
            {
                "kind": "billing",
                "street": "1 Main St",
                "postal_code": "10001",
                "city": "New York",
                "region": "NY",
                "country": "US",
            },
        ],
    )
    add_note(contact.id, "Cliente fidèle, préfère le téléphone", "customer")
    add_note(contact.id, "interne: ne pas imprimer", "internal")
    from crmcore.services.photos import set_photo

    buffer = io.BytesIO()
    Image.new("RGB", (60, 80), (10, 120, 30)).save(buffer, "JPEG")
    set_photo(contact.id, buffer.getvalue())

    out = "".join(write_cards([contact], "2.1"))
    assert_valid(out, "2.1")
    for line in (
        "VERSION:2.1",
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Lef=C3=A8vre;=C3=89milie;;Mme;",
        "EMAIL;INTERNET;HOME;PREF:emilie@home.example",
        "TEL;CELL;VOICE:+33 6 12 34 56 78",
        "ADR;X-BILLING:;;1 Main St;New York;NY;10001;United States",
        "CATEGORIES:Salon 2024,VIP",
        "BDAY:19850412",
        "PHOTO;JPEG;ENCODING=BASE64:",
    ):
        assert line + "\r\n" in out, line
    assert re.search(r"PHOTO;JPEG;ENCODING=BASE64:\r\n( \S+\r\n)+\r\n[A-Z]", out), (
        "base64 lines, then a blank line"
    )
    again = apply(read(out))[0]
    assert snapshot(again) == snapshot(contact) and again.custom == {"fidelity": 3}

    for version in ("3.0", "4.0"):
        out = "".join(write_cards([contact], version))
        parsed = vobject.readOne(out)  # vobject reads what it wrote
        assert parsed.version.value == version
        assert all(len(line.encode()) <= 75 for line in out.split("\r\n")), "lines are folded at 75 octets"
        assert out.endswith("END:VCARD\r\n") and "\n" not in out.replace("\r\n", "")
        assert "FN:Mme Émilie Lefèvre" in out
        assert "N:Lefèvre;Émilie;;Mme;" in out
        assert "TITLE:Directrice" in out and "ORG:;Ventes" in out
        assert "CATEGORIES:Salon 2024,VIP" in out
        assert "NOTE:Cliente fidèle\\, préfère le téléphone" in out and "interne" not in out
        assert "X-CRM-FIDELITY:3" in out
        assert "URL:https://lefevre.example" in out
        assert "X-SOCIALPROFILE;TYPE=linkedin:https://linkedin.com/in/elefevre" in out
        if version == "3.0":
            assert "BDAY:1985-04-12" in out
            assert "EMAIL;TYPE=INTERNET,HOME,pref:emilie@home.example" in out
            assert "EMAIL;TYPE=INTERNET,WORK:emilie@pro.example" in out
            assert "TEL;TYPE=CELL,VOICE:+33 6 12 34 56 78" in out and "TEL;TYPE=FAX:01 23 45 67 89" in out
            assert "ADR;TYPE=WORK:;;3 rue de la Paix\\nBât. B;Paris;;75002;France" in out
            assert "ADR;TYPE=X-BILLING:;;1 Main St;New York;NY;10001;United States" in out
        else:
            assert "BDAY:19850412" in out
            assert "EMAIL;PREF=1;TYPE=home:emilie@home.example" in out
            assert "TEL;TYPE=cell,voice:+33 6 12 34 56 78" in out
            assert "ADR;TYPE=x-billing:" in out
        again = apply(read(out))[0]
        assert snapshot(again) == snapshot(contact)
        assert again.custom == {"fidelity": 3} and again.birthday == contact.birthday
        assert [t.name for t in again.tags] == ["Salon 2024", "VIP"]
        assert again.social == contact.social and again.website == contact.website


def test_reimporting_into_the_same_contact_replaces_extras_and_does_not_duplicate_notes(app):
    record = read(card("N:Blanc;Hugo;;;", "X-A:1", "NOTE:hello"))[0]
    contact = apply([record])[0]
    record2 = read(card("N:Blanc;Hugo;;;", "X-B:2", "NOTE:hello"))[0]
    record2.after_save(contact)
    from crmcore.builtin.vcard import extras_of
    from crmcore.services.notes import list_notes

    assert [(e.name, e.value) for e in extras_of([contact.id])[contact.id]] == [("X-B", "2")]
    assert [n.body for n in list_notes(contact.id)] == ["hello"]


def test_merge_moves_extras_and_undo_gives_them_back(app):
    from crmcore.builtin.vcard import extras_of
    from crmcore.services.merge import merge_contacts, undo_merge

    a, b = apply(
        read(card("N:Un;Alice;;;", "X-A:a") + card("N:Deux;Alice;;;", "item1.X-B:b", "item1.X-ABLabel:x"))
    )
    merge = merge_contacts(a.id, [b.id], user=None, source="api")
    moved = extras_of([a.id, b.id])
    assert sorted(e.name for e in moved[a.id]) == ["X-A", "X-ABLABEL", "X-B"] and moved[b.id] == []
    out = "".join(write_cards([a]))
    assert "X-A:a" in out and ".X-B:b" in out and "X-ABLABEL:x" in out
    undo_merge(merge.id, None, "api")
    back = extras_of([a.id, b.id])
    assert [e.name for e in back[a.id]] == ["X-A"]
    assert sorted((e.group, e.name) for e in back[b.id]) == [("item1", "X-ABLABEL"), ("item1", "X-B")]


def test_vcard_routes(client, make_contact, make_user, api_client):
    contact = make_contact(first_name="Jean", last_name="Dupont", emails=[{"address": "jean@example.com"}])
    other = make_contact(kind="organization", name="Zeta")
    response = client.get(f"/api/v1/contacts/{contact.id}/vcard")
    assert response.status_code == 200
    assert response.mimetype == "text/vcard"
    assert 'filename="jean-dupont.vcf"' in response.headers["Content-Disposition"]
    assert "FN:Jean Dupont" in response.get_data(as_text=True)
    response = client.get(f"/api/v1/contacts/{contact.id}/vcard?version=4.0")
    assert "VERSION:4.0" in response.get_data(as_text=True)
    response = client.get(f"/api/v1/contacts/{contact.id}/vcard?version=2.1")
    assert "VERSION:2.1" in response.get_data(as_text=True)
    response = client.get(f"/api/v1/contacts/{contact.id}/vcard?version=2.0")
    assert response.status_code == 422 and "version" in response.json["errors"]
    assert client.get("/api/v1/contacts/999999/vcard").status_code == 404

    response = client.get(f"/api/v1/vcards.vcf?ids={contact.id}&ids={other.id}")
    text = response.get_data(as_text=True)
    assert text.count("BEGIN:VCARD") == 2 and "FN:Zeta" in text
    response = client.get("/api/v1/vcards.vcf")  # everything the caller may see
    assert response.get_data(as_text=True).count("BEGIN:VCARD") == 2
    assert client.get("/api/v1/vcards.vcf?ids=abc").status_code == 422

    # Access: a private contact of someone else is not exported, alone or in a selection.
    owner, stranger = make_user(email="o@example.com"), make_user(email="s@example.com")
    private = make_contact(user=owner, last_name="Secret", visibility="private")
    stranger_client = api_client(stranger)
    assert stranger_client.get(f"/api/v1/contacts/{private.id}/vcard").status_code == 404
    assert stranger_client.get(f"/api/v1/vcards.vcf?ids={private.id}").status_code == 404
    assert "Secret" not in stranger_client.get("/api/v1/vcards.vcf").get_data(as_text=True)


def test_actions_are_contributed(client, make_contact):
    contact = make_contact(last_name="Action")
    actions = client.get(f"/api/v1/contacts/{contact.id}/actions").json
    items = actions if isinstance(actions, list) else actions.get("items", actions)
    keys = {item["key"]: item for item in items}
    assert keys["export_vcard"]["url"] == f"/api/v1/contacts/{contact.id}/vcard"
    from crmcore.state import plugin_host

    mass = {
        action.key: action for _plugin, action in plugin_host().collect("register_mass_actions", user=None)
    }
    assert mass["export_vcards"].url == "/api/v1/vcards.vcf"
    assert mass["export_vcards"].label == {"en": "Export vCards", "fr": "Exporter les vCards"}


def test_the_importer_reports_the_malformed_files_and_keeps_their_cards(app):
    from crmcore.builtin.vcard import extras_of
    from crmcore.extensions import db
    from crmcore.interchange.importer import import_file
    from crmcore.models import Contact

    with (CORPUS / "John_Doe_ANDROID.vcf").open("rb") as handle:
        report = import_file(handle, None, file_name="John_Doe_ANDROID.vcf")
    assert report.created == 6 and report.rejected == []
    assert any(w.position == 5 and "PHOTO has invalid base64" in w.reason for w in report.warnings)
    with (CORPUS / "John_Doe_LOTUS_NOTES.vcf").open("rb") as handle:
        report = import_file(handle, None, file_name="John_Doe_LOTUS_NOTES.vcf")
    assert report.created == 1
    assert any(w.position == 1 and "PROFILE:VCard" in w.reason for w in report.warnings)
    contact = db.session.scalar(
        db.select(Contact).where(Contact.import_batch == report.batch, Contact.kind == "person")
    )
    assert contact.organization.name == "IBM" and contact.department == "SUN"
    assert "X-GENERATOR" in {e.name for e in extras_of([contact.id])[contact.id]}
