"""not duplicates: the pairs of pictures a user said are not duplicates

Why: `dedupdb not-duplicate` records a user's decision so that later reports leave the pair
out. Pairs are kept by content hash (not image id) so that the decision survives moves,
renames, prune and re-index, and covers every exact copy of either picture.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:26:54.591403
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('not_duplicates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hash_a', sa.LargeBinary(length=32), nullable=False, comment='content hash, the smaller'),
    sa.Column('hash_b', sa.LargeBinary(length=32), nullable=False, comment='content hash, the larger'),
    sa.Column('path_a', sa.Text(), nullable=False, comment='a path of picture a when decided, to show'),
    sa.Column('path_b', sa.Text(), nullable=False, comment='a path of picture b when decided, to show'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_not_duplicates')),
    sa.UniqueConstraint('hash_a', 'hash_b', name=op.f('uq_not_duplicates_hash_a')),
    comment='Pairs the user said are not duplicates; kept out of every later report'
    )


def downgrade() -> None:
    op.drop_table('not_duplicates')
