"""per-project secrets of voice platforms' webhooks

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

from judgelab.db.types import JSONType

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('projects') as batch:
        # {"vapi": secret, "retell": api key, "elevenlabs": secret}: what each platform signs with.
        batch.add_column(sa.Column('webhook_secrets', JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('projects') as batch:
        batch.drop_column('webhook_secrets')
