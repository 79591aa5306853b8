"""labs schedules on metrics

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from judgelab.db.types import JSONType

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.add_column(sa.Column('labs_schedule', JSONType, nullable=True))
        batch_op.add_column(sa.Column('labs_scheduled_through', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_column('labs_scheduled_through')
        batch_op.drop_column('labs_schedule')
