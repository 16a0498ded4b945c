"""crop colours: images.crop_colour, the colour signature of each centre crop

Why: the colour guard compares a cropped copy's 4x4 colour signature with its original's at the
crop's region. Resampling the original's whole-picture signature to a 60-90 % centre is coarse
(the new cells straddle the stored ones) and moved hues by 10-20 degrees on textured pictures,
past the guard's 12, so true crops were refused; the index now stores each centre's own
signature (signals.crop_colours). Nullable: rows indexed before keep the resampled estimate
until `dedupdb index --rehash`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 13:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('crop_colour', sa.LargeBinary(), nullable=True, comment='4x4 RGB mean grid of each centre crop'))


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('crop_colour')
