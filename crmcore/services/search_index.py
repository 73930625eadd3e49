"""Contact search: what a query's words mean, and the name tokens behind "starts with" on names.

A word of a query matches a contact when it starts one of its name words (folded), a name word of
its organization, one of its email addresses or email domains, one of its phone numbers (as
international digits, national digits, or national digits after a trunk prefix such as the French
"0"), or when it is the contact's number. Only a contact's own name words need rows of their own
(search tokens): emails and phones are matched on their own indexed columns and members through their
organization's tokens, so creating a contact writes a couple of token rows rather than a dozen, and
renaming or merging an organization rewrites none of its members'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, and_, delete, insert, select, union

from crmcore.extensions import db
from crmcore.models import Contact, ContactEmail, ContactPhone, SearchToken
from crmcore.services.numbering import contact_number
from crmcore.services.phones import trunk_prefixes
from crmcore.services.text import digits, looks_like_phone, prefix_upper_bound, words

MAX_TOKEN = 254
_NUMBER = re.compile(r"^(?:c-?)?0*(\d{1,12})$")


def name_tokens(first_name: str | None, last_name: str | None, name: str | None) -> list[str]:
    """The search tokens of a contact: the folded words of its names (and of their hyphenated parts)."""
    return sorted(_tokens_of(first_name).union(_tokens_of(last_name), _tokens_of(name)))


@lru_cache(maxsize=16384)
def _tokens_of(text: str | None) -> frozenset[str]:
    # First names and last names repeat from contact to contact: imports ask for the same ones often.
    tokens: set[str] = set()
    for word in words(text):
        tokens.add(word[:MAX_TOKEN])
        if "-" in word:  # "Müller-Durand" is found by "durand" too
            tokens.update(part[:MAX_TOKEN] for part in word.split("-") if part)
    return frozenset(tokens)


def token_rows(
    contact_id: int, first_name: str | None, last_name: str | None, name: str | None
) -> list[dict[str, object]]:
    """The rows of :func:`name_tokens` for ``contact_id``."""
    return [{"token": token, "contact_id": contact_id} for token in name_tokens(first_name, last_name, name)]


def reindex(contacts: Iterable[Contact]) -> None:
    """Replace the tokens of ``contacts`` (already flushed: new contacts get theirs from ``insert_contacts``)."""
    contacts = list(contacts)
    if not contacts:
        return
    db.session.execute(delete(SearchToken).where(SearchToken.contact_id.in_([c.id for c in contacts])))
    rows = [row for c in contacts for row in token_rows(c.id, c.first_name, c.last_name, c.name)]
    if rows:
        db.session.execute(insert(SearchToken), rows)


def query_terms(q: str) -> list[str]:
    """The prefixes a query means: the whole query as digits if it looks like a phone, else its words."""
    q = (q or "").strip()
    if not q:
        return []
    if looks_like_phone(q):
        number = digits(q)
        return [number[2:] if number.startswith("00") else number]
    return [term[:MAX_TOKEN] for term in words(q)]


def _starts(column: Any, prefix: str) -> ColumnElement[bool]:
    return and_(column >= prefix, column < prefix_upper_bound(prefix))


def name_matches(term: str) -> Select[Any]:
    """The ids of the contacts with a name word starting with ``term``."""
    return select(SearchToken.contact_id).where(_starts(SearchToken.token, term))


def term_matches(term: str) -> Select[Any]:
    """The ids of the contacts one word of a query matches (an index range scan per kind of value)."""
    named = name_matches(term)
    parts: list[Select[Any]] = [
        named,
        select(Contact.id.label("contact_id")).where(Contact.organization_id.in_(named)),  # members
        select(ContactEmail.contact_id).where(_starts(ContactEmail.address_key, term)),
        select(ContactEmail.contact_id).where(_starts(ContactEmail.domain, term)),
    ]
    if term.isdigit() and len(term) >= 3:
        parts.append(select(ContactPhone.contact_id).where(_starts(ContactPhone.e164, "+" + term)))
        national = {term}
        for prefix in trunk_prefixes(current_app.config.get("DEFAULT_COUNTRY")):
            if term.startswith(prefix) and len(term) > len(prefix):
                national.add(term[len(prefix) :])
        parts.extend(
            select(ContactPhone.contact_id).where(_starts(ContactPhone.national, n)) for n in sorted(national)
        )
    number = _NUMBER.match(term)
    if number:
        number_is = Contact.number == contact_number(int(number.group(1)))
        parts.append(select(Contact.id.label("contact_id")).where(number_is))
    matches = union(*parts).subquery()
    return select(matches.c.contact_id)
