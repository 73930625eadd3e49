"""vCard extras: the properties of imported cards that the contact record does not model (X- properties,
item-group labels, phones phonenumbers could not read...), kept so a re-export does not lose them.

Revision ID: vcard_0001
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "vcard_0001"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "contact_vcard_extras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(length=60), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("anchor", sa.String(length=400), nullable=True),
        sa.Column("merge_id", sa.Integer(), nullable=True),
        sa.Column("merged_from_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_vcard_extras_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_vcard_extras")),
    )
    with op.batch_alter_table("contact_vcard_extras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_vcard_extras_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contact_vcard_extras_merge_id"), ["merge_id"], unique=False)


def downgrade():
    with op.batch_alter_table("contact_vcard_extras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_vcard_extras_merge_id"))
        batch_op.drop_index(batch_op.f("ix_contact_vcard_extras_contact_id"))
    op.drop_table("contact_vcard_extras")
