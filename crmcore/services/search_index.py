"""Search tokens of a contact: folded name words, emails and domains, phone digits, number, organization."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert

from crmcore.extensions import db
from crmcore.models import Contact, SearchToken
from crmcore.services.phones import search_forms
from crmcore.services.text import digits, fold, words

MAX_TOKEN = 254


def tokens_for(contact: Contact, organization_name: str | None = None) -> set[str]:
    tokens: set[str] = set()
    for text in (contact.first_name, contact.last_name, contact.name, organization_name):
        for word in words(text):
            tokens.add(word)
            if "-" in word:  # "Müller-Durand" is found by "durand" too
                tokens.update(part for part in word.split("-") if part)
    for email in contact.emails:
        tokens.add(email.address_key)
        tokens.add(email.domain)
    for phone in contact.phones:
        tokens.update(search_forms(phone.e164))
    if contact.number:
        tokens.add(fold(contact.number))
        number_digits = digits(contact.number).lstrip("0")
        if number_digits:
            tokens.add(number_digits)
    return {token[:MAX_TOKEN] for token in tokens if token}


def reindex(contacts: Iterable[Contact], new: bool = False) -> None:
    """Replace the tokens of ``contacts`` (already flushed, so they have ids); ``new``: they have none yet."""
    contacts = list(contacts)
    if not contacts:
        return
    if not new:
        ids = [contact.id for contact in contacts]
        db.session.execute(delete(SearchToken).where(SearchToken.contact_id.in_(ids)))
    rows = []
    for contact in contacts:
        organization = contact.organization.name if contact.organization is not None else None
        rows.extend(token_rows(contact, organization))
    if rows:
        db.session.execute(insert(SearchToken), rows)


def token_rows(contact: Contact, organization_name: str | None = None) -> list[dict[str, object]]:
    """The search token rows of a new contact (bulk writers insert many contacts' rows at once)."""
    return [{"token": token, "contact_id": contact.id} for token in tokens_for(contact, organization_name)]


def query_terms(q: str) -> list[str]:
    """The prefixes a query means: the whole query as digits if it looks like a phone, else its words."""
    from crmcore.services.text import looks_like_phone

    q = (q or "").strip()
    if not q:
        return []
    if looks_like_phone(q):
        number = digits(q)
        return [number[2:] if number.startswith("00") else number]
    return [term[:MAX_TOKEN] for term in words(q)]
