"""crop hashes: images.crop_phash, the pHash of each picture's centre 90/80/70/60 %

Why: a copy with 10-20 % cut off its borders no longer matches its original's full-frame
hashes; its own full-frame hash matches the original's centre crop at the nearest scale
(hashes.CROP_LEVELS). Nullable: rows indexed before have none until `dedupdb index --rehash`
(hash version 4), and simply take no part in crop matching meanwhile.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 12:33:39.225696
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('crop_phash', sa.LargeBinary(), nullable=True, comment='pHash of the centre 90/80/70/60 %, for crops'))


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('crop_phash')
