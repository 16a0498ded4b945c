"""Pictures for the browser, found only by image id in the index (never a path from a request).

A file is served only while the index holds it as present and it is still the file the index
describes (a regular file of the indexed size and modification time): a file replaced since,
or by a symbolic link, is refused. Thumbnails are rendered on demand and cached on disk by
content hash and size; the full-size picture is streamed as it is when browsers show its
format, else converted once (cached too).
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..render.html import thumbnail_jpeg
from ..store import Store, library

# Widths the UI asks for; others are rounded up to one of these (a bounded cache).
THUMB_SIZES = (160, 320, 640, 1280)
FULL_SIZE = 4096  # a converted full-size picture fits in this square
# Formats browsers show as they are, and their media types.
BROWSER_FORMATS = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "AVIF": "image/avif",
}


@dataclass(frozen=True)
class IndexedPicture:
    image_id: int
    path: bytes
    content_hash: bytes
    format: str


class PictureGone(Exception):
    """The index no longer holds this picture, or the file is not what it holds."""


def lookup(store: Store, image_id: int) -> IndexedPicture:
    """The present, unchanged file of this image id; raises ``PictureGone`` otherwise."""
    found = library.present_file(store, image_id)
    if found is None:
        raise PictureGone(f"image {image_id} is not a present file of the index")
    path, expected = found.path, (found.size, found.mtime_ns)
    picture = IndexedPicture(found.image_id, path, found.content_hash, found.format)
    try:
        st = os.lstat(path)
    except OSError as err:
        raise PictureGone(f"image {image_id} cannot be reached: {err.strerror}") from err
    if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != expected:
        raise PictureGone(f"image {image_id} changed since it was indexed")
    return picture


def thumb_size(asked: int) -> int:
    return next((s for s in THUMB_SIZES if s >= asked), THUMB_SIZES[-1])


class ThumbnailCache:
    """JPEGs by (content hash, size) in a folder; written atomically, so a half-written file
    is never served."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, content_hash: bytes, size: int) -> Path:
        name = content_hash.hex()
        return self.folder / name[:2] / f"{name}-{size}.jpg"

    def get(self, picture: IndexedPicture, size: int) -> Path | None:
        """The cached JPEG, rendered first if needed; None when the file cannot be decoded."""
        target = self.path(picture.content_hash, size)
        if target.exists():
            return target
        jpeg = thumbnail_jpeg(picture.path, size, quality=82)
        if jpeg is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(jpeg)
            os.replace(tmp, target)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target
