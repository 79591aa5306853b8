"""web UI login sessions

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from judgelab.db.types import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_sessions',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_web_sessions_api_key_id_api_keys'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_web_sessions')),
    )
    op.create_index(op.f('ix_web_sessions_api_key_id'), 'web_sessions', ['api_key_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_web_sessions_api_key_id'), table_name='web_sessions')
    op.drop_table('web_sessions')
