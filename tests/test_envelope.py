"""Envelopes: the PDF's text (read back with pypdf), page sizes, country conventions, sender, errors."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

MM = 72 / 25.4
SENDER = {
    "ENVELOPE_SENDER_NAME": "Atelier Martin",
    "ENVELOPE_SENDER_STREET": "5 place du Marché",
    "ENVELOPE_SENDER_POSTAL_CODE": "69002",
    "ENVELOPE_SENDER_CITY": "Lyon",
    "ENVELOPE_SENDER_COUNTRY": "FR",
}


@pytest.fixture
def env_app(crm_app_factory):
    application = crm_app_factory(**SENDER)
    with application.app_context():
        yield application


def client_for(application, user):
    from crmcore.services.users import create_token

    _row, token = create_token(user.id, "test")
    test_client = application.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return test_client


@pytest.fixture
def new_contact(env_app):
    """Like ``new_contact``, on the application with a sender configured (one app per test is enough)."""
    from crmcore.services.contacts import create_contact

    def make(user=None, **fields):
        fields.setdefault(
            "kind", "organization" if "name" in fields and "last_name" not in fields else "person"
        )
        return create_contact(fields, user, "api")

    return make


@pytest.fixture
def env_user(env_app):
    from crmcore.services.users import create_user

    return lambda email, is_admin=False: create_user(email, "password123", is_admin=is_admin)


@pytest.fixture
def env_client(env_app, env_user):
    return client_for(env_app, env_user("boss@example.com", is_admin=True))


def pages(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    return [
        (
            [line.strip() for line in page.extract_text().splitlines() if line.strip()],
            (round(float(page.mediabox.width) / MM), round(float(page.mediabox.height) / MM)),
        )
        for page in reader.pages
    ]


def person(new_contact, **address):
    return new_contact(
        salutation="mrs",
        first_name="Claire",
        last_name="Durand",
        addresses=[{"kind": "main", **address}],
    )


def test_france_domestic_dl(env_client, new_contact):
    contact = person(
        new_contact,
        street="12 rue des Lilas",
        street2="Bâtiment B",
        postal_code="75011",
        city="Paris",
        country="FR",
    )
    [(lines, size)] = pages(env_client.get(f"/api/v1/contacts/{contact.id}/envelope.pdf?size=DL"))
    assert size == (220, 110)
    # Sender (no country: same country), then the recipient: complement above the street, CITY in capitals.
    assert lines == [
        "Atelier Martin",
        "5 place du Marché",
        "69002 LYON",
        "Mme Claire Durand",
        "Bâtiment B",
        "12 rue des Lilas",
        "75011 PARIS",
    ]


def test_uk_address_from_france(env_client, new_contact):
    contact = person(
        new_contact, street="10 Downing Street", postal_code="sw1a 2aa", city="London", country="GB"
    )
    [(lines, size)] = pages(env_client.get(f"/api/v1/contacts/{contact.id}/envelope.pdf?size=C5"))
    assert size == (229, 162)
    # Abroad: the sender's country line too; the recipient's country in French, in capitals.
    assert lines[:4] == ["Atelier Martin", "5 place du Marché", "69002 LYON", "FRANCE"]
    assert lines[4:] == ["Mme Claire Durand", "10 Downing Street", "LONDON", "SW1A 2AA", "ROYAUME-UNI"]


def test_us_and_germany(env_client, new_contact):
    us = person(
        new_contact,
        street="350 Fifth Avenue",
        postal_code="10118",
        city="New York",
        region="NY",
        country="US",
    )
    de = new_contact(
        kind="organization",
        name="Müller GmbH",
        addresses=[
            {
                "kind": "main",
                "street": "Hauptstraße 5",
                "postal_code": "10115",
                "city": "Berlin",
                "country": "DE",
            }
        ],
    )
    response = env_client.get(f"/api/v1/envelopes.pdf?ids={us.id},{de.id}&size=C6")
    (us_lines, us_size), (de_lines, de_size) = pages(response)
    assert us_size == de_size == (162, 114)
    assert us_lines[-4:] == ["Mme Claire Durand", "350 Fifth Avenue", "NEW YORK NY 10118", "ÉTATS-UNIS"]
    assert de_lines[-4:] == ["Müller GmbH", "Hauptstraße 5", "10115 Berlin", "ALLEMAGNE"]


def test_sender_language_follows_the_sender_country(crm_app_factory):
    application = crm_app_factory(
        ENVELOPE_SENDER_NAME="Schmidt AG",
        ENVELOPE_SENDER_STREET="Königsallee 1",
        ENVELOPE_SENDER_POSTAL_CODE="40212",
        ENVELOPE_SENDER_CITY="Düsseldorf",
        ENVELOPE_SENDER_COUNTRY="DE",
    )
    with application.app_context():
        from crmcore.services.contacts import create_contact

        contact = create_contact(
            {
                "kind": "person",
                "first_name": "Jean",
                "last_name": "Roux",
                "addresses": [
                    {"street": "1 rue Neuve", "postal_code": "13001", "city": "Marseille", "country": "FR"}
                ],
            }
        )
        from crmcore.services.users import create_user

        client = client_for(application, create_user("de@example.com", "password123", is_admin=True))
        [(lines, _size)] = pages(client.get(f"/api/v1/contacts/{contact.id}/envelope.pdf"))
    assert lines[:4] == ["Schmidt AG", "Königsallee 1", "40212 Düsseldorf", "DEUTSCHLAND"]
    assert lines[-4:] == ["Jean Roux", "1 rue Neuve", "13001 MARSEILLE", "FRANKREICH"]


def test_person_of_an_organization_in_france_company_first(env_client, new_contact):
    org = new_contact(kind="organization", name="Boulangerie Dupain")
    contact = new_contact(
        first_name="Paul",
        last_name="Dupain",
        organization_id=org.id,
        addresses=[{"street": "3 avenue Foch", "postal_code": "33000", "city": "Bordeaux", "country": "FR"}],
    )
    [(lines, _size)] = pages(env_client.get(f"/api/v1/contacts/{contact.id}/envelope.pdf"))
    assert lines[3:] == ["Boulangerie Dupain", "Paul Dupain", "3 avenue Foch", "33000 BORDEAUX"]


def test_admin_set_sender_wins_over_settings(env_app, env_client, new_contact, env_user):
    assert env_client.get("/api/v1/envelope/sender").json["source"] == "settings"
    response = env_client.put(
        "/api/v1/envelope/sender",
        json={
            "name": "Maison Bleue",
            "street": "2 quai Ouest",
            "postal_code": "44000",
            "city": "Nantes",
            "country": "fr",
        },
    )
    assert (
        response.status_code == 200
        and response.json["source"] == "admin"
        and response.json["country"] == "FR"
    )
    contact = person(new_contact, street="1 rue Haute", postal_code="35000", city="Rennes", country="FR")
    [(lines, _size)] = pages(env_client.get(f"/api/v1/contacts/{contact.id}/envelope.pdf"))
    assert lines[:3] == ["Maison Bleue", "2 quai Ouest", "44000 NANTES"]
    bad = env_client.put("/api/v1/envelope/sender", json={"name": "", "country": "XX", "colour": "red"})
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"name", "country", "colour"}
    user = client_for(env_app, env_user("plain@example.com"))
    assert user.put("/api/v1/envelope/sender", json={"name": "Me"}).status_code == 403


def test_contact_without_usable_address_gets_422(env_client, new_contact):
    none = new_contact(first_name="Sans", last_name="Adresse")
    response = env_client.get(f"/api/v1/contacts/{none.id}/envelope.pdf")
    assert response.status_code == 422
    assert "Sans Adresse" in response.json["message"] and "no postal address" in response.json["message"]
    partial = person(new_contact, city="Paris", country="FR")
    response = env_client.get(f"/api/v1/contacts/{partial.id}/envelope.pdf")
    assert response.status_code == 422
    assert "lacks a street and a postal code" in response.json["errors"]["address"][0]
    good = person(new_contact, street="1 rue A", postal_code="75001", city="Paris", country="FR")
    response = env_client.get(f"/api/v1/envelopes.pdf?ids={good.id}&ids={none.id}")
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["ids[1]"]


def test_bad_parameters_and_access(env_app, env_client, new_contact, env_user):
    contact = person(new_contact, street="1 rue A", postal_code="75001", city="Paris", country="FR")
    assert env_client.get(f"/api/v1/contacts/{contact.id}/envelope.pdf?size=A4").status_code == 422
    assert env_client.get(f"/api/v1/contacts/{contact.id}/envelope.pdf?kind=moon").status_code == 422
    assert env_client.get(f"/api/v1/contacts/{contact.id}/envelope.pdf?kind=billing").status_code == 422
    assert env_client.get("/api/v1/envelopes.pdf").status_code == 422
    owner, stranger = env_user("o@example.com"), env_user("s@example.com")
    private = new_contact(
        user=owner,
        last_name="Secret",
        visibility="private",
        addresses=[{"street": "1 rue B", "postal_code": "75001", "city": "Paris", "country": "FR"}],
    )
    assert client_for(env_app, stranger).get(f"/api/v1/contacts/{private.id}/envelope.pdf").status_code == 404
    assert client_for(env_app, stranger).get(f"/api/v1/envelopes.pdf?ids={private.id}").status_code == 404
    assert client_for(env_app, owner).get(f"/api/v1/contacts/{private.id}/envelope.pdf").status_code == 200


def test_actions(env_client, new_contact):
    with_address = person(new_contact, street="1 rue A", postal_code="75001", city="Paris", country="FR")
    without = new_contact(last_name="Nowhere")
    keys = {a["key"]: a for a in _actions(env_client, with_address.id)}
    assert keys["print_envelope"]["url"] == f"/api/v1/contacts/{with_address.id}/envelope.pdf?size=DL"
    assert "print_envelope" not in {a["key"] for a in _actions(env_client, without.id)}
    from crmcore.state import plugin_host

    mass = {
        action.key: action for _plugin, action in plugin_host().collect("register_mass_actions", user=None)
    }
    assert mass["print_envelopes"].label == {"en": "Print envelopes", "fr": "Imprimer les enveloppes"}


def _actions(client, contact_id):
    body = client.get(f"/api/v1/contacts/{contact_id}/actions").json
    return body if isinstance(body, list) else body.get("items", [])
