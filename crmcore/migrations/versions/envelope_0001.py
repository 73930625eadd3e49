"""envelope sender: the sender an admin sets for printed envelopes (one row)

Revision ID: envelope_0001
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "envelope_0001"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "envelope_sender",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("street", sa.String(length=300), nullable=True),
        sa.Column("street2", sa.String(length=300), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("city", sa.String(length=120), nullable=True),
        sa.Column("region", sa.String(length=120), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_envelope_sender_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_envelope_sender")),
    )


def downgrade():
    op.drop_table("envelope_sender")
