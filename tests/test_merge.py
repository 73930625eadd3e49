"""Merging contacts: nothing is lost, every related row moves (a plugin's own rows too), and an undo
brings everything back exactly, or refuses with a clear 409."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy import select

from crmcore.cli import main
from crmcore.errors import Conflict, Forbidden, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, ContactWarning, HistoryEntry, Merge, Note
from crmcore.plugin_api import hookimpl
from crmcore.services import merge as svc
from crmcore.services.contacts import add_warning, create_contact, delete_contact, get_contact, update_contact
from crmcore.services.fields import create_definition
from crmcore.services.notes import add_note
from crmcore.services.photos import set_photo
from crmcore.services.serialize import contact_to_dict

# A plugin's own table (in its own metadata, created and dropped by the test).
plugin_metadata = sa.MetaData()
invoices = sa.Table(
    "tmpmerge_invoices",
    plugin_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, nullable=False),
    sa.Column("label", sa.String(40)),
)


class InvoicesPlugin:
    """Moves its rows on merge and remembers them under the merge id, as hookspecs.py asks."""

    def __init__(self) -> None:
        self.moved: dict[int, list[tuple[int, int]]] = {}
        self.fail = False

    @hookimpl
    def contact_merged(self, survivor, merged, merge_id):
        if self.fail:
            raise RuntimeError("invoices plugin refuses")
        ids = [c.id for c in merged]
        rows = db.session.execute(
            select(invoices.c.id, invoices.c.contact_id).where(invoices.c.contact_id.in_(ids))
        )
        self.moved[merge_id] = [tuple(r) for r in rows]
        db.session.execute(
            sa.update(invoices).where(invoices.c.contact_id.in_(ids)).values(contact_id=survivor.id)
        )

    @hookimpl
    def contact_merge_undone(self, restored, merge_id):
        assert {c.deleted_at for c in restored} == {None}
        for row_id, contact_id in self.moved.pop(merge_id):
            db.session.execute(
                sa.update(invoices).where(invoices.c.id == row_id).values(contact_id=contact_id)
            )


@pytest.fixture
def plugin():
    return InvoicesPlugin()


@pytest.fixture
def app(register_plugin, plugin):
    """The application with the invoices plugin and its table."""
    application = register_plugin(plugin, name="tmpmerge")
    with application.app_context():
        plugin_metadata.create_all(db.engine)
        try:
            yield application
        finally:
            db.session.remove()
            plugin_metadata.drop_all(db.engine)


@pytest.fixture
def admin_api(app, make_user, api_client):
    """An API client acting as an admin (no password: hashing one is slow)."""
    return api_client(make_user(email="admin@example.com", is_admin=True, password=None))


def _png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), color).save(out, "PNG")
    return out.getvalue()


def _invoice_owners() -> dict[str, int]:
    return {label: cid for label, cid in db.session.execute(select(invoices.c.label, invoices.c.contact_id))}


def _state(contact_id: int) -> dict:
    """Everything about a contact an undo must give back (the record, its rows, its links)."""
    db.session.expire_all()
    contact = db.session.get(Contact, contact_id)
    record = contact_to_dict(contact)
    for key in ("version", "updated_at"):
        record.pop(key)
    return {
        "record": record,
        "deleted": contact.deleted_at is not None,
        "merged_into": contact.merged_into_id,
        "notes": sorted(db.session.scalars(select(Note.id).where(Note.contact_id == contact_id))),
        "warnings": sorted(
            db.session.scalars(select(ContactWarning.id).where(ContactWarning.contact_id == contact_id))
        ),
        "history": sorted(
            db.session.scalars(
                select(HistoryEntry.id).where(
                    HistoryEntry.contact_id == contact_id,
                    HistoryEntry.action.not_in(("merge", "unmerge")),
                    HistoryEntry.source != "merge",  # what the merge and the undo themselves audited
                )
            )
        ),
        "members": sorted(
            db.session.scalars(select(Contact.id).where(Contact.organization_id == contact_id))
        ),
        "reports": sorted(db.session.scalars(select(Contact.id).where(Contact.reports_to_id == contact_id))),
    }


@pytest.fixture
def people(app, make_user):
    u1 = make_user(email="u1@example.com", password=None)
    u2 = make_user(email="u2@example.com", password=None)
    create_definition({"key": "vat", "label_en": "VAT number", "type": "text"})
    org = create_contact({"kind": "organization", "name": "ACME"})
    original = create_contact(
        {
            "kind": "person",
            "first_name": "Jean",
            "last_name": "Dupont",
            "emails": [{"address": "jean@acme.example", "primary": True}],
            "phones": [{"number": "06 12 34 56 78"}],
            "addresses": [{"kind": "main", "street": "1 rue A", "postal_code": "75001", "city": "Paris"}],
            "tags": ["VIP"],
            "owners": [u1.id],
            "organization_id": org.id,
            "custom": {"vat": "FR1"},
        }
    )
    other = create_contact(
        {
            "kind": "person",
            "first_name": "jean",
            "last_name": "Dupond",
            "birthday": "1980-02-03",
            "job_title": "CEO",
            "emails": [
                {"address": "JEAN@acme.example", "accepts_email": True},
                {"address": "jd@home.example", "label": "home"},
            ],
            "phones": [{"number": "+33612345678", "sms": True}, {"number": "01 40 00 00 00", "type": "work"}],
            "addresses": [
                {"kind": "main", "street": "1 rue A", "postal_code": "75001", "city": "Paris"},
                {"kind": "billing", "street": "9 bd B", "postal_code": "69001", "city": "Lyon"},
            ],
            "tags": ["vip", "Client"],
            "owners": [u2.id],
            "social": {"linkedin": "https://linkedin.example/jd"},
            "custom": {"vat": "FR2"},
        }
    )
    third = create_contact(
        {"kind": "person", "first_name": "J.", "last_name": "Dupont", "description": "met at a fair"}
    )
    report = create_contact(
        {"kind": "person", "first_name": "Ann", "last_name": "Report", "reports_to_id": third.id}
    )
    add_note(other.id, "called him")
    add_note(third.id, "fair lead")
    add_warning(other.id, "pays late")
    set_photo(other.id, _png("red"))
    db.session.execute(
        invoices.insert(),
        [
            {"contact_id": original.id, "label": "inv-original"},
            {"contact_id": other.id, "label": "inv-other"},
            {"contact_id": third.id, "label": "inv-third"},
        ],
    )
    db.session.commit()
    return {
        "u1": u1,
        "u2": u2,
        "org": org,
        "original": original,
        "other": other,
        "third": third,
        "report": report,
    }


def test_merge_moves_everything_and_undo_restores_it_exactly(app, people, plugin):
    original, other, third, report = (people[k] for k in ("original", "other", "third", "report"))
    ids = [original.id, other.id, third.id, report.id]
    before = {cid: _state(cid) for cid in ids}
    other_history = before[other.id]["history"]

    record = svc.merge_contacts(original.id, [other.id, third.id])
    merged = _state(original.id)
    data = merged["record"]
    # Values: combined, deduplicated, nothing lost.
    assert [e["address"] for e in data["emails"]] == ["jean@acme.example", "jd@home.example"]
    assert data["emails"][0]["accepts_email"] is True and data["emails"][0]["primary"] is True
    assert [p["e164"] for p in data["phones"]] == ["+33612345678", "+33140000000"]
    assert data["phones"][0]["sms"] is True
    assert [a["kind"] for a in data["addresses"]] == ["main", "billing"]
    assert data["tags"] == ["Client", "VIP"]
    assert data["owners"] == [people["u1"].id, people["u2"].id]
    assert data["birthday"] == "1980-02-03" and data["job_title"] == "CEO"
    assert data["description"] == "met at a fair"
    assert data["first_name"] == "Jean" and data["custom"] == {"vat": "FR1"}  # the original's values win
    assert data["social"] == {"linkedin": "https://linkedin.example/jd"}
    # Rows: moved.
    assert set(other_history) <= set(merged["history"])
    assert len(merged["notes"]) == 2 and len(merged["warnings"]) == 1
    assert merged["reports"] == [report.id]
    assert svc._photo_state(original.id) is not None
    assert _invoice_owners() == {
        "inv-original": original.id,
        "inv-other": original.id,
        "inv-third": original.id,
    }
    # Merged contacts: soft-deleted, pointing to the original; history on every side.
    for cid in (other.id, third.id):
        state = _state(cid)
        assert state["deleted"] and state["merged_into"] == original.id
        actions = [
            e.action for e in db.session.scalars(select(HistoryEntry).where(HistoryEntry.contact_id == cid))
        ]
        assert actions == ["merge"]
    entry = db.session.scalar(
        select(HistoryEntry).where(HistoryEntry.contact_id == original.id, HistoryEntry.action == "merge")
    )
    assert entry.new["merge_id"] == record.id
    assert [c["id"] for c in entry.new["contacts"]] == [other.id, third.id]
    assert (
        db.session.scalar(
            select(HistoryEntry).where(
                HistoryEntry.contact_id == report.id, HistoryEntry.field == "reports_to_id"
            )
        ).new
        == original.id
    )

    svc.undo_merge(record.id)
    after = {cid: _state(cid) for cid in ids}
    for cid in ids:
        for key in before[cid]:
            assert after[cid][key] == before[cid][key], (cid, key)
    assert _invoice_owners() == {"inv-original": original.id, "inv-other": other.id, "inv-third": third.id}
    assert svc._photo_state(original.id) is None and svc._photo_state(other.id) is not None
    assert db.session.get(Merge, record.id).undone_at is not None
    for cid in (original.id, other.id, third.id):
        assert db.session.scalar(
            select(HistoryEntry.id).where(HistoryEntry.contact_id == cid, HistoryEntry.action == "unmerge")
        )


def test_fields_choose_whose_value_wins(app, people):
    original, other = people["original"], people["other"]
    record = svc.merge_contacts(
        original.id, [other.id], {"last_name": other.id, "custom.vat": other.id, "photo": other.id}
    )
    contact = get_contact(original.id)
    assert contact.last_name == "Dupond" and contact.custom == {"vat": "FR2"}
    assert record.fields == {"last_name": other.id, "custom.vat": other.id, "photo": other.id}
    svc.undo_merge(record.id)
    contact = get_contact(original.id)
    assert contact.last_name == "Dupont" and contact.custom == {"vat": "FR1"}


def test_a_chosen_photo_replaces_the_original_one_and_comes_back(app, people):
    original, other = people["original"], people["other"]
    set_photo(original.id, _png("blue"))
    own = svc._photo_state(original.id)["sha256"]
    record = svc.merge_contacts(original.id, [other.id], {"photo": other.id})
    assert svc._photo_state(original.id)["sha256"] == svc._photo_state(other.id)["sha256"] != own
    svc.undo_merge(record.id)
    assert svc._photo_state(original.id)["sha256"] == own


def test_members_of_a_merged_organization_move(app, make_contact):
    acme = make_contact(kind="organization", name="ACME")
    acme2 = make_contact(kind="organization", name="Acme SA")
    member = make_contact(last_name="Worker", organization_id=acme2.id)
    record = svc.merge_contacts(acme.id, [acme2.id])
    assert get_contact(member.id).organization_id == acme.id
    svc.undo_merge(record.id)
    assert get_contact(member.id).organization_id == acme2.id


def test_undo_refuses_when_a_member_was_linked_elsewhere(app, make_contact):
    acme, acme2, other = (make_contact(kind="organization", name=n) for n in ("ACME", "Acme SA", "Other"))
    member = make_contact(last_name="Worker", organization_id=acme2.id)
    record = svc.merge_contacts(acme.id, [acme2.id])
    update_contact(member.id, {"organization_id": other.id})
    with pytest.raises(Conflict, match=f"contact {member.number} was given another organization"):
        svc.undo_merge(record.id)


def test_undo_refuses_when_a_value_set_by_the_merge_changed(app, people, admin_api):
    original, other = people["original"], people["other"]
    record = svc.merge_contacts(original.id, [other.id])
    update_contact(original.id, {"birthday": "1981-01-01"})
    with pytest.raises(Conflict, match="birthday was changed after the merge"):
        svc.undo_merge(record.id)
    response = admin_api.post(f"/api/v1/merges/{record.id}/undo")
    assert response.status_code == 409
    assert any("birthday" in c for c in response.json["conflicts"])
    assert admin_api.get(f"/api/v1/merges/{record.id}").json["can_undo"] is False
    assert get_contact(other.id, include_deleted=True).merged_into_id == original.id  # nothing half-done


def test_undo_refuses_when_a_moved_note_was_deleted(app, people):
    from crmcore.services.notes import delete_note

    original, other = people["original"], people["other"]
    note_id = db.session.scalar(select(Note.id).where(Note.contact_id == other.id))
    record = svc.merge_contacts(original.id, [other.id])
    delete_note(original.id, note_id)
    with pytest.raises(Conflict, match=f"note {note_id} moved by the merge was deleted"):
        svc.undo_merge(record.id)


def test_undo_keeps_later_changes_that_do_not_conflict(app, people):
    original, other = people["original"], people["other"]
    record = svc.merge_contacts(original.id, [other.id])
    update_contact(original.id, {"department": "Sales", "tags": ["VIP", "Client", "New"]})
    later_note = add_note(original.id, "after the merge")
    svc.undo_merge(record.id)
    contact = get_contact(original.id)
    assert contact.department == "Sales"
    assert [t.name for t in contact.tags] == ["New", "VIP"]  # "Client" came with the merge
    assert db.session.get(Note, later_note.id).contact_id == original.id
    assert [e.address for e in contact.emails] == ["jean@acme.example"]


def test_undo_twice_and_chains(app, people):
    original, other, third = people["original"], people["other"], people["third"]
    first = svc.merge_contacts(original.id, [other.id])
    second = svc.merge_contacts(third.id, [original.id])
    with pytest.raises(Conflict, match=f"undo merge {second.id} first"):
        svc.undo_merge(first.id)
    svc.undo_merge(second.id)
    svc.undo_merge(first.id)
    with pytest.raises(Conflict, match="already undone"):
        svc.undo_merge(first.id)


def test_bad_requests_are_refused_whole(app, people, make_contact):
    original, other = people["original"], people["other"]
    acme = people["org"]
    count = db.session.scalar(
        select(sa.func.count()).select_from(Contact).where(Contact.deleted_at.is_(None))
    )
    cases = [
        (original.id, [original.id], {}, "merged_ids[0]"),
        (original.id, [other.id, other.id], {}, "merged_ids[1]"),
        (original.id, [999999], {}, "merged_ids[0]"),
        (original.id, [acme.id], {}, "merged_ids[0]"),
        (original.id, [], {}, "merged_ids"),
        (original.id, [other.id], {"emails": other.id}, "fields.emails"),
        (original.id, [other.id], {"shoe_size": other.id}, "fields.shoe_size"),
        (original.id, [other.id], {"birthday": acme.id}, "fields.birthday"),
        (original.id, [other.id], {"photo": original.id}, "fields.photo"),
    ]
    for original_id, merged_ids, fields, where in cases:
        with pytest.raises(ValidationError) as info:
            svc.merge_contacts(original_id, merged_ids, fields)
        assert where in info.value.errors, (merged_ids, fields, info.value.errors)
    gone = make_contact(last_name="Gone")
    delete_contact(gone.id)
    with pytest.raises(ValidationError, match="invalid data") as info:
        svc.merge_contacts(original.id, [gone.id])
    assert "is deleted" in info.value.errors["merged_ids[0]"][0]
    assert (
        db.session.scalar(select(sa.func.count()).select_from(Contact).where(Contact.deleted_at.is_(None)))
        == count
    )
    assert db.session.scalar(select(sa.func.count()).select_from(Merge)) == 0


def test_a_failing_plugin_aborts_the_whole_merge(app, people, plugin):
    original, other = people["original"], people["other"]
    before = _state(original.id), _state(other.id)
    plugin.fail = True
    with pytest.raises(RuntimeError):
        svc.merge_contacts(original.id, [other.id])
    assert (_state(original.id), _state(other.id)) == before
    assert db.session.scalar(select(sa.func.count()).select_from(Merge)) == 0


def test_access(app, people, make_user, make_contact, api_client):
    owner, stranger = (
        make_user(email="owner@example.com", password=None),
        make_user(email="stranger@example.com", password=None),
    )
    mine = make_contact(user=owner, last_name="Mine", visibility="public_read")
    readable = make_contact(user=owner, last_name="Readable", visibility="public_read")
    private = make_contact(user=owner, last_name="Private", visibility="private")
    with pytest.raises(Forbidden):
        svc.merge_contacts(mine.id, [readable.id], user=stranger)
    shared = make_contact(user=owner, last_name="Shared", visibility="public_write")
    with pytest.raises(ValidationError, match="invalid data") as info:
        svc.merge_contacts(shared.id, [private.id], user=stranger)
    assert info.value.errors == {"merged_ids[0]": [f"contact {private.id} does not exist"]}
    record = svc.merge_contacts(mine.id, [readable.id, private.id], user=owner)
    assert record.user_id == owner.id
    api = api_client(stranger)
    assert api.post(f"/api/v1/merges/{record.id}/undo").status_code == 403
    assert api.get(f"/api/v1/contacts/{private.id}/merges").status_code == 404
    assert api_client(owner).post(f"/api/v1/merges/{record.id}/undo").status_code == 200


def test_api(app, people, admin_api):
    original, other, third = people["original"], people["other"], people["third"]
    response = admin_api.post(
        "/api/v1/contacts/merge",
        json={
            "original_id": original.id,
            "merged_ids": [other.id, third.id],
            "fields": {"first_name": third.id},
        },
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["contact"]["first_name"] == "J." and body["merged_ids"] == [other.id, third.id]
    assert body["moved"]["notes"] == 2
    assert admin_api.get(f"/api/v1/contacts/{other.id}").status_code == 404
    merge_id = body["id"]
    assert admin_api.get(f"/api/v1/merges/{merge_id}").json["can_undo"] is True
    assert [m["id"] for m in admin_api.get(f"/api/v1/contacts/{original.id}/merges").json] == [merge_id]
    response = admin_api.post(f"/api/v1/merges/{merge_id}/undo")
    assert response.status_code == 200
    assert response.json["contact"]["first_name"] == "Jean"
    assert [c["id"] for c in response.json["restored"]] == [other.id, third.id]
    assert admin_api.post(f"/api/v1/merges/{merge_id}/undo").status_code == 409
    response = admin_api.post(
        "/api/v1/contacts/merge", json={"original_id": original.id, "merged_ids": ["x"]}
    )
    assert response.status_code == 422 and "merged_ids[0]" in response.json["errors"]
    response = admin_api.post(
        "/api/v1/contacts/merge", json={"original_id": original.id, "merged_ids": [original.id]}
    )
    assert response.status_code == 422 and "merged_ids[0]" in response.json["errors"]
    assert admin_api.post("/api/v1/merges/999/undo").status_code == 404


def test_cli(app, people, runner):
    original, other = people["original"], people["other"]
    result = runner.invoke(
        main, ["merge", str(original.id), other.number, "--field", f"last_name={other.id}"]
    )
    assert result.exit_code == 0, result.output
    merge_id = db.session.scalar(select(Merge.id))
    assert f"crm merge --undo {merge_id}" in result.output
    assert get_contact(original.id).last_name == "Dupond"
    result = runner.invoke(main, ["merge", "--undo", str(merge_id)])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert get_contact(original.id).last_name == "Dupont"
    result = runner.invoke(main, ["merge", str(original.id), str(original.id)])
    assert result.exit_code == 1 and "merged_ids[0]" in result.output
    result = runner.invoke(main, ["merge", "--undo", str(merge_id)])
    assert result.exit_code == 1 and "already undone" in result.output
