"""imports: import batches (who, when, file, counts, revert) and the contacts each one touched

Revision ID: imports_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "imports_0001"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "import_batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("match", sa.String(length=20), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("reverted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverted_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_import_batches_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["reverted_by_id"],
            ["users.id"],
            name=op.f("fk_import_batches_reverted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
    )
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_batches_created_at"), ["created_at"], unique=False)

    op.create_table(
        "import_batch_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("previous_batch", sa.String(length=40), nullable=True),
        sa.Column("note_ids", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_import_batch_items_batch_id_import_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_import_batch_items_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batch_items")),
    )
    with op.batch_alter_table("import_batch_items", schema=None) as batch_op:
        batch_op.create_index("ix_import_batch_items_batch_id_id", ["batch_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_import_batch_items_contact_id"), ["contact_id"], unique=False)


def downgrade():
    with op.batch_alter_table("import_batch_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_batch_items_contact_id"))
        batch_op.drop_index("ix_import_batch_items_batch_id_id")
    op.drop_table("import_batch_items")
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_batches_created_at"))
    op.drop_table("import_batches")
