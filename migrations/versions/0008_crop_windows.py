"""crop windows: images.crop_phash and images.crop_colour hold seventeen windows, not four centres

Why: pHash of a crop window matches a cropped copy only when the crop's borders lie within
about 2.5 % of the window's, so the four stored centres (90/80/70/60 %) missed crops between
them (12.5 % a side: 0.74 recall), beyond them (25 %) and copies cut to another aspect ratio.
The index now stores seventeen windows (hashes.CROP_WINDOWS: the centre 90 to 40 % in steps of
5 %, and 90/80/70 % of the width or of the height only), in the same columns: their first four
windows are the old four centres, so rows indexed before keep matching those until
`dedupdb index --rehash`. Only the column comments change; SQLite keeps no comments.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# (column, new comment, old comment)
COMMENTS = [
    (
        'crop_phash',
        'pHash of each crop window (hashes.CROP_WINDOWS)',
        'pHash of the centre 90/80/70/60 %, for crops',
    ),
    ('crop_colour', '4x4 RGB mean grid of each crop window', '4x4 RGB mean grid of each centre crop'),
]


def _set_comments(new: bool) -> None:
    if not op.get_bind().dialect.supports_comments:
        return
    for column, comment, old in COMMENTS:
        op.alter_column(
            'images',
            column,
            existing_type=sa.LargeBinary(),
            existing_nullable=True,
            comment=comment if new else old,
            existing_comment=old if new else comment,
        )


def upgrade() -> None:
    _set_comments(new=True)


def downgrade() -> None:
    _set_comments(new=False)
