"""content size: images.content_width/content_height, the picture inside added borders

Why: the index hashes a picture inside the borders, frames, mats or letterbox bars added around
it, but stored only the file's dimensions, so the keeper ranking took a padded copy for the
largest, and the original for a crop of it: on the held-out corpus a JPEG with a coloured mat
was recommended over the lossless original. The ranking now compares the pictures' own sizes
and counts added borders as an edit. Nullable: rows indexed before keep NULL (taken as no
borders) until `dedupdb index --rehash`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_width', sa.Integer(), nullable=True, comment='width of the picture inside added borders'))
        batch_op.add_column(sa.Column('content_height', sa.Integer(), nullable=True, comment='height of the picture inside added borders'))


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('content_height')
        batch_op.drop_column('content_width')
