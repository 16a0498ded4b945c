"""A small real photo library for the review UI's tests (and its screenshots): families of
copies of generated photos, of the kinds the UI labels, with hostile file names."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import photo

# A name that would run script if any page printed it unescaped, and control characters
# (an ANSI escape, a tab) that must show as text.
HOSTILE = "<script>alert(1)<script>\x1b[31m\tred.jpg"


def make_library(base: Path, families: int = 4) -> Path:
    """``families`` photos under originals/, each with an exact copy under Downloads/ and a
    half-size PNG under exports/; family 1 has a rotated copy, family 2 its exact copy under
    the hostile name."""
    root = base / "photos"
    for f in range(families):
        picture = photo(200 + f, (640, 480))
        original = root / "originals" / f"p{f}.jpg"
        original.parent.mkdir(parents=True, exist_ok=True)
        picture.save(original, quality=95)
        copy = root / "Downloads" / (HOSTILE if f == 2 else f"p{f} copy.jpg")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(original, copy)
        small = root / "exports" / f"p{f}-small.png"
        small.parent.mkdir(parents=True, exist_ok=True)
        picture.resize((320, 240)).save(small)
        if f == 1:
            picture.rotate(90, expand=True).save(root / "exports" / "p1-turned.jpg", quality=85)
    return root
