"""labs runs

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from judgelab.db.types import JSONType, UTCDateTime

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('labs_runs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('metric_id', sa.Integer(), nullable=False),
    sa.Column('metric_version_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('params', JSONType, nullable=False),
    sa.Column('progress', JSONType, nullable=False),
    sa.Column('result', JSONType, nullable=True),
    sa.Column('question', JSONType, nullable=True),
    sa.Column('answer', JSONType, nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('executor_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['metric_id'], ['metrics.id'], name=op.f('fk_labs_runs_metric_id_metrics'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_labs_runs_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_labs_runs'))
    )
    with op.batch_alter_table('labs_runs', schema=None) as batch_op:
        batch_op.create_index('ix_labs_runs_project_created', ['project_id', 'created_at'], unique=False)
        batch_op.create_index('ix_labs_runs_status', ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('labs_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_labs_runs_status')
        batch_op.drop_index('ix_labs_runs_project_created')
    op.drop_table('labs_runs')
