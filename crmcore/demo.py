"""Demo data for a first look: a few organizations and people, tags, notes, a warning."""

from __future__ import annotations

import secrets

from flask import Flask
from sqlalchemy import func, select

from crmcore.extensions import db
from crmcore.models import Contact

DEMO_EMAIL = "admin@example.com"


def load_demo(app: Flask, password: str | None = None) -> tuple[int, tuple[str, str] | None]:
    """Create the demo admin and contacts in an empty database; return (contacts created, login)."""
    from crmcore.services import contacts, notes

    login = _ensure_admin(password)
    if db.session.scalar(select(func.count()).select_from(Contact)):
        return 0, login
    user = None
    acme = contacts.create_contact(
        {
            "kind": "organization",
            "name": "Boulangerie Apollo",
            "website": "https://apollo.example.fr",
            "status": "customer",
            "country": "FR",
            "language": "fr",
            "origin": "referral",
            "emails": [{"address": "contact@apollo.example.fr", "accepts_email": True}],
            "phones": [{"number": "01 42 68 53 00", "type": "work", "calls": True}],
            "addresses": [
                {
                    "kind": "main",
                    "street": "12 rue de la Paix",
                    "postal_code": "75002",
                    "city": "Paris",
                    "country": "FR",
                }
            ],
            "tags": ["Boulangerie", "Paris"],
        },
        user,
        "system",
    )
    supplier = contacts.create_contact(
        {
            "kind": "organization",
            "name": "Moulins de Provence",
            "is_supplier": True,
            "status": "prospect",
            "country": "FR",
            "language": "fr",
            "emails": [{"address": "ventes@moulins-provence.example.fr"}],
            "addresses": [
                {
                    "kind": "main",
                    "street": "3 chemin des Meuniers",
                    "postal_code": "13100",
                    "city": "Aix-en-Provence",
                    "country": "FR",
                }
            ],
            "tags": ["Fournisseur"],
        },
        user,
        "system",
    )
    people = [
        {
            "salutation": "mrs",
            "first_name": "Léa",
            "last_name": "Michel",
            "job_title": "Gérante",
            "organization_id": acme.id,
            "role": "decision_maker",
            "emails": [{"address": "l.michel@apollo.example.fr", "accepts_email": True}],
            "phones": [{"number": "06 12 34 56 78", "type": "mobile", "sms": True, "whatsapp": True}],
            "status": "customer",
            "tags": ["VIP"],
        },
        {
            "salutation": "mr",
            "first_name": "Hugo",
            "last_name": "Bernard",
            "job_title": "Boulanger",
            "organization_id": acme.id,
            "role": "employee",
            "emails": [{"address": "h.bernard@apollo.example.fr"}],
            "phones": [{"number": "06 98 76 54 32", "type": "mobile"}],
        },
        {
            "salutation": "mr",
            "first_name": "Paul",
            "last_name": "Roux",
            "organization_id": supplier.id,
            "role": "purchasing",
            "emails": [{"address": "paul.roux@moulins-provence.example.fr"}],
        },
        {
            "salutation": "ms",
            "first_name": "Emma",
            "last_name": "Wilson",
            "country": "GB",
            "language": "en",
            "emails": [{"address": "emma.wilson@gmail.com", "accepts_email": True}],
            "phones": [{"number": "+44 20 7946 0958", "type": "work"}],
            "addresses": [
                {
                    "kind": "main",
                    "street": "221B Baker Street",
                    "postal_code": "NW1 6XE",
                    "city": "London",
                    "country": "GB",
                }
            ],
        },
        {
            "first_name": "Jean",
            "last_name": "Dupont",
            "status": "prospect",
            "origin": "trade_show",
            "emails": [{"address": "jean.dupont@example.org"}],
            "phones": [{"number": "07 11 22 33 44"}],
            "addresses": [
                {
                    "kind": "main",
                    "street": "5 avenue Foch",
                    "postal_code": "69006",
                    "city": "Lyon",
                    "country": "FR",
                }
            ],
        },
    ]
    created = [acme, supplier]
    for person in people:
        created.append(contacts.create_contact({"kind": "person", **person}, user, "system"))
    notes.add_note(created[2].id, "Préfère être appelée le matin.", "internal", user, "system")
    contacts.add_warning(created[6].id, "Mauvais payeur", "blocking", user, "system")
    return len(created), login


def _ensure_admin(password: str | None) -> tuple[str, str] | None:
    """Create the demo admin when there is no user yet; return the login to print."""
    from crmcore.models import User

    if db.session.scalar(select(func.count()).select_from(User)):
        return None
    password = password or secrets.token_urlsafe(9)
    try:
        from crmcore.services.users import create_user
    except ImportError:  # sign-in arrives with the users module
        db.session.add(User(email=DEMO_EMAIL, name="Demo Admin", is_admin=True))
        db.session.commit()
        return DEMO_EMAIL, password
    create_user(DEMO_EMAIL, password, is_admin=True, name="Demo Admin")
    return DEMO_EMAIL, password
