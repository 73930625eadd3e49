"""The one writer of new contacts (``insert_contacts``), the reference data it validates against, and
the search that reads what it writes: name tokens, email and phone columns, numbers."""

from __future__ import annotations

from urllib.parse import quote

import flask_migrate
import pytest
from sqlalchemy import select, text

from crmcore.errors import ValidationError
from crmcore.extensions import db
from crmcore.models import ContactPhone, HistoryEntry, SearchToken
from crmcore.services import lookups
from crmcore.services.contacts import create_contact, get_contact
from crmcore.services.fields import create_definition
from crmcore.services.phones import national_digits, trunk_prefixes
from crmcore.services.serialize import audited_state
from crmcore.services.transactions import transaction
from crmcore.testing import fresh_database

API = "/api/v1/contacts"


def ids(client, q):
    response = client.get(f"{API}?q={quote(q)}")
    assert response.status_code == 200, response.get_json()
    return {c["id"] for c in response.get_json()["items"]}


# -- the creation entry ------------------------------------------------------------------------------


def test_the_creation_entry_holds_the_stored_state(app, client, admin_user, make_user):
    other = make_user("second@example.com")
    create_definition({"key": "siret", "label_en": "SIRET", "type": "text"})
    client.post("/api/v1/tags", json={"name": "Client VIP"})
    org = client.post(API, json={"kind": "organization", "name": "Acme"}).get_json()
    body = {
        "salutation": "Mme",
        "first_name": "Élodie",
        "last_name": "Durand",
        "job_title": "CEO",
        "birthday": "1980-02-29",
        "origin": "trade_show",
        "website": "example.com",
        "social": {"linkedin": "https://linkedin.com/in/e"},
        "language": "fr",
        "country": "FR",
        "external_id": "X-1",
        "is_supplier": True,
        "emails": [
            {"address": "e@acme.fr", "accepts_email": True},
            {"address": "e2@acme.fr", "label": "home"},
        ],
        "phones": [{"number": "06 12 34 56 78", "sms": True}, {"number": "+44 20 7946 0958", "type": "work"}],
        "addresses": [
            {"street": "1 rue de la Paix", "postal_code": "75002", "city": "Paris", "country": "FR"}
        ],
        "organization_id": org["id"],
        "role": "decision_maker",
        "tags": ["zeta", "client vip"],
        "owners": [other.id, admin_user.id],
        "custom": {"siret": "123"},
        "do_not_email": True,
    }
    response = client.post(API, json=body)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["tags"] == ["Client VIP", "zeta"]  # the stored tag's name, sorted as read
    assert created["website"] == "https://example.com"
    with app.app_context():
        entry = db.session.scalar(
            select(HistoryEntry).where(
                HistoryEntry.contact_id == created["id"], HistoryEntry.action == "create"
            )
        )
        assert entry.new == audited_state(get_contact(created["id"]))
        consents = db.session.scalars(
            select(HistoryEntry.field).where(
                HistoryEntry.contact_id == created["id"], HistoryEntry.action == "consent"
            )
        ).all()
        assert sorted(consents) == ["do_not_email", "email:e@acme.fr", "sms:+33612345678"]
        phones = db.session.scalars(
            select(ContactPhone.national)
            .where(ContactPhone.contact_id == created["id"])
            .order_by(ContactPhone.position)
        ).all()
        assert phones == ["612345678", "2079460958"]
        tokens = set(
            db.session.scalars(select(SearchToken.token).where(SearchToken.contact_id == created["id"]))
        )
        # Its own names only: emails and phones are searched in place, members through their organization.
        assert tokens == {"elodie", "durand"}


def test_a_refused_creation_writes_nothing(app, client):
    before = client.get(API).get_json()["items"]
    response = client.post(API, json={"last_name": "X", "phones": [{"number": "12"}]})
    assert response.status_code == 422
    assert "phones[0].number" in response.get_json()["errors"]
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM contact_history")) == 0
    assert client.get(API).get_json()["items"] == before


