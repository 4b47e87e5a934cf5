"""Tenants for keys (each existing key becomes a tenant of its own name), the recommendation
log and outcomes.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:  # SQLite alters a table by copying it
        batch.add_column(sa.Column("tenant", sa.String(64), nullable=True))
    op.execute("UPDATE api_keys SET tenant = name")
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("tenant", existing_type=sa.String(64), nullable=False)
        batch.create_index("ix_api_keys_tenant", ["tenant"])
    op.create_table(
        "recommendations",
        sa.Column("request_id", sa.String(80), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("rules_version", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("trained_on", sa.String(16), nullable=True),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("drop_min_mm", sa.Integer, nullable=False),
        sa.Column("drop_max_mm", sa.Integer, nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("referral", sa.String(16), nullable=True),
    )
    op.create_table(
        "outcomes",
        sa.Column("outcome_id", sa.String(32), primary_key=True),
        sa.Column(
            "request_id",
            sa.String(80),
            sa.ForeignKey("recommendations.request_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weeks_worn", sa.Integer, nullable=False),
        sa.Column("drop_mm_worn", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("symptoms_after", sa.JSON, nullable=False),
        sa.UniqueConstraint("request_id", "weeks_worn"),
    )


def downgrade() -> None:
    op.drop_table("outcomes")
    op.drop_table("recommendations")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_tenant")
        batch.drop_column("tenant")
