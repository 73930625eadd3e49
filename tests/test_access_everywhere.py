"""Access rules hold on every route: core, built-in and plugin, pages and API.

The test enumerates the application's URL map, so a route added later is covered without editing it.
"""

from __future__ import annotations

import re

import pytest

SECRET = "Zyxwvutsecret"
SKIP_ENDPOINTS = {"static", "auth.login", "auth.logout", "auth.set_language"}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def world(app, make_user, make_contact, api_client):
    from crmcore.services.users import create_team, update_user

    owner = make_user(email="owner@example.com")
    other = make_user(email="other@example.com")
    teammate = make_user(email="teammate@example.com")
    team, other_team = create_team("Owners"), create_team("Others")
    update_user(teammate.id, team_ids=[team.id])
    update_user(other.id, team_ids=[other_team.id])  # a team, but not the contact's
    private = make_contact(
        user=owner,
        first_name="Ada",
        last_name=SECRET,
        visibility="private",
        team_id=team.id,
        emails=[{"address": "secret@hidden.example", "accepts_email": True}],
        phones=[{"number": "+33 6 99 88 77 66", "sms": True}],
        addresses=[
            {
                "kind": "main",
                "street": "1 rue Cachée",
                "postal_code": "75001",
                "city": "Paris",
                "country": "FR",
            }
        ],
    )
    readable = make_contact(user=owner, first_name="Bea", last_name="Readonly", visibility="public_read")
    from crmcore.services.contacts import add_warning
    from crmcore.services.notes import add_note

    note = add_note(private.id, "hidden note", user=owner)
    warning = add_warning(private.id, "hidden warning", user=owner)
    return {
        "owner": owner,
        "other": other,
        "private": private,
        "readable": readable,
        "other_api": api_client(other),
        "owner_api": api_client(owner),
        "teammate_api": api_client(teammate),
        "note": note,
        "warning": warning,
    }


def _signed_in(app, email):
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"email": email, "password": "password123", "csrf_token": token})
    assert response.status_code == 302
    page = client.get("/account").get_data(as_text=True)
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _url(rule, world, contact_id):
    values = {}
    for argument in rule.arguments:
        if argument == "contact_id":
            values[argument] = contact_id
        elif argument == "note_id":
            values[argument] = world["note"].id
        elif argument == "warning_id":
            values[argument] = world["warning"].id
        elif rule._converters[argument].__class__.__name__ in ("IdConverter", "IntegerConverter"):
            values[argument] = 1
        else:
            values[argument] = "x"
    return rule.build(values, append_unknown=False)[1]


def _rules(app, with_contact):
    for rule in app.url_map.iter_rules():
        if (
            rule.endpoint in SKIP_ENDPOINTS
            or rule.endpoint.endswith("static")
            or rule.endpoint.startswith("api-docs")
        ):
            continue
        if ("contact_id" in rule.arguments) == with_contact:
            yield rule


def test_every_contact_route_hides_a_private_contact_from_another_user(app, world):
    web, csrf = _signed_in(app, "other@example.com")
    checked = 0
    for rule in _rules(app, with_contact=True):
        url = _url(rule, world, world["private"].id)
        client = world["other_api"] if url.startswith("/api/") else web
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            kwargs = {"json": {}} if url.startswith("/api/") and method in UNSAFE else {}
            if not url.startswith("/api/") and method in UNSAFE:
                kwargs = {"data": {"csrf_token": csrf}}
            response = client.open(url, method=method, **kwargs)
            assert response.status_code in (403, 404), f"{method} {url} -> {response.status_code}"
            assert SECRET not in response.get_data(as_text=True), f"{method} {url} leaks the contact"
            checked += 1
    assert checked >= 10  # the core alone has more contact routes than this


def test_the_owner_still_reaches_them(app, world):
    response = world["owner_api"].get(f"/api/v1/contacts/{world['private'].id}")
    assert response.status_code == 200 and response.json["last_name"] == SECRET


def test_a_member_of_its_team_reaches_them_as_the_owner_does(app, world):
    owner_web, _csrf = _signed_in(app, "owner@example.com")
    teammate_web, _csrf = _signed_in(app, "teammate@example.com")
    checked = 0
    for rule in _rules(app, with_contact=True):
        if "GET" not in rule.methods:
            continue
        url = _url(rule, world, world["private"].id)
        api = url.startswith("/api/")
        owner = (world["owner_api"] if api else owner_web).get(url)
        teammate = (world["teammate_api"] if api else teammate_web).get(url)
        assert teammate.status_code == owner.status_code, f"GET {url}"
        checked += 1
    assert checked >= 5
    assert world["teammate_api"].get(f"/api/v1/contacts/{world['private'].id}").status_code == 200


def test_lists_searches_and_exports_never_show_it(app, world):
    web, _csrf = _signed_in(app, "other@example.com")
    probes = [
        "",
        "?q=" + SECRET,
        "?q=secret@hidden",
        "?q=0699887766",
        "?q=Ada",
        "?format=csv",
        "?format=json",
        "?format=vcf",
        "?view=cards",
        "?view=list",
    ]
    checked = 0
    for rule in _rules(app, with_contact=False):
        if "GET" not in rule.methods or rule.arguments:
            continue
        client = world["other_api"] if rule.rule.startswith("/api/") else web
        for probe in probes:
            response = client.get(rule.rule + probe)
            body = response.get_data(as_text=True)
            # What identifies the contact, minus what a page may echo back from the query itself.
            secrets = {SECRET, "secret@hidden.example", "+33699887766", world["private"].number}
            for secret in secrets - {s for s in secrets if s.lower() in probe.lower()}:
                assert secret not in body, f"GET {rule.rule}{probe} leaks {secret}"
            checked += 1
    assert checked > 20


def test_public_read_is_readable_but_not_writable_by_others(app, world):
    contact_id = world["readable"].id
    api = world["other_api"]
    assert api.get(f"/api/v1/contacts/{contact_id}").status_code == 200
    assert api.patch(f"/api/v1/contacts/{contact_id}", json={"job_title": "x"}).status_code == 403
    assert api.delete(f"/api/v1/contacts/{contact_id}").status_code == 403
    assert api.post(f"/api/v1/contacts/{contact_id}/notes", json={"body": "x"}).status_code == 403