# -- phones and numbers in search ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "national"),
    [
        ("+33612345678", "612345678"),
        ("+12015550123", "2015550123"),
        ("+390612345678", "0612345678"),
        ("+79123456789", "9123456789"),
        ("+35312345678", "12345678"),
    ],
)
def test_national_digits_follow_the_country_code(e164, national):
    assert national_digits(e164) == national


def test_trunk_prefixes():
    assert trunk_prefixes("FR") == ("0",)
    assert trunk_prefixes("RU") == ("8", "0")
    assert trunk_prefixes("HU") == ("06", "0")
    assert trunk_prefixes(None) == ("0",)


def test_a_number_is_found_as_dialled_in_the_default_country(crm_app_factory):
    from crmcore.services.users import create_user
    from crmcore.testing import token_client

    app = crm_app_factory(DEFAULT_COUNTRY="RU")
    with app.app_context():
        user = create_user("ru@example.com", "long-password-1", is_admin=True)
        moscow = create_contact(
            {"kind": "person", "last_name": "Ivanov", "phones": [{"number": "8 912 345-67-89"}]}, user
        )
        moscow_id = moscow.id
        assert moscow.phones[0].e164 == "+79123456789"
        client = token_client(app, user)
    for typed in ("8 912 345", "+7 912 345 67 89", "9123456789", "0079123456789"):
        assert ids(client, typed) == {moscow_id}, typed
    assert ids(client, "8 913") == set()


def test_numbers_are_found_whole_not_by_prefix(client):
    first = client.post(API, json={"last_name": "One"}).get_json()
    for _ in range(11):
        client.post(API, json={"last_name": "Other"})
    number = first["number"]  # C-000001
    digits = str(int(number[2:]))
    assert ids(client, number) == {first["id"]}
    assert ids(client, f"c-{digits}") == {first["id"]}
    assert first["id"] in ids(client, digits)
    eleventh = client.get(f"{API}?q=C-000011").get_json()["items"]
    assert [c["number"] for c in eleventh] == ["C-000011"]


def test_several_words_match_across_names_emails_and_phones(client):
    one = client.post(
        API,
        json={
            "first_name": "Anne",
            "last_name": "Roux",
            "emails": [{"address": "anne@orange.fr"}],
            "phones": [{"number": "06 11 22 33 44"}],
        },
    ).get_json()
    client.post(API, json={"first_name": "Anne", "last_name": "Blanc", "emails": [{"address": "ab@free.fr"}]})
    assert ids(client, "anne orange.fr") == {one["id"]}
    assert ids(client, "roux 0611") == {one["id"]}
    assert ids(client, "anne 0611") == {one["id"]}
    assert ids(client, "blanc orange") == set()


# -- reference data --------------------------------------------------------------------------------------


def test_a_new_list_value_is_accepted_at_once_and_a_removed_one_refused(app, admin_user):
    data = {"kind": "person", "last_name": "Pager", "phones": [{"number": "06 12 34 56 78", "type": "pager"}]}
    with app.app_context():
        with pytest.raises(ValidationError) as refused:
            create_contact(data, admin_user)
        assert "phones[0].type" in refused.value.errors
        lookups.create("phone_type", "Pager", "Bipeur", key="pager")
        assert create_contact(data, admin_user).phones[0].type == "pager"
        lookups.create("phone_type", "Old", key="old")
        old = {"kind": "person", "last_name": "O", "phones": [{"number": "0612345680", "type": "old"}]}
        assert create_contact(old, admin_user).phones[0].type == "old"
        lookups.create("salutation", "Captain", "Capitaine", key="capt")
        assert (
            create_contact({**old, "phones": [], "salutation": "Capitaine"}, admin_user).salutation == "capt"
        )
        lookups.create("phone_type", "Gone", key="gone")
        lookups.delete("phone_type", "gone")
        with pytest.raises(ValidationError) as refused:
            create_contact({**old, "phones": [{"number": "0612345681", "type": "gone"}]}, admin_user)
        assert "phones[0].type" in refused.value.errors


