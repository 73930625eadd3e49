"""A list page costs the same number of SQL statements whatever its size (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from crmcore.extensions import db
from crmcore.services.contacts import create_contact


@contextmanager
def counting() -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def add_contacts(app, make_user):
    owners = [make_user(name=f"Owner {n}", password=None) for n in range(3)]
    organization = create_contact({"kind": "organization", "name": "Big Org"})
    made = {"n": 0}

    def add(count: int) -> None:
        for _ in range(count):
            made["n"] += 1
            n = made["n"]
            create_contact(
                {
                    "kind": "person",
                    "first_name": "Member",
                    "last_name": f"Number {n:03d}",
                    "emails": [{"address": f"m{n}@bigorg.com"}, {"address": f"m{n}@home.example"}],
                    "phones": [{"number": f"+336{n:08d}"}, {"number": f"+331{n:08d}", "type": "work"}],
                    "addresses": [{"kind": "main", "city": "Paris"}],
                    "tags": [f"tag {n % 7}", "member"],
                    "owners": [owners[n % 3].id, owners[(n + 1) % 3].id],
                    "organization_id": organization.id,
                    "reports_to_id": None,
                }
            )
        db.session.expire_all()

    return add


def statements_for(client, url: str) -> tuple[list[str], int]:
    """The SQL statements a GET runs, and the number of contacts it answers.

    The request is made once before counting: per-token bookkeeping (``last_used_at``) happens on the
    first use only and is not what is measured.
    """
    client.get(url)
    with counting() as statements:
        response = client.get(url)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    items = body["items"] if isinstance(body, dict) else body
    return statements, len(items)


def same_count(small: list[str], large: list[str]) -> bool:
    if len(small) != len(large):
        print("\n--- small page:\n" + "\n".join(small) + "\n--- large page:\n" + "\n".join(large))
    return len(small) == len(large)


@pytest.mark.parametrize(
    "query",
    [
        "limit=50",
        "limit=50&sort=-updated_at",
        "limit=50&q=member",
        "limit=50&tag=member",
        "limit=50&kind=person",
    ],
)
def test_list_page_query_count_does_not_grow(client, add_contacts, query):
    add_contacts(5)
    small, small_rows = statements_for(client, f"/api/v1/contacts?{query}")
    add_contacts(45)
    large, large_rows = statements_for(client, f"/api/v1/contacts?{query}")
    assert (small_rows, large_rows) == (5 if "kind" in query or "q=" in query or "tag" in query else 6, 50)
    assert same_count(small, large)


def test_related_query_count_does_not_grow(client, add_contacts, app):
    add_contacts(5)
    first = client.get("/api/v1/contacts?q=m1@bigorg.com").get_json()["items"][0]["id"]
    small, small_rows = statements_for(client, f"/api/v1/contacts/{first}/related")
    add_contacts(45)
    large, large_rows = statements_for(client, f"/api/v1/contacts/{first}/related")
    assert (small_rows, large_rows) == (4, 49)
    assert same_count(small, large)


def test_a_page_costs_a_handful_of_statements(client, add_contacts):
    add_contacts(20)
    count, _rows = statements_for(client, "/api/v1/contacts?limit=50")
    # Authentication, the page itself and one per eager-loaded collection: nothing per row.
    assert len(count) <= 12, count
