""" "Not a duplicate": a pair marked so is never proposed again (scan, API, CLI, page, check while typing)
until the marker is removed; access, bad input, merges and undo, deletion for good."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import delete, func, select

from crmcore.cli import main
from crmcore.errors import NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, DuplicateDismissal
from crmcore.services import duplicates as d
from crmcore.services import merge
from tests.test_web_duplicates import Browser, text


@pytest.fixture
def people(make_contact):
    """Two records looking like one person (same phone, typo in the name) and a third one like them."""
    jean = make_contact(
        first_name="Jean",
        last_name="Dupont",
        emails=[{"address": "jean.dupont@example.com"}],
        phones=[{"number": "06 12 34 56 78"}],
    )
    jean2 = make_contact(first_name="jean", last_name="DUPOND", phones=[{"number": "+33612345678"}])
    jean3 = make_contact(
        first_name="Jean", last_name="Dupont", emails=[{"address": "jean.dupont@example.com"}]
    )
    db.session.commit()
    return jean, jean2, jean3


def listed(pairs) -> set[tuple[int, int]]:
    return {(p.a, p.b) for p in pairs}


def check_ids(**kw) -> list[int]:
    return [c.contact.id for c in d.check_duplicates({"first_name": "Jean", "last_name": "Dupont"}, **kw)]


# -- the service -------------------------------------------------------------------------------------


def test_a_dismissed_pair_is_no_longer_proposed_until_undismissed(app, people, make_user):
    jean, jean2, jean3 = people
    boss = make_user(email="boss@example.com", is_admin=True, password=None)
    pair = (jean.id, jean2.id)
    assert pair in listed(d.find_duplicates())

    # Either order: stored once, lower id first, with who and when.
    marker, created = d.dismiss_pair(jean2.id, jean.id, boss)
    assert created and (marker.contact_a_id, marker.contact_b_id) == pair and marker.user_id == boss.id
    assert marker.created_at is not None
    assert d.dismissed_pairs() == {pair}
    found = listed(d.find_duplicates())
    assert pair not in found
    assert (jean.id, jean3.id) in found  # only that pair is left out
    assert [d.dismissal_to_dict(m)["a"] for m in d.list_dismissed(boss)] == [jean.id]
    assert d.count_dismissed(boss) == 1

    # Twice: the first marker stands (same author and date), nothing is added.
    again, created = d.dismiss_pair(jean.id, jean2.id, None)
    assert not created and again.user_id == boss.id
    assert db.session.scalar(select(func.count()).select_from(DuplicateDismissal)) == 1

    d.undismiss(jean2.id, jean.id, boss)
    assert pair in listed(d.find_duplicates())
    assert d.list_dismissed() == [] and d.dismissed_pairs() == frozenset()
    with pytest.raises(NotFound):
        d.undismiss(jean.id, jean2.id, boss)  # no marker any more


def test_find_pairs_leaves_out_the_dismissed_pairs(app, people):
    jean, jean2, _jean3 = people
    profiles = d.load_profiles()
    settings = d.settings_from_config()
    assert (jean.id, jean2.id) in listed(d.find_pairs(profiles, settings))
    assert (jean.id, jean2.id) not in listed(
        d.find_pairs(profiles, settings, dismissed={(jean.id, jean2.id)})
    )
    kept = d.find_duplicates(exclude_dismissed=False)
    d.dismiss_pair(jean.id, jean2.id)
    assert (jean.id, jean2.id) in listed(d.find_duplicates(exclude_dismissed=False))
    assert listed(d.without_dismissed(kept)) == listed(kept) - {(jean.id, jean2.id)}


def test_the_check_while_typing_leaves_out_the_dismissed_candidates(app, people):
    jean, jean2, jean3 = people
    assert {jean2.id, jean3.id} <= set(check_ids(exclude_id=jean.id))
    d.dismiss_pair(jean.id, jean3.id)
    # Editing Jean: Jean 3 "is not" him any more; Jean 2 still may be.
    editing = check_ids(exclude_id=jean.id)
    assert jean3.id not in editing and jean2.id in editing
    # Editing Jean 3 (the other side of the marker): the same.
    assert jean.id not in check_ids(exclude_id=jean3.id)
    # A new contact being typed is no pair: every candidate is shown.
    assert {jean.id, jean3.id} <= set(check_ids())
    d.undismiss(jean.id, jean3.id)
    assert jean3.id in check_ids(exclude_id=jean.id)


def test_bad_pairs_are_refused_naming_the_field(app, people):
    jean, jean2, _jean3 = people
    for a, b, field in (
        ("1", jean.id, "a"),
        (jean.id, None, "b"),
        (True, jean.id, "a"),
        (0, jean.id, "a"),
        (jean.id, -4, "b"),
        (jean.id, 2**40, "b"),
        (jean.id, jean.id, "b"),
    ):
        with pytest.raises(ValidationError) as caught:
            d.dismiss_pair(a, b)
        assert field in caught.value.errors, (a, b)
        with pytest.raises(ValidationError):
            d.undismiss(a, b)
    with pytest.raises(NotFound) as caught:
        d.dismiss_pair(jean.id, 2147483647)
    assert caught.value.details["field"] == "b"
    assert d.dismissed_pairs() == frozenset()


def test_only_users_who_may_read_both_contacts(app, make_user, make_contact):
    owner = make_user(email="owner@example.com", password=None)
    other = make_user(email="other@example.com", password=None)
    secret = make_contact(user=owner, first_name="Ada", last_name="Lovelace", visibility="private")
    visible = make_contact(user=owner, first_name="Ada", last_name="Lovelace")
    with pytest.raises(NotFound) as caught:
        d.dismiss_pair(visible.id, secret.id, other)
    assert caught.value.details["field"] == "b"
    assert d.dismissed_pairs() == frozenset()
    d.dismiss_pair(secret.id, visible.id, owner)
    assert len(d.list_dismissed(owner)) == 1
    assert d.list_dismissed(other) == [] and d.count_dismissed(other) == 0
    with pytest.raises(NotFound):
        d.undismiss(secret.id, visible.id, other)
    assert len(d.dismissed_pairs()) == 1


def test_a_merge_leaves_the_marker_alone_and_undo_finds_it_again(app, people):
    jean, jean2, jean3 = people
    d.dismiss_pair(jean.id, jean2.id)
    d.dismiss_pair(jean2.id, jean3.id)
    # The user changed their mind: Jean 2 is merged into Jean after all.
    record = merge.merge_contacts(jean.id, [jean2.id], {})
    assert all(jean2.id not in pair for pair in listed(d.find_duplicates()))
    # Markers of a contact merged away no longer matter: not listed, still stored.
    assert d.list_dismissed() == [] and len(d.dismissed_pairs()) == 2
    with pytest.raises(NotFound):
        d.dismiss_pair(jean2.id, jean3.id)  # merged away: not a contact one can mark any more
    merge.undo_merge(record.id)
    assert {(m.contact_a_id, m.contact_b_id) for m in d.list_dismissed()} == {
        (jean.id, jean2.id),
        (jean2.id, jean3.id),
    }
    found = listed(d.find_duplicates())
    assert (jean.id, jean2.id) not in found and (jean2.id, jean3.id) not in found
    assert (jean.id, jean3.id) in found


def test_deleting_a_contact_for_good_removes_its_markers(app, people):
    jean, jean2, _jean3 = people
    d.dismiss_pair(jean.id, jean2.id)
    db.session.execute(delete(Contact).where(Contact.id == jean2.id))
    db.session.commit()
    assert d.dismissed_pairs() == frozenset()


# -- API ---------------------------------------------------------------------------------------------


def test_api_dismiss_list_and_undismiss(app, people, client):
    jean, jean2, _jean3 = people

    def scanned() -> set[tuple[int, int]]:
        response = client.get("/api/v1/duplicates")
        assert response.status_code == 200
        return {(p["a"], p["b"]) for p in response.json}

    def checked() -> list[int]:
        response = client.get(
            f"/api/v1/duplicates/check?first_name=Jean&last_name=Dupond&exclude_id={jean2.id}"
        )
        assert response.status_code == 200
        return [c["contact"]["id"] for c in response.json]

    assert (jean.id, jean2.id) in scanned() and jean.id in checked()
    response = client.post("/api/v1/duplicates/dismissed", json={"a": jean2.id, "b": jean.id})
    assert response.status_code == 201, response.json
    assert set(response.json) == {"a", "b", "user_id", "created_at"}
    assert (response.json["a"], response.json["b"]) == (jean.id, jean2.id)
    assert response.json["user_id"] is not None
    assert client.post("/api/v1/duplicates/dismissed", json={"a": jean.id, "b": jean2.id}).status_code == 200
    assert (jean.id, jean2.id) not in scanned() and jean.id not in checked()
    listing = client.get("/api/v1/duplicates/dismissed")
    assert listing.status_code == 200 and [(m["a"], m["b"]) for m in listing.json] == [(jean.id, jean2.id)]
    assert client.get("/api/v1/duplicates/dismissed?limit=1&offset=1").json == []

    response = client.delete(f"/api/v1/duplicates/dismissed/{jean2.id}/{jean.id}")
    assert response.status_code == 204
    assert (jean.id, jean2.id) in scanned() and jean.id in checked()
    assert client.get("/api/v1/duplicates/dismissed").json == []
    again = client.delete(f"/api/v1/duplicates/dismissed/{jean.id}/{jean2.id}")
    assert again.status_code == 404 and again.json["message"]


def test_api_errors_name_the_field(app, people, client):
    jean, _jean2, _jean3 = people
    url = "/api/v1/duplicates/dismissed"
    for body, field in (
        ({"a": jean.id}, "b"),
        ({"a": "x", "b": jean.id}, "a"),
        ({"a": jean.id, "b": 0}, "b"),
        ({"a": jean.id, "b": 2**31}, "b"),
        ({"a": jean.id, "b": jean.id}, "b"),
        ({"a": jean.id, "b": 1.5}, "b"),
    ):
        response = client.post(url, json=body)
        assert response.status_code == 422, (body, response.json)
        assert field in response.json["errors"], (body, response.json)
    assert client.post(url, json={"a": jean.id, "b": 2, "c": 3}).status_code == 422
    missing = client.post(url, json={"a": jean.id, "b": 2147483647})
    assert missing.status_code == 404 and missing.json["field"] == "b"
    assert client.delete(f"{url}/{jean.id}/2147483647").status_code == 404
    assert client.delete(f"{url}/{jean.id}/0").status_code == 404
    assert client.delete(f"{url}/{jean.id}/{jean.id}").status_code == 422
    assert client.get(f"{url}?limit=0").status_code == 422
    assert client.get(f"{url}?offset=-1").status_code == 422


def test_api_another_user_who_cannot_see_one_contact_gets_404(app, make_user, make_contact, api_client):
    owner = make_user(email="owner@example.com", password=None)
    other = make_user(email="other@example.com", password=None)
    secret = make_contact(user=owner, first_name="Ada", last_name="Lovelace", visibility="private")
    visible = make_contact(user=owner, first_name="Ada", last_name="Lovelace")
    owner_api, other_api = api_client(owner), api_client(other)
    url = "/api/v1/duplicates/dismissed"
    refused = other_api.post(url, json={"a": secret.id, "b": visible.id})
    assert refused.status_code == 404 and refused.json["field"] == "a"
    assert owner_api.post(url, json={"a": secret.id, "b": visible.id}).status_code == 201
    assert other_api.get(url).json == []
    assert "Lovelace" not in other_api.get(url).get_data(as_text=True)
    assert other_api.delete(f"{url}/{secret.id}/{visible.id}").status_code == 404
    assert [(m["a"], m["b"]) for m in owner_api.get(url).json] == [(secret.id, visible.id)]


# -- CLI ---------------------------------------------------------------------------------------------


def test_cli_dismiss_and_undismiss_by_id_or_number(app, people, runner):
    jean, jean2, _jean3 = people

    def pairs() -> list[list[int]]:
        result = runner.invoke(main, ["duplicates", "--json"])
        assert result.exit_code == 0, result.output
        return [[p["a"], p["b"]] for p in json.loads(result.stdout)]

    assert [jean.id, jean2.id] in pairs()
    result = runner.invoke(main, ["duplicates", "--dismiss", jean2.number.lower(), str(jean.id)])
    assert result.exit_code == 0, result.output
    assert "marked 'not a duplicate'" in result.output
    assert [jean.id, jean2.id] not in pairs()
    again = runner.invoke(main, ["duplicates", "--dismiss", str(jean.id), jean2.number])
    assert again.exit_code == 0 and "already marked" in again.output
    listing = runner.invoke(main, ["duplicates", "--dismissed", "--json"])
    assert listing.exit_code == 0
    assert [(m["a"], m["b"], m["user_id"]) for m in json.loads(listing.stdout)] == [(jean.id, jean2.id, None)]

    result = runner.invoke(main, ["duplicates", "--undismiss", jean.number, jean2.number])
    assert result.exit_code == 0, result.output
    assert [jean.id, jean2.id] in pairs()


def test_cli_errors(app, people, runner):
    jean, jean2, _jean3 = people
    for args, message in (
        (["--dismiss", str(jean.id), "C-999999"], "no contact has the number"),
        (["--dismiss", str(jean.id), "2147483647"], "b: contact 2147483647 not found"),
        (["--dismiss", str(jean.id), str(jean.id)], "is the same contact as a"),
        (["--dismiss", str(jean.id), "99999999999999"], "must be a contact id"),
        (["--undismiss", str(jean.id), str(jean2.id)], "not marked"),
        (
            ["--dismiss", str(jean.id), str(jean2.id), "--undismiss", str(jean.id), str(jean2.id)],
            "choose one",
        ),
    ):
        result = runner.invoke(main, ["duplicates", *args])
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert d.dismissed_pairs() == frozenset()


# -- the page ----------------------------------------------------------------------------------------


@pytest.fixture
def admin(app):
    return Browser(app, "boss@example.com", is_admin=True)


def test_page_not_a_duplicate_then_undo(app, admin, people, monkeypatch):
    jean, jean2, jean3 = people
    page = text(admin.get("/contacts/duplicates"))
    assert f'data-pair="{jean.id}-{jean2.id}"' in page
    assert f'id="dismiss-{jean.id}-{jean2.id}"' in page and "Not a duplicate" in page
    assert 'id="dismissed-pairs"' not in page

    # Marking a pair does not scan the base again: the kept scan is filtered.
    scans = []
    real = d.find_duplicates
    monkeypatch.setattr(d, "find_duplicates", lambda *a, **k: scans.append(a) or real(*a, **k))
    response = admin.post("/contacts/duplicates/dismiss", {"a": jean.id, "b": jean2.id, "threshold": "0.8"})
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/contacts/duplicates?threshold=0.8"
    )
    page = text(admin.get(response.headers["Location"]))
    assert "are marked as not duplicates: this pair will not be proposed again." in page
    assert f'data-pair="{jean.id}-{jean2.id}"' in page  # in the list of dismissed pairs only
    assert page.count(f'data-pair="{jean.id}-{jean2.id}"') == 1
    assert f'id="dismiss-{jean.id}-{jean2.id}"' not in page
    assert f'id="dismiss-{jean.id}-{jean3.id}"' in page
    dismissed = page[page.index('id="dismissed-pairs"') :]
    assert f'id="undismiss-{jean.id}-{jean2.id}"' in dismissed
    assert "1 pair is never proposed as duplicates." in dismissed and "by boss" in dismissed
    assert scans == []
    assert (jean.id, jean2.id) not in listed(real())  # the API and CLI too

    response = admin.post(
        "/contacts/duplicates/undismiss", {"a": jean.id, "b": jean2.id}, follow_redirects=True
    )
    page = text(response)
    assert "The pair may be proposed as duplicates again." in page
    assert f'id="dismiss-{jean.id}-{jean2.id}"' in page and 'id="dismissed-pairs"' not in page
    assert scans == []

    again = text(
        admin.post("/contacts/duplicates/undismiss", {"a": jean.id, "b": jean2.id}, follow_redirects=True)
    )
    assert "This pair was not marked as not duplicates (any more)." in again


def test_page_bad_posts(app, admin, people):
    jean, jean2, _jean3 = people
    for data, message in (
        ({"a": jean.id}, "Choose two contacts."),
        ({"a": "x", "b": jean.id}, "Choose two contacts."),
        ({"a": jean.id, "b": "99999999999"}, "Choose two contacts."),
        ({"a": jean.id, "b": jean.id}, "Choose two different contacts."),
    ):
        page = text(admin.post("/contacts/duplicates/dismiss", data, follow_redirects=True))
        assert message in page, data
    assert admin.post("/contacts/duplicates/dismiss", {"a": jean.id, "b": 2147483647}).status_code == 404
    without_token = admin.client.post("/contacts/duplicates/dismiss", data={"a": jean.id, "b": jean2.id})
    assert without_token.status_code == 400
    assert d.dismissed_pairs() == frozenset()


def test_page_hides_and_refuses_contacts_the_user_may_not_read(app, make_user, make_contact):
    owner = make_user(email="owner@example.com", password=None)
    secret = make_contact(user=owner, first_name="Ada", last_name="Zyxsecret", visibility="private")
    visible = make_contact(user=owner, first_name="Ada", last_name="Zyxsecret")
    d.dismiss_pair(secret.id, visible.id, owner)
    db.session.commit()
    other = Browser(app, "other@example.com")
    page = text(other.get("/contacts/duplicates"))
    assert "Zyxsecret" not in page and 'id="dismissed-pairs"' not in page
    assert other.post("/contacts/duplicates/undismiss", {"a": secret.id, "b": visible.id}).status_code == 404
    assert other.post("/contacts/duplicates/dismiss", {"a": secret.id, "b": visible.id}).status_code == 404
    assert len(d.dismissed_pairs()) == 1


def test_page_in_french(app, people):
    jean, jean2, _jean3 = people
    browser = Browser(app, "fr@example.com", is_admin=True, language="fr")
    page = text(browser.get("/contacts/duplicates"))
    assert ">Pas un doublon</button>" in page
    page = text(
        browser.post("/contacts/duplicates/dismiss", {"a": jean.id, "b": jean2.id}, follow_redirects=True)
    )
    assert "sont marqués « pas un doublon » : cette paire ne sera plus proposée." in page
    assert "Marquées « pas un doublon »" in page and "1 paire n’est plus proposée comme doublon." in page
    assert re.search(r'id="undismiss-\d+-\d+">Annuler</button>', page)
    page = text(
        browser.post("/contacts/duplicates/undismiss", {"a": jean.id, "b": jean2.id}, follow_redirects=True)
    )
    assert "pourra de nouveau être proposée" in page
