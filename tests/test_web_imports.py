"""The import wizard: upload, columns and preview, dry run, run, report, revert, past imports."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crmcore.extensions import db
from crmcore.models import Contact, ImportBatch

THUNDERBIRD = Path("/work/shared/corpora/csv/thunderbird-export.csv")
# The Thunderbird export of the shared corpus (kept here too so the tests run anywhere).
THUNDERBIRD_TEXT = (
    "First Name,Last Name,Display Name,Nickname,Primary Email,Secondary Email,Screen Name,Work Phone,"
    "Home Phone,Fax Number,Pager Number,Mobile Number,Home Address,Home Address 2,Home City,Home State,"
    "Home ZipCode,Home Country,Work Address,Work Address 2,Work City,Work State,Work ZipCode,Work Country,"
    "Job Title,Department,Organization,Web Page 1,Web Page 2,Birth Year,Birth Month,Birth Day,Custom 1,"
    "Custom 2,Custom 3,Custom 4,Notes\n"
    "contact,one,contact number one,,contact1@invalid,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n"
    'contact,two,contact number two,,contact2@invalid,,,,,,,,,,,,,,,,,,,,"""worker""",,,,,,,,'
    '"custom, 1","custom\t2","custom3","custom\n4",here\'s some unicode text…\n'
)


def _thunderbird() -> bytes:
    return THUNDERBIRD.read_bytes() if THUNDERBIRD.exists() else THUNDERBIRD_TEXT.encode()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def text(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


class Browser:
    """A test client signed in through the sign-in page, posting forms with the CSRF token."""

    def __init__(self, client: Any, user: Any) -> None:
        self.client = client
        token = _csrf(client.get("/login").get_data(as_text=True))
        response = client.post(
            "/login", data={"email": user.email, "password": "password123", "csrf_token": token}
        )
        assert response.status_code == 302
        self.token = _csrf(client.get("/contacts").get_data(as_text=True))

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, data: Any = None, **kw: Any) -> Any:
        data = dict(data or {})
        data.setdefault("csrf_token", self.token)
        return self.client.post(url, data=data, **kw)

    def upload(self, content: bytes, name: str) -> Any:
        import io

        return self.post("/contacts/import", {"file": (io.BytesIO(content), name)})


def quick_user(email: str, is_admin: bool = False, **kw: Any) -> Any:
    from werkzeug.security import generate_password_hash

    from crmcore.services.users import create_user

    user = create_user(email, None, is_admin=is_admin, **kw)
    user.password_hash = generate_password_hash("password123", method="pbkdf2:sha256:1")
    db.session.commit()
    return user


@pytest.fixture
def wizard(crm_app_factory: Any, tmp_path: Path) -> Any:
    application = crm_app_factory(IMPORT_FOLDER=str(tmp_path / "imports"), IMPORT_MAX_SIZE=200_000)
    with application.app_context():
        yield application


@pytest.fixture
def browser(wizard: Any) -> Browser:
    return Browser(
        wizard.test_client(), quick_user("boss@example.com", is_admin=True, name="Boss", language="en")
    )


def _mapping_form(page: str, **changes: str) -> dict[str, str]:
    """The fields of step 2 as the page shows them, with ``changes``."""
    form = {}
    for found in re.finditer(r'<select id="([^"]+)" name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', found.group(3))
        form[found.group(2)] = chosen.group(1) if chosen else ""
    if 'id="import-dry-run" name="dry_run" value="1" checked' in page:
        form["dry_run"] = "1"
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def _count(model: Any) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_contact_list_links_to_the_wizard(browser):
    page = text(browser.get("/contacts"))
    assert 'id="import-contacts" href="/contacts/import"' in page
    page = text(browser.get("/contacts/import"))
    assert 'id="import-file"' in page and "Import contacts" in page


def test_thunderbird_file_dry_run_then_import_then_revert(browser, wizard):
    response = browser.upload(_thunderbird(), "thunderbird-export.csv")
    assert response.status_code == 302
    step2 = response.headers["Location"]
    token = step2.rsplit("/", 1)[1]
    stored = list((Path(wizard.config["IMPORT_FOLDER"])).iterdir())
    assert {p.name for p in stored} == {f"{token}.upload", f"{token}.json"}

    page = text(browser.get(step2))
    assert '<dd id="detected-encoding">utf-8</dd>' in page
    assert '<dd id="detected-delimiter">,</dd>' in page
    # every column with its suggested field, the ignore option and the custom fields group
    assert len(re.findall(r'data-testid="column-row"', page)) == 37
    assert re.search(r'<select id="map-4" name="map-4">.*?<option value="email" selected', page, re.S)
    assert re.search(r'<select id="map-34" name="map-34">\s*<option value="" selected', page, re.S)
    rows = re.findall(r'data-testid="preview-row" data-position="(\d+)"', page)
    assert rows == ["2", "3"]
    # the corpus' addresses end in ".invalid": the preview says why each row would be rejected
    problems = re.findall(r'data-testid="preview-error"[^>]*>([^<]*)<', page)
    assert problems == [
        "Email 1 · Email address (column Primary Email): contact1@invalid is not an email address",
        "Email 1 · Email address (column Primary Email): contact2@invalid is not an email address",
    ]

    # ignore "Primary Email", map "Custom 3" to the tags: the preview follows
    form = _mapping_form(page, **{"map-4": "", "map-34": "tags", "action": "preview"})
    page = text(browser.post(step2, form))
    assert re.search(r'<select id="map-34" name="map-34">.*?<option value="tags" selected', page, re.S)
    assert re.search(r'<select id="map-4" name="map-4">\s*<option value="" selected', page, re.S)
    assert "<dd>custom3</dd>" in page and 'data-testid="preview-error"' not in page

    # dry run: counts, nothing stored, the file is kept for the real run
    form = _mapping_form(page, dry_run="1", action="run")
    response = browser.post(step2, form)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/{token}/run")
    page = text(browser.get(response.headers["Location"]))
    assert 'id="dry-run-notice"' in page
    assert '<dd id="report-created">2</dd>' in page and '<dd id="report-rejected">0</dd>' in page
    assert 'id="revert-import"' not in page and 'id="back-to-mapping"' in page
    assert _count(Contact) == 0 and _count(ImportBatch) == 0

    # the real run: contacts stored with the changed mapping, the upload deleted
    page = text(browser.get(step2))
    assert 'name="dry_run" value="1" checked' in page
    form = _mapping_form(page, dry_run=None, action="run")
    form.pop("dry_run", None)
    page = text(browser.get(browser.post(step2, form).headers["Location"]))
    assert '<dd id="report-created">2</dd>' in page and 'id="dry-run-notice"' not in page
    assert not (Path(wizard.config["IMPORT_FOLDER"]) / f"{token}.upload").exists()
    contacts = db.session.scalars(select(Contact).order_by(Contact.last_name)).all()
    assert [c.last_name for c in contacts] == ["one", "two"]
    assert [t.name for t in contacts[1].tags] == ["custom3"]
    assert browser.get(step2).status_code == 302  # the file is gone: back to step 1

    # the report, as JSON and CSV
    report = json.loads(browser.get(f"/contacts/import/{token}/report.json").get_data())
    assert report["created"] == 2 and report["batch"]
    csv_report = browser.get(f"/contacts/import/{token}/report.csv")
    assert csv_report.mimetype == "text/csv" and "created,,2" in csv_report.get_data(as_text=True)

    # past imports, then revert
    history = text(browser.get("/contacts/imports"))
    assert f'data-batch="{report["batch"]}"' in history and f'id="revert-{report["batch"]}"' in history
    response = browser.post(f"/contacts/imports/{report['batch']}/revert")
    assert response.status_code == 302
    history = text(browser.get("/contacts/imports"))
    assert "Import reverted: 2 contacts deleted" in history
    assert 'data-testid="reverted"' in history and f'id="revert-{report["batch"]}"' not in history
    db.session.rollback()
    assert all(c.deleted_at is not None for c in db.session.scalars(select(Contact)))


def test_rejected_rows_are_listed_with_their_line_and_reason(browser):
    content = b"Nom;Courriel\nMartin;martin@example.fr\nDurand;not-an-email\n"
    step2 = browser.upload(content, "clients.csv").headers["Location"]
    page = text(browser.get(step2))
    assert '<dd id="detected-delimiter">;</dd>' in page
    assert re.search(r'data-position="3" class="preview-rejected"', page)
    assert "not-an-email" in page
    form = _mapping_form(page, action="run")
    form.pop("dry_run", None)
    page = text(browser.get(browser.post(step2, form).headers["Location"]))
    assert '<dd id="report-created">1</dd>' in page and '<dd id="report-rejected">1</dd>' in page
    assert re.search(r'data-testid="rejected-row"><td>3</td><td>[^<]*not-an-email', page)


def test_bad_files_get_a_clear_message(browser, wizard):
    response = browser.upload(b"PK\x03\x04\x14\x00\x06\x00binary", "contacts.xlsx")
    assert response.status_code == 400
    assert "contacts.xlsx is not a CSV or vCard file" in text(response)
    response = browser.upload(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.csv")
    assert response.status_code == 400 and "photo.csv is not a text file" in text(response)
    response = browser.upload(b"", "empty.csv")
    assert response.status_code == 400 and "The file empty.csv is empty." in text(response)
    response = browser.upload(b"a" * 300_000, "huge.csv")
    assert response.status_code == 413 and "The file is too large: at most 0.19 MB." in text(response)
    response = browser.post("/contacts/import", {})
    assert response.status_code == 400 and "Choose a file to import." in text(response)
    # nothing was kept
    assert list(Path(wizard.config["IMPORT_FOLDER"]).iterdir()) == []


def test_unrecognised_columns_can_be_mapped_by_hand(browser):
    step2 = browser.upload(b"Foo,Bar\nAda,Lovelace\n", "odd.csv").headers["Location"]
    page = text(browser.get(step2))
    assert "No column was recognised" in page
    page = text(browser.post(step2, {"map-0": "first_name", "map-1": "last_name", "action": "preview"}))
    assert "No column was recognised" not in page and "<dd>Lovelace</dd>" in page


def test_a_vcard_file_is_imported(browser):
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Curie;Marie;;;\r\nFN:Marie Curie\r\nEMAIL:marie@example.fr\r\nEND:VCARD\r\n"
    step2 = browser.upload(card, "marie.vcf").headers["Location"]
    page = text(browser.get(step2))
    assert '<dd id="detected-format">vCard</dd>' in page and 'id="columns-table"' not in page
    page = text(
        browser.get(
            browser.post(step2, {"mode": "create", "match": "email", "action": "run"}).headers["Location"]
        )
    )
    assert '<dd id="report-created">1</dd>' in page


def test_the_wizard_belongs_to_its_user(browser, wizard):
    step2 = browser.upload(_thunderbird(), "thunderbird-export.csv").headers["Location"]
    other = Browser(wizard.test_client(), quick_user("sam@example.com", name="Sam"))
    assert other.get(step2).status_code == 404
    assert other.get(step2 + "/status").status_code == 404
    assert browser.get("/contacts/import/..%2F..%2Fetc").status_code == 404


def test_cancel_deletes_the_file_and_old_files_are_swept(browser, wizard):
    from crmcore.interchange import runs

    step2 = browser.upload(_thunderbird(), "thunderbird-export.csv").headers["Location"]
    folder = Path(wizard.config["IMPORT_FOLDER"])
    assert browser.post(step2, {"action": "cancel"}).status_code == 302
    assert list(folder.iterdir()) == []
    browser.upload(_thunderbird(), "thunderbird-export.csv")
    with wizard.test_request_context():
        assert runs.sweep() == 0
        assert runs.sweep(now=__import__("time").time() + runs.MAX_AGE + 10) == 2
    assert list(folder.iterdir()) == []


def test_a_big_file_runs_in_the_background_with_progress(crm_app_factory, tmp_path):
    from crmcore.interchange import runs

    application = crm_app_factory(IMPORT_FOLDER=str(tmp_path / "imports"), IMPORT_INLINE_SIZE=0)
    with application.app_context():
        browser = Browser(application.test_client(), quick_user("boss@example.com", is_admin=True))
        content = "first_name,last_name,email\n" + "".join(
            f"Ada{i},Lovelace{i},ada{i}@example.org\n" for i in range(30)
        )
        step2 = browser.upload(content.encode(), "people.csv").headers["Location"]
        token = step2.rsplit("/", 1)[1]
        response = browser.post(step2, {"mode": "create", "match": "email", "action": "run"})
        thread = runs.RUNNING.get(token)
        if thread is not None:
            thread.join(timeout=60)
        status = browser.get(f"{step2}/status").get_json()
        assert status["state"] == "done" and status["percent"] == 100 and status["done"] == 30
        assert status["counts"]["created"] == 30
        page = text(browser.get(response.headers["Location"]))
        assert '<dd id="report-created">30</dd>' in page
        assert _count(Contact) == 30


def test_the_wizard_speaks_french(browser):
    browser.post("/language/fr")
    assert "Importer des contacts" in text(browser.get("/contacts"))
    step2 = browser.upload(_thunderbird(), "thunderbird-export.csv").headers["Location"]
    page = text(browser.get(step2))
    assert "Aperçu des premières lignes" in page and "— ignorer cette colonne —" in page
