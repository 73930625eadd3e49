"""Pages "Check duplicates" and "Merge duplicates": the pairs a user may read, the merge form's choices,
the result page and its undo, access refusals, French labels."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from crmcore.extensions import db
from crmcore.models import Contact


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def text(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


class Browser:
    """A test client signed in through the sign-in page, posting forms with the CSRF token."""

    def __init__(self, app: Any, email: str, is_admin: bool = False, language: str | None = "en") -> None:
        from werkzeug.security import generate_password_hash

        from crmcore.services.users import create_user

        self.user = create_user(email, None, is_admin=is_admin, language=language, name=email.split("@")[0])
        self.user.password_hash = generate_password_hash("password123", method="pbkdf2:sha256:1")
        db.session.commit()
        self.client = app.test_client()
        token = _csrf(self.client.get("/login").get_data(as_text=True))
        response = self.client.post(
            "/login", data={"email": email, "password": "password123", "csrf_token": token}
        )
        assert response.status_code == 302
        self.token = _csrf(self.client.get("/account").get_data(as_text=True))

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, data: Any = None, **kw: Any) -> Any:
        data = dict(data or {})
        data.setdefault("csrf_token", self.token)
        return self.client.post(url, data=data, **kw)


@pytest.fixture
def admin(app):
    return Browser(app, "boss@example.com", is_admin=True)


@pytest.fixture
def pair(app, make_contact):
    """Two records of one person (same email, typo in the name) and an unrelated contact."""
    jean = make_contact(
        first_name="Jean",
        last_name="Dupont",
        job_title="Buyer",
        emails=[{"address": "jean.dupont@acme.example"}],
        phones=[{"number": "06 12 34 56 78"}],
        addresses=[{"kind": "main", "street": "1 rue A", "postal_code": "75001", "city": "Paris"}],
        tags=["VIP"],
    )
    dupond = make_contact(
        first_name="Jean",
        last_name="Dupond",
        job_title="Head buyer",
        birthday="1980-02-03",
        emails=[{"address": "JEAN.DUPONT@acme.example"}, {"address": "jd@home.example"}],
        addresses=[{"kind": "main", "street": "1 rue A", "postal_code": "75001", "city": "Paris"}],
        tags=["Client"],
    )
    other = make_contact(first_name="Zoé", last_name="Martin", emails=[{"address": "zoe@else.example"}])
    db.session.commit()
    return jean, dupond, other


def _merge_form(html: str) -> dict[str, Any]:
    """The merge form as the browser would post it: hidden inputs and checked radios."""
    form = html[html.index('id="merge-form"') :]
    form = form[: form.index("</form>")]
    data: dict[str, Any] = {"ids": re.findall(r'type="hidden" name="ids" value="(\d+)"', form)}
    for tag in re.findall(r"<input [^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="radio"' in tag and " checked" in tag:
            data[name.group(1)] = value.group(1)
    return data


# -- the duplicate list ---------------------------------------------------------------------------------


def test_the_list_links_to_the_duplicate_page(app, admin):
    page = text(admin.get("/contacts"))
    assert 'id="check-duplicates"' in page and 'href="/contacts/duplicates"' in page
    assert '<option value="merge">Merge duplicates</option>' in page


def test_duplicate_page_lists_a_known_pair(app, admin, pair):
    jean, dupond, other = pair
    response = admin.get("/contacts/duplicates")
    assert response.status_code == 200
    page = text(response)
    assert f'data-pair="{jean.id}-{dupond.id}"' in page
    assert page.count('data-testid="duplicate-pair"') == 1  # Zoé has no double
    assert "1 pair of contacts may be duplicates." in page
    block = page[page.index(f'data-pair="{jean.id}-{dupond.id}"') :]
    assert re.search(r"duplicate-score[^>]*>\d+%<", block)
    assert "same email jean.dupont@acme.example" in block
    for shown in (
        jean.number,
        dupond.number,
        "Dupont",
        "Dupond",
        "jd@home.example",
        "06 12 34 56 78",
        "Paris",
    ):
        assert shown in block, shown
    assert f'href="/contacts/merge?ids={jean.id}&amp;ids={dupond.id}"' in response.get_data(as_text=True)


def test_duplicate_page_threshold_and_pagination(app, admin, pair, make_contact, monkeypatch):
    make_contact(first_name="Ann", last_name="Lee", emails=[{"address": "ann@lee.example"}])
    make_contact(first_name="Anne", last_name="Lee", emails=[{"address": "ann@lee.example"}])
    db.session.commit()
    monkeypatch.setattr("crmcore.web.duplicates.PAGE_SIZE", 1)
    first = text(admin.get("/contacts/duplicates"))
    assert "2 pairs of contacts may be duplicates." in first and "Showing 1–1." in first
    assert first.count('data-testid="duplicate-pair"') == 1 and 'id="duplicates-next"' in first
    second = text(admin.get("/contacts/duplicates?page=2"))
    assert "Showing 2–2." in second and 'id="duplicates-prev"' in second
    assert text(admin.get("/contacts/duplicates?page=99")).count('data-testid="duplicate-pair"') == 1
    strict = text(admin.get("/contacts/duplicates?threshold=1"))
    assert 'id="no-duplicates"' in strict
    assert text(admin.get("/contacts/duplicates?threshold=abc&page=-3")).count("duplicate-pair") >= 1


def test_a_kept_scan_is_dropped_when_a_contact_changes(app, admin, pair, make_contact):
    from crmcore.services.contacts import delete_contact

    jean, dupond, _other = pair
    assert "1 pair of contacts may be duplicates." in text(admin.get("/contacts/duplicates"))
    assert "1 pair of contacts may be duplicates." in text(admin.get("/contacts/duplicates"))  # kept
    twin = make_contact(first_name="Zoé", last_name="Martin", emails=[{"address": "zoe@else.example"}])
    db.session.commit()
    assert "2 pairs of contacts may be duplicates." in text(admin.get("/contacts/duplicates"))
    delete_contact(twin.id)
    db.session.commit()
    assert "1 pair of contacts may be duplicates." in text(admin.get("/contacts/duplicates"))


def test_contacts_a_user_may_not_read_never_appear(app, make_contact):
    owner = Browser(app, "owner@example.com")
    other = Browser(app, "other@example.com")
    secret = make_contact(
        user=owner.user,
        first_name="Ada",
        last_name="Zyxsecret",
        visibility="private",
        emails=[{"address": "ada@hidden.example"}],
    )
    twin = make_contact(
        user=owner.user,
        first_name="Ada",
        last_name="Zyxsecret",
        visibility="public_read",
        emails=[{"address": "ada@hidden.example"}],
    )
    db.session.commit()
    assert f'data-pair="{secret.id}-{twin.id}"' in text(owner.get("/contacts/duplicates"))
    page = text(other.get("/contacts/duplicates"))
    assert 'id="no-duplicates"' in page and "ada@hidden.example" not in page
    # The merge screen refuses, without naming the private one.
    response = other.get(f"/contacts/merge?ids={secret.id}&ids={twin.id}")
    assert response.status_code == 403
    refused = text(response)
    assert f"Contact #{secret.id} does not exist or is not visible to you." in refused
    assert f"You may read Ada Zyxsecret ({twin.number}) but not change it" in refused
    assert secret.number not in refused and 'id="merge-form"' not in refused
    # Posting anyway changes nothing.
    posted = other.post(
        "/contacts/merge", {"ids": [str(secret.id), str(twin.id)], "original_id": str(twin.id)}
    )
    assert posted.status_code == 403
    db.session.expire_all()
    assert db.session.get(Contact, secret.id).merged_into_id is None


def test_a_pair_the_user_may_only_read_has_no_merge_button(app, make_contact):
    owner = Browser(app, "owner@example.com")
    other = Browser(app, "other@example.com")
    a = make_contact(user=owner.user, last_name="Readonly", first_name="Bo", visibility="public_read",
                     emails=[{"address": "bo@ro.example"}])  # fmt: skip
    b = make_contact(user=owner.user, last_name="Readonly", first_name="Bo", visibility="public_read",
                     emails=[{"address": "bo@ro.example"}])  # fmt: skip
    db.session.commit()
    page = text(other.get("/contacts/duplicates"))
    assert f'id="merge-{a.id}-{b.id}-refused"' in page and f'id="merge-{a.id}-{b.id}"' not in page


# -- the merge screen ---------------------------------------------------------------------------------


def test_merge_screen_defaults_and_chosen_values(app, admin, pair):
    jean, dupond, _other = pair
    response = admin.get(f"/contacts/merge?ids={jean.id}&ids={dupond.id}")
    assert response.status_code == 200
    page = text(response)
    assert f'id="original-{jean.id}" checked' in page
    form = _merge_form(page)
    # Defaults: the original's value, else the first one filled in.
    assert form["original_id"] == str(jean.id)
    assert form["field.job_title"] == str(jean.id)
    assert form["field.last_name"] == str(jean.id)
    assert form["field.birthday"] == str(dupond.id)
    assert "field.first_name" not in form  # the same on both: nothing to choose
    assert "the same on every contact" in page
    assert 'id="merge-combined-note"' in page and "are added to the original" in page

    # Keep Dupond as the original, but Jean's job title and last name.
    form.update(
        {
            "original_id": str(dupond.id),
            "field.job_title": str(jean.id),
            "field.last_name": str(jean.id),
            "field.birthday": str(dupond.id),
        }
    )
    done = admin.post("/contacts/merge", form)
    assert done.status_code == 302
    merge_url = done.headers["Location"]
    assert re.fullmatch(r"/merges/\d+", merge_url)
    db.session.expire_all()
    kept = db.session.get(Contact, dupond.id)
    assert (kept.job_title, kept.last_name, kept.birthday.isoformat()) == ("Buyer", "Dupont", "1980-02-03")
    assert {e.address.lower() for e in kept.emails} == {"jean.dupont@acme.example", "jd@home.example"}
    assert {t.name for t in kept.tags} == {"VIP", "Client"}
    gone = db.session.get(Contact, jean.id)
    assert gone.merged_into_id == dupond.id and gone.deleted_at is not None

    result = admin.get(merge_url, follow_redirects=True)
    page = text(result)
    assert "1 contact merged into Jean Dupont." in page
    assert f'id="merge-original" href="/contacts/{dupond.id}"' in page
    assert 'id="undo-merge"' in page
    assert "Job title" in page and "Head buyer" in page  # what the merge changed


def test_custom_values_and_photos_are_chosen_too(app, admin, make_contact):
    import io

    from PIL import Image

    from crmcore.models import ContactPhoto
    from crmcore.services.fields import create_definition
    from crmcore.services.photos import set_photo

    def png(color: str) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (8, 8), color).save(out, "PNG")
        return out.getvalue()

    create_definition({"key": "vat", "label_en": "VAT number", "type": "text"})
    a = make_contact(last_name="Twin", custom={"vat": "FR1"}, do_not_email=True)
    b = make_contact(last_name="Twin", custom={"vat": "FR2"})
    set_photo(a.id, png("red"))
    set_photo(b.id, png("blue"))
    db.session.commit()
    page = text(admin.get(f"/contacts/merge?ids={a.id}&ids={b.id}"))
    assert "VAT number" in page and f'id="choose-custom-vat-{b.id}"' in page
    assert f'id="choose-photo-{b.id}"' in page
    assert "Yes if any contact has it" in page  # do not email: never chosen, kept if any has it
    form = _merge_form(page)
    assert (form["field.custom.vat"], form["field.photo"]) == (str(a.id), str(a.id))
    form.update({"field.custom.vat": str(b.id), "field.photo": str(b.id)})
    assert admin.post("/contacts/merge", form).status_code == 302
    db.session.expire_all()
    kept = db.session.get(Contact, a.id)
    assert kept.custom["vat"] == "FR2" and kept.do_not_email is True
    assert db.session.get(ContactPhoto, a.id).data == db.session.get(ContactPhoto, b.id).data


def test_original_chosen_without_script_recomputes_the_defaults(app, admin, pair):
    jean, dupond, _other = pair
    page = text(
        admin.post(
            "/contacts/merge",
            {"ids": [str(jean.id), str(dupond.id)], "original_id": str(dupond.id), "refresh": "1"},
        )
    )
    form = _merge_form(page)
    assert form["original_id"] == str(dupond.id)
    assert form["field.job_title"] == str(dupond.id)
    assert db.session.get(Contact, jean.id).merged_into_id is None  # nothing merged


def test_undo_brings_the_contacts_back(app, admin, pair):
    jean, dupond, _other = pair
    form = _merge_form(text(admin.get(f"/contacts/merge?ids={jean.id}&ids={dupond.id}")))
    merge_url = admin.post("/contacts/merge", form).headers["Location"]
    undone = admin.post(merge_url + "/undo", follow_redirects=True)
    page = text(undone)
    assert "Merge undone: 1 contact is back (Jean Dupond)." in page
    assert 'id="undo-merge"' not in page and "Merge undone" in page
    db.session.expire_all()
    back = db.session.get(Contact, dupond.id)
    assert back.deleted_at is None and back.merged_into_id is None
    assert db.session.get(Contact, jean.id).job_title == "Buyer"
    assert {e.address for e in db.session.get(Contact, jean.id).emails} == {"jean.dupont@acme.example"}
    again = text(admin.post(merge_url + "/undo", follow_redirects=True))
    assert "The merge cannot be undone exactly: this merge was already undone" in again


def test_a_refused_undo_shows_the_reasons(app, admin, pair):
    from crmcore.services.contacts import update_contact

    jean, dupond, _other = pair
    form = _merge_form(text(admin.get(f"/contacts/merge?ids={jean.id}&ids={dupond.id}")))
    merge_url = admin.post("/contacts/merge", form).headers["Location"]
    update_contact(jean.id, {"birthday": "1981-01-01"}, None, "api")
    db.session.commit()
    page = text(admin.get(merge_url))
    assert 'id="undo-conflicts"' in page and 'id="undo-merge"' not in page
    assert "Birthday was changed after the merge" in page
    refused = text(admin.post(merge_url + "/undo", follow_redirects=True))
    assert "The merge cannot be undone exactly: Birthday was changed after the merge" in refused
    db.session.expire_all()
    assert db.session.get(Contact, dupond.id).merged_into_id == jean.id


def test_mass_action_opens_the_merge_screen(app, admin, pair):
    jean, dupond, other = pair
    response = admin.post(
        "/contacts/mass", {"action": "merge", "ids": [str(jean.id), str(dupond.id)], "next": "/contacts"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/contacts/merge?ids={jean.id}&ids={dupond.id}"
    alone = admin.post("/contacts/mass", {"action": "merge", "ids": [str(jean.id)], "next": "/contacts"})
    assert alone.headers["Location"] == "/contacts"
    assert "Select at least two contacts to merge." in text(admin.get("/contacts"))
    # Three at once: every contact side by side.
    page = text(admin.get(f"/contacts/merge?ids={jean.id}&ids={dupond.id}&ids={other.id}"))
    assert all(f'id="original-{c.id}"' in page for c in pair)
    assert "Merge 2 contacts into the original" in page


def test_bad_merge_requests_are_explained(app, admin, pair, make_contact):
    jean, dupond, _other = pair
    acme = make_contact(kind="organization", name="ACME")
    db.session.commit()
    few = admin.get(f"/contacts/merge?ids={jean.id}")
    assert few.status_code == 400 and "Choose at least two contacts to merge." in text(few)
    assert admin.get("/contacts/merge?ids=abc").status_code == 400
    mixed = admin.get(f"/contacts/merge?ids={jean.id}&ids={acme.id}")
    assert mixed.status_code == 403
    assert "People and organizations cannot be merged together" in text(mixed)
    # A choice naming a contact outside the merge is ignored; a missing original is asked for.
    no_original = admin.post("/contacts/merge", {"ids": [str(jean.id), str(dupond.id)]})
    assert no_original.status_code == 422 and "Choose the original." in text(no_original)
    ignored = admin.post(
        "/contacts/merge",
        {"ids": [str(jean.id), str(dupond.id)], "original_id": str(jean.id), "field.job_title": "999"},
    )
    assert ignored.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, jean.id).job_title == "Buyer"
    # Merging the merged contact again is refused with the reason.
    refused = admin.get(f"/contacts/merge?ids={jean.id}&ids={dupond.id}")
    assert refused.status_code == 403
    assert f"Jean Dupond ({dupond.number}) was already merged." in text(refused)


# -- French ----------------------------------------------------------------------------------------------


def test_pages_in_french(app, pair):
    jean, dupond, _other = pair
    browser = Browser(app, "fr@example.com", is_admin=True, language="fr")
    listing = text(browser.get("/contacts"))
    assert "Vérifier les doublons" in listing and "Fusionner les doublons" in listing
    page = text(browser.get("/contacts/duplicates"))
    assert "<h1>Vérifier les doublons</h1>" in page
    assert "1 paire de contacts pourrait être en double." in page
    assert "même email jean.dupont@acme.example" in page
    assert re.search(r"duplicate-score[^>]*>\d+\s%<", page)
    assert ">Fusionner</a>" in page
    merge = text(browser.get(f"/contacts/merge?ids={jean.id}&ids={dupond.id}"))
    for label in ("Fusionner les doublons", "Garder comme original", "Fonction", "Combinés automatiquement"):
        assert label in merge, label
    merge_url = browser.post("/contacts/merge", _merge_form(merge)).headers["Location"]
    done = text(browser.get(merge_url))
    assert "1 contact fusionné dans Jean Dupont." in done and "Annuler la fusion" in done
    undone = text(browser.post(merge_url + "/undo", follow_redirects=True))
    assert "Fusion annulée" in undone