def test_a_change_made_by_another_process_is_seen(crm_app_factory, app, admin_user):
    other_process = crm_app_factory()  # its own application state: its own copy of the reference data
    data = {"kind": "person", "last_name": "Fax", "phones": [{"number": "01 23 45 67 89", "type": "telex"}]}
    with app.app_context(), pytest.raises(ValidationError) as refused:
        create_contact(data, admin_user)
    assert "phones[0].type" in refused.value.errors
    with other_process.app_context():
        lookups.create("phone_type", "Telex", key="telex")
        create_definition({"key": "vat", "label_en": "VAT number", "type": "text"})
    with app.app_context():
        contact = create_contact({**data, "custom": {"vat": "FR1"}}, admin_user)
        assert (contact.phones[0].type, contact.custom) == ("telex", {"vat": "FR1"})


def test_a_change_rolled_back_is_not_kept(app, admin_user):
    data = {"kind": "person", "last_name": "Roll", "phones": [{"number": "01 23 45 67 89", "type": "beeper"}]}
    with app.app_context():
        with pytest.raises(RuntimeError), transaction():
            lookups.create("phone_type", "Beeper", key="beeper")
            assert create_contact(data, admin_user).phones[0].type == "beeper"  # seen inside
            raise RuntimeError("rolled back")
        with pytest.raises(ValidationError) as refused:
            create_contact(data, admin_user)
        assert "phones[0].type" in refused.value.errors


# -- the migration ------------------------------------------------------------------------------------


def test_the_search_migration_fills_national_digits_and_keeps_name_tokens(tmp_path):
    from crmcore import create_app

    with fresh_database("search", tmp_path) as url:
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test", "PLUGINS": []})
        with app.app_context():
            from crmcore.app import CORE_MIGRATIONS

            flask_migrate.upgrade(directory=CORE_MIGRATIONS, revision="0002")
            with db.engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO contacts (id, number, kind, name, display_name, sort_key, social, custom,"
                        " status, is_supplier, status_forced, visibility, do_not_email, notify_owners, version,"
                        " created_at, updated_at) VALUES"
                        " (1, 'C-000001', 'organization', 'Acme Bâtiment', 'Acme Bâtiment', 'acme', '{}', '{}',"
                        "  'prospect', false, false, 'public_read', false, false, 1, '2025-01-01', '2025-01-01'),"
                        " (2, 'C-000002', 'person', NULL, 'Jo Dupont-Roy', 'dupont', '{}', '{}',"
                        "  'prospect', false, false, 'public_read', false, false, 1, '2025-01-01', '2025-01-01')"
                    )
                )
                connection.execute(
                    text(
                        "UPDATE contacts SET first_name='Jo', last_name='Dupont-Roy', organization_id=1 WHERE id=2"
                    )
                )
                connection.execute(
                    text(
                        "INSERT INTO contact_phones (contact_id, number, e164, type, sms, whatsapp, viber, calls,"
                        " position) VALUES (2, '06 12 34 56 78', '+33612345678', 'mobile', false, false, false,"
                        " false, 0)"
                    )
                )
                connection.execute(
                    text(
                        "INSERT INTO contact_search_tokens (token, contact_id) VALUES ('jo', 2), ('dupont-roy', 2),"
                        " ('jo@example.com', 2), ('33612345678', 2), ('c-000002', 2), ('2', 2), ('acme', 1)"
                    )
                )
            flask_migrate.upgrade(directory=CORE_MIGRATIONS, revision="heads")
            phones = db.session.execute(text("SELECT national FROM contact_phones")).scalars().all()
            assert phones == ["612345678"]
            tokens = db.session.execute(
                text("SELECT contact_id, token FROM contact_search_tokens ORDER BY contact_id, token")
            ).all()
            assert [tuple(row) for row in tokens] == [
                (1, "acme"),
                (1, "batiment"),
                (2, "dupont"),
                (2, "dupont-roy"),
                (2, "jo"),
                (2, "roy"),
            ]
            db.session.remove()
            db.engine.dispose()


