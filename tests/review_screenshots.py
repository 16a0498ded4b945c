"""Regenerate the review UI's screenshots in docs/ (docs/review-ui.md shows them).

    python tests/review_screenshots.py [--out docs]

Makes the test library (review_corpus), indexes it, starts `dedupdb serve` and has Debian's
chromium photograph the main screens; the PNGs are reduced to 256 colours to stay small.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from browser import browser, chromium_missing, served
from PIL import Image

from dedupdb import index
from dedupdb.indexing import IndexOptions
from dedupdb.store import open_store


def _save(png: bytes, path: Path) -> None:
    with Image.open(io.BytesIO(png)) as shot:
        shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "docs")
    args = parser.parse_args()
    missing = chromium_missing()
    if missing:
        sys.exit(missing)
    from review_corpus import make_library

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = make_library(base, families=6)
        db = base / "photos.sqlite"
        store = open_store(db)
        index(store, root, IndexOptions(workers=1))
        store.close()
        with served(db, base / "cache") as url, browser() as chromium:
            page = chromium.new_page(viewport={"width": 1200, "height": 760})
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(url)
            page.wait_for_selector(".cluster-row img")
            page.wait_for_load_state("networkidle")
            _save(page.screenshot(), args.out / "review-list.png")

            page.fill("#search", "p1")
            page.wait_for_timeout(800)
            page.click(".cluster-row .row-title >> nth=0")
            page.wait_for_selector("#copies img")
            page.wait_for_load_state("networkidle")
            _save(page.screenshot(), args.out / "review-cluster.png")

            page.keyboard.press("f")
            page.wait_for_load_state("networkidle")
            page.keyboard.press("+")
            page.wait_for_timeout(400)
            _save(page.screenshot(), args.out / "review-compare.png")
            page.keyboard.press("Escape")
            page.keyboard.press("?")
            _save(page.screenshot(), args.out / "review-keys.png")
            page.keyboard.press("Escape")

            phone = chromium.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            phone.goto(url)
            phone.wait_for_selector(".cluster-row img")
            phone.click(".cluster-row .row-title >> nth=0")
            phone.wait_for_selector("#copies img")
            phone.wait_for_load_state("networkidle")
            _save(phone.screenshot(), args.out / "review-phone.png")

            page.goto(url.split("?")[0])
            page.click("#bulk-accept")
            page.wait_for_load_state("networkidle")
            page.goto(url.split("?")[0] + "act")
            page.click("#show-plan")
            page.wait_for_selector("#plan-body")
            _save(page.screenshot(), args.out / "review-plan.png")
            page.click("#apply")
            page.wait_for_selector("#job-done")
            page.goto(url.split("?")[0] + "history")
            _save(page.screenshot(), args.out / "review-history.png")

            # The apply made a second report: the chart has two points.
            page.goto(url.split("?")[0] + "dashboard")
            page.wait_for_selector(".chart polyline", timeout=60_000)
            _save(page.screenshot(full_page=True), args.out / "review-dashboard.png")


if __name__ == "__main__":
    main()
