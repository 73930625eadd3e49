"""duplicate dismissals: pairs of contacts marked "not a duplicate", never proposed again

Revision ID: duplicates_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "duplicates_0001"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "duplicate_dismissals",
        sa.Column("contact_a_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("contact_b_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "contact_a_id < contact_b_id", name=op.f("ck_duplicate_dismissals_ordered_pair")
        ),
        sa.ForeignKeyConstraint(
            ["contact_a_id"],
            ["contacts.id"],
            name=op.f("fk_duplicate_dismissals_contact_a_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_b_id"],
            ["contacts.id"],
            name=op.f("fk_duplicate_dismissals_contact_b_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_duplicate_dismissals_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("contact_a_id", "contact_b_id", name=op.f("pk_duplicate_dismissals")),
    )
    with op.batch_alter_table("duplicate_dismissals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_duplicate_dismissals_contact_b_id"), ["contact_b_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_duplicate_dismissals_created_at"), ["created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("duplicate_dismissals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_dismissals_created_at"))
        batch_op.drop_index(batch_op.f("ix_duplicate_dismissals_contact_b_id"))
    op.drop_table("duplicate_dismissals")
