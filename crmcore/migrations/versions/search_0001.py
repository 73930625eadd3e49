"""search on indexed columns: phones' national digits, binary collation for prefix ranges, name-only tokens

Emails, phones and numbers are searched on their own columns, members through their organization's
tokens; search tokens keep a contact's own name words only. Existing phones get their national
digits, and every contact's tokens are rewritten (the words of first name, last name and name).

Revision ID: search_0001
Revises: 0002
"""
import unicodedata

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision = "search_0001"
down_revision = "0002"
branch_labels = None
depends_on = None

PREFIX_SEARCHED = (("contact_emails", "address_key", 254), ("contact_emails", "domain", 254),
                   ("contact_phones", "e164", 20), ("contact_phones", "national", 20))
BATCH = 5000

phones = sa.table("contact_phones", sa.column("id", sa.Integer), sa.column("e164", sa.String),
                  sa.column("national", sa.String))
contacts = sa.table("contacts", sa.column("id", sa.Integer), sa.column("first_name", sa.String),
                    sa.column("last_name", sa.String), sa.column("name", sa.String))
tokens = sa.table("contact_search_tokens", sa.column("token", sa.String), sa.column("contact_id", sa.Integer))


def _national(e164):
    number = "".join(ch for ch in e164 or "" if ch.isdigit())
    for length in (1, 2, 3):
        if int(number[:length] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return number[length:]
    return number


def _words(text):
    # As crmcore.services.text.words at the time of this migration.
    import re

    folded = "".join(ch for ch in unicodedata.normalize("NFKD", text or "") if not unicodedata.combining(ch))
    found = set()
    for word in re.split(r"[^\w@.+-]+", folded.casefold().strip()):
        word = word.strip(".-+_")[:254]
        if word:
            found.add(word)
            if "-" in word:
                found.update(part for part in word.split("-") if part)
    return found


def upgrade():
    with op.batch_alter_table("contact_phones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("national", sa.String(length=20), nullable=False, server_default=""))
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        for table, column, length in PREFIX_SEARCHED:
            op.alter_column(table, column, type_=sa.String(length=length, collation="C"),
                            existing_type=sa.String(length=length), existing_nullable=False)
    last = 0
    while True:
        rows = connection.execute(sa.select(phones.c.id, phones.c.e164).where(phones.c.id > last)
                                  .order_by(phones.c.id).limit(BATCH)).all()
        if not rows:
            break
        connection.execute(phones.update().where(phones.c.id == sa.bindparam("row_id"))
                           .values(national=sa.bindparam("digits")),
                           [{"row_id": row_id, "digits": _national(e164)} for row_id, e164 in rows])
        last = rows[-1][0]
    with op.batch_alter_table("contact_phones", schema=None) as batch_op:
        batch_op.alter_column("national", server_default=None)
        batch_op.create_index(batch_op.f("ix_contact_phones_national"), ["national"], unique=False)
    _keep_name_tokens_only(connection)


def _keep_name_tokens_only(connection):
    query = sa.select(contacts.c.id, contacts.c.first_name, contacts.c.last_name, contacts.c.name)
    last = 0
    while True:
        rows = connection.execute(query.where(contacts.c.id > last).order_by(contacts.c.id).limit(BATCH)).all()
        if not rows:
            break
        ids = [row[0] for row in rows]
        connection.execute(tokens.delete().where(tokens.c.contact_id.in_(ids)))
        new = [{"token": token, "contact_id": row[0]} for row in rows
               for token in set().union(*(_words(text) for text in row[1:]))]
        if new:
            connection.execute(tokens.insert(), new)
        last = ids[-1]


def downgrade():
    with op.batch_alter_table("contact_phones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_phones_national"))
        batch_op.drop_column("national")
    if op.get_bind().dialect.name == "postgresql":
        for table, column, length in PREFIX_SEARCHED[:3]:
            op.alter_column(table, column, type_=sa.String(length=length),
                            existing_type=sa.String(length=length, collation="C"), existing_nullable=False)