# -- batches -------------------------------------------------------------------------------------------


def test_a_batch_is_created_whole_in_order(client):
    items = [{"last_name": f"Batch {n}", "emails": [{"address": f"b{n}@example.com"}]} for n in range(30)]
    items.append({"kind": "organization", "name": "Batch Org", "tags": ["lot"]})
    response = client.post(f"{API}/batch", json={"items": items})
    assert response.status_code == 201, response.get_json()
    created = response.get_json()["items"]
    assert [c["display_name"] for c in created] == [f"Batch {n}" for n in range(30)] + ["Batch Org"]
    numbers = [int(c["number"][2:]) for c in created]
    assert numbers == sorted(numbers) and len(set(numbers)) == 31
    assert created[-1]["tags"] == ["lot"]
    one = client.get(f"{API}/{created[3]['id']}").get_json()
    assert one == created[3]
    assert ids(client, "b3@example.com") == {created[3]["id"]}
    history = client.get(f"{API}/{created[3]['id']}/history").get_json()
    assert [entry["action"] for entry in history] == ["create"]


def test_a_batch_with_a_bad_item_creates_nothing_and_names_it(client):
    before = len(client.get(f"{API}?limit=500").get_json()["items"])
    items = [
        {"last_name": "Fine"},
        {"first_name": "No last name"},
        {"last_name": "X", "phones": [{"number": "1"}]},
    ]
    response = client.post(f"{API}/batch", json={"items": items})
    assert response.status_code == 422
    body = response.get_json()
    assert set(body["errors"]) == {"items[1].last_name", "items[2].phones[0].number"}
    assert "2 of 3" in body["message"]
    assert len(client.get(f"{API}?limit=500").get_json()["items"]) == before


@pytest.mark.parametrize("body", [{"items": []}, {"items": [{"last_name": "x"}] * 1001}, {}, {"items": "x"}])
def test_a_batch_outside_the_limits_is_refused(client, body):
    response = client.post(f"{API}/batch", json=body)
    assert response.status_code == 422, response.get_json()


def test_plugins_create_in_batches_and_read_customer_notes_through_the_facade(app, admin_user):
    from crmcore import plugin_api

    with app.app_context():
        first, second = plugin_api.create_contacts(
            [{"kind": "person", "last_name": "Quote"}, {"kind": "organization", "name": "Quoted SA"}],
            admin_user,
            "api",
        )
        plugin_api.add_note(first, "Livraison le matin", "customer", admin_user)
        plugin_api.add_note(first, "Mauvais payeur ?", "internal", admin_user)
        printed = plugin_api.list_notes(first, admin_user, kind="customer")
        assert [note.body for note in printed] == ["Livraison le matin"]
        assert plugin_api.get_contact(second).display_name == "Quoted SA"


def test_members_are_found_by_their_organization_s_current_name(app, client):
    org = client.post(API, json={"kind": "organization", "name": "Boulangerie Martin"}).get_json()
    member = client.post(API, json={"last_name": "Petit", "organization_id": org["id"]}).get_json()
    assert ids(client, "boulangerie") == {org["id"], member["id"]}
    client.patch(f"{API}/{org['id']}", json={"name": "Pains Dorés"})
    assert ids(client, "dores") == {org["id"], member["id"]}
    assert ids(client, "boulangerie") == set()
    assert ids(client, "petit pains") == {member["id"]}
    with app.app_context():
        tokens = set(
            db.session.scalars(select(SearchToken.token).where(SearchToken.contact_id == member["id"]))
        )
        assert tokens == {"petit"}  # nothing of the organization's name was written for the member
    client.patch(f"{API}/{member['id']}", json={"organization_id": None})
    assert ids(client, "dores") == {org["id"]}
