"""crm-sms: webhook events and opt-outs

Revision ID: sms_0001
Revises:
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "sms_0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "sms_webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_webhook_events")),
    )
    op.create_index(op.f("ix_sms_webhook_events_message_sid"), "sms_webhook_events", ["message_sid"])
    op.create_index(op.f("ix_sms_webhook_events_message_id"), "sms_webhook_events", ["message_id"])
    op.create_table(
        "sms_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("keyword", sa.String(length=40), nullable=False),
        sa.Column("contact_ids", JSON, nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_opt_outs")),
    )
    op.create_index(op.f("ix_sms_opt_outs_phone"), "sms_opt_outs", ["phone"])


def downgrade():
    op.drop_index(op.f("ix_sms_opt_outs_phone"), table_name="sms_opt_outs")
    op.drop_table("sms_opt_outs")
    op.drop_index(op.f("ix_sms_webhook_events_message_id"), table_name="sms_webhook_events")
    op.drop_index(op.f("ix_sms_webhook_events_message_sid"), table_name="sms_webhook_events")
    op.drop_table("sms_webhook_events")
