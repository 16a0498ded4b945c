"""image notes: images.note, what the decoder warned about while the pixels were read

Why: Pillow's warnings (corrupt EXIF, an EXIF orientation outside 1-8, a PNG text chunk cut to
its limit) went to the terminal of whoever ran `dedupdb index`, mixed into the progress bar, and
were lost with it. They belong to the file: the image is indexed and the warning is kept with
its row. Nullable: rows indexed before, and files without warnings, hold NULL.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True, comment='decoder warnings, one a line; NULL when none'))


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('note')
