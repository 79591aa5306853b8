"""workers' heartbeats and hand-overs; provider batches of evaluation jobs

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

from judgelab.db.types import JSONType, UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'workers',
        sa.Column('executor_id', sa.String(200), primary_key=True),
        sa.Column('host', sa.String(200), nullable=False, server_default=''),
        sa.Column('pid', sa.Integer, nullable=False, server_default='0'),
        sa.Column('token', sa.String(64), nullable=False, server_default=''),
        sa.Column('started_at', UTCDateTime, nullable=False),
        sa.Column('beat_at', UTCDateTime, nullable=False),
        sa.Column('taken_over_by', sa.String(200), nullable=True),
        sa.Column('taken_over_at', UTCDateTime, nullable=True),
        sa.Column('recovered_workflows', sa.Integer, nullable=True),
        sa.Column('requeued_jobs', sa.Integer, nullable=True),
    )
    op.create_table(
        'provider_batches',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('job_id', sa.String(64), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('provider', sa.String(32), nullable=False),
        sa.Column('batch_id', sa.String(200), nullable=False),
        sa.Column('request_keys', JSONType, nullable=False),
        sa.Column('status', sa.String(32), nullable=True),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('ended_at', UTCDateTime, nullable=True),
    )
    op.create_index('ix_provider_batches_job', 'provider_batches', ['job_id'])


def downgrade() -> None:
    op.drop_index('ix_provider_batches_job', table_name='provider_batches')
    op.drop_table('provider_batches')
    op.drop_table('workers')
