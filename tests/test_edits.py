"""Copies with the edits of the held-out corpus (benchmarks/make_heldout.py): added borders and
padding, small tilts, tone changes, heavier crops; and look-alikes that must stay apart."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import photo
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance, ImageOps
from sqlalchemy import select

from dedupdb import hashes
from dedupdb.cli import cli
from dedupdb.decode import DecodedImage, content_box, decode
from dedupdb.indexing import IndexOptions, index
from dedupdb.match import MatchOptions, Pair, resample_to_centre
from dedupdb.render.html import render_html
from dedupdb.render.json_report import to_json
from dedupdb.report import Report, build_report, find_pairs
from dedupdb.store import Store
from dedupdb.store.schema import Image as ImageRow

SEQUENTIAL = IndexOptions(workers=1)


def by_names(store: Store, pairs: list[Pair]) -> set[frozenset[str]]:
    with store.session() as session:
        names = dict(session.execute(select(ImageRow.id, ImageRow.display_path)).all())
    return {frozenset((names[p.a], names[p.b])) for p in pairs}


def framed_picture(content: np.ndarray, left: int, top: int, right: int, bottom: int,
                   level: int) -> np.ndarray:  # fmt: skip
    """``content`` (h, w) luma inside bars of flat ``level``."""
    h, w = content.shape
    out = np.full((top + h + bottom, left + w + right), level, dtype=np.uint8)
    out[top : top + h, left : left + w] = content
    return out


def content_luma(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A photo's luma squeezed into 60..200, so that black or white bars end at an edge."""
    luma = np.asarray(photo(seed, size).convert("L"), dtype=np.float64)
    luma = (luma - luma.min()) / (np.ptp(luma) or 1.0)
    return (60 + luma * 140).astype(np.uint8)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 1000),
    bars=st.tuples(*[st.integers(0, 60)] * 4),
    level=st.sampled_from([0, 8, 245, 255]),
)
def test_added_bars_are_trimmed_exactly(
    seed: int, bars: tuple[int, int, int, int], level: int
) -> None:
    content = content_luma(seed, (200, 150))
    left, top, right, bottom = bars
    framed = framed_picture(content, left, top, right, bottom, level)
    assert content_box(framed) == (left, top, left + 200, top + 150)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), gamma=st.floats(0.6, 1.6))
def test_a_picture_without_bars_keeps_its_frame_whatever_its_tones(seed: int, gamma: float) -> None:
    luma = np.asarray(photo(seed, (240, 180)).convert("L"), dtype=np.float64)
    toned = (255 * (luma / 255) ** gamma).astype(np.uint8)
    assert content_box(toned) == (0, 0, 240, 180)


def test_smooth_gradients_and_near_uniform_pictures_are_not_trimmed() -> None:
    sky = np.tile(np.linspace(30, 220, 200)[:, None], (1, 300)).astype(np.uint8)
    assert content_box(sky) == (0, 0, 300, 200)
    blank = np.full((200, 300), 128, dtype=np.uint8)
    blank[90:110, 140:160] = 250  # a small subject on a plain background keeps its frame
    assert content_box(blank) == (0, 0, 300, 200)


def test_decoded_content_is_the_picture_inside_the_frame() -> None:
    picture = photo(4, (300, 200))
    framed = ImageOps.expand(picture, border=30, fill=(52, 40, 32))  # a dark wooden mat
    decoded = decode(_png(framed))
    assert isinstance(decoded, DecodedImage)
    inner = decoded.content.picture
    assert abs(inner.width - 300) <= 1 and abs(inner.height - 200) <= 1
    assert decoded.content.info == decoded.info  # the file's own dimensions stay
    plain = decode(_png(picture))
    assert isinstance(plain, DecodedImage)
    assert plain.content is plain


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def tilted(image: Image.Image, degrees: float) -> Image.Image:
    """Turned, then cropped to the centred box without background wedges (as a photo editor's
    straighten tool does)."""
    w, h = image.size
    turned = image.rotate(degrees, Image.Resampling.BICUBIC)
    a = np.radians(abs(degrees))
    scale = min(w / (w * np.cos(a) + h * np.sin(a)), h / (w * np.sin(a) + h * np.cos(a)))
    cw, ch = int(w * scale) - 2, int(h * scale) - 2
    return turned.crop(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2))


def sepia(image: Image.Image) -> Image.Image:
    rgb = np.asarray(image, dtype=np.float64)
    matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return Image.fromarray(np.clip(rgb @ matrix.T, 0, 255).astype(np.uint8))


def test_edited_copies_are_found_and_look_alikes_are_not(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    original = photo(11, (480, 360))
    original.save(root / "original.png")
    copies = {
        "white-frame.jpg": ImageOps.expand(original, border=24, fill=(255, 255, 255)),
        "letterbox.jpg": ImageOps.pad(original, (480, 480), color=(0, 0, 0)),
        "mat.jpg": ImageOps.expand(original, border=40, fill=(196, 172, 132)),
        "tilt2.jpg": tilted(original, 2.0),
        "gamma.jpg": original.point([round(255 * (i / 255) ** 1.4) for i in range(256)] * 3),
        "contrast.jpg": ImageEnhance.Contrast(original).enhance(1.3),
        "darker.jpg": ImageEnhance.Brightness(original).enhance(0.85),
        "saturated.jpg": ImageEnhance.Color(original).enhance(1.4),
        "sepia.jpg": sepia(original),
        "gamma-dark.jpg": original.point([round(255 * (i / 255) ** 1.8) for i in range(256)] * 3),
    }
    for name, image in copies.items():
        image.save(root / name, quality=92)
    ImageEnhance.Brightness(original).enhance(0.4).save(root / "dark-version.jpg", quality=92)
    r, g, b = original.split()
    Image.merge("RGB", (b, r, g)).save(root / "recoloured.jpg", quality=92)
    photo(12, (480, 360)).save(root / "other.jpg", quality=92)
    index(store, root, SEQUENTIAL)
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    for name in copies:
        assert frozenset(("original.png", name)) in pairs, name
    for name in ("dark-version.jpg", "recoloured.jpg", "other.jpg"):
        assert frozenset(("original.png", name)) not in pairs, name


def test_framed_and_padded_copies_store_their_picture_size_and_lose_the_keeper(
    tmp_path: Path, store: Store
) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    original = photo(21, (640, 360))
    original.save(root / "original.jpg", quality=90)
    ImageOps.expand(original, border=60, fill=(52, 40, 32)).save(root / "mat.jpg", quality=95)
    ImageOps.pad(original, (640, 480), color=(0, 0, 0)).save(root / "letterbox.jpg", quality=95)
    index(store, root, SEQUENTIAL)
    with store.session() as session:
        rows = {r.relpath.decode(): r for r in session.scalars(select(ImageRow)).all()}
    assert (rows["original.jpg"].content_width, rows["original.jpg"].content_height) == (640, 360)
    for name, (width, height) in (("mat.jpg", (760, 480)), ("letterbox.jpg", (640, 480))):
        row = rows[name]
        assert (row.width, row.height) == (width, height)  # the file's own size is kept
        assert abs(row.content_width - 640) <= 4 and abs(row.content_height - 360) <= 4, name
    report = build_report(store)
    [cluster] = report.clusters
    keeper = next(m for m in cluster.members if m.keeper)
    assert keeper.path.endswith("original.jpg")
    assert any(reason.startswith("no added borders") for reason in cluster.reasons)
    assert not any(reason.startswith("largest") for reason in cluster.reasons)
    # The report carries each member's picture size next to its file size.
    pictures = {
        os.path.basename(m.path): (m.width, m.height, m.picture_width, m.picture_height)
        for m in Report.from_dict(json.loads(to_json(report))).clusters[0].members
    }
    assert pictures["original.jpg"] == (640, 360, 640, 360)
    for name in ("mat.jpg", "letterbox.jpg"):
        width, height, picture_width, picture_height = pictures[name]
        assert (width, height) == (rows[name].width, rows[name].height)
        assert (picture_width, picture_height) == (
            rows[name].content_width,
            rows[name].content_height,
        )
    page = render_html(report)
    embedded = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    shown = {
        os.path.basename(m["path"]): m.get("picture_width")
        for m in json.loads(embedded)["clusters"][0]["members"]
    }  # the page shows the picture's size only where borders were added
    assert shown == {"original.jpg": None, "mat.jpg": pictures["mat.jpg"][2],
                     "letterbox.jpg": pictures["letterbox.jpg"][2]}  # fmt: skip


def test_report_second_hash_option(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    original = photo(21, (400, 300))
    original.save(root / "original.png")
    original.crop((40, 30, 360, 270)).save(root / "cropped.jpg", quality=92)  # 10 % a side
    index(store, root, SEQUENTIAL)

    def report(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(cli, ["report", "--db", store.url, "--json", "-", *args])
        assert result.exit_code == 0, result.output
        data: dict[str, object] = json.loads(result.output)
        return data

    default = report()
    alone = report("--second-hash", "none")
    assert default["settings"]["second_hash"] == "dhash"  # type: ignore[index]
    assert alone["settings"]["second_hash"] is None  # type: ignore[index]
    assert report("--second-hash", "whash")["settings"]["second_hash"] == "whash"  # type: ignore[index]
    bad = CliRunner().invoke(cli, ["report", "--db", store.url, "--second-hash", "md5"])
    assert bad.exit_code == 2 and "md5" in bad.output


def test_cropped_copies_match_through_the_centre_crop_hashes(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    original = photo(31, (480, 360))
    original.save(root / "original.png")
    for percent in (10, 15, 20):
        dx, dy = 480 * percent // 100, 360 * percent // 100
        original.crop((dx, dy, 480 - dx, 360 - dy)).save(root / f"crop{percent}.jpg", quality=92)
    photo(32, (480, 360)).save(root / "other.jpg", quality=92)
    index(store, root, SEQUENTIAL)
    pairs = by_names(store, find_pairs(store, MatchOptions()))
    for percent in (10, 15, 20):
        assert frozenset(("original.png", f"crop{percent}.jpg")) in pairs, percent
    assert not any("other.jpg" in pair for pair in pairs)
    without = by_names(store, find_pairs(store, MatchOptions(crops=False)))
    assert frozenset(("original.png", "crop20.jpg")) not in without


@settings(max_examples=30, deadline=None)
@given(
    grid=st.lists(st.integers(0, 255), min_size=48, max_size=48),
    scale=st.sampled_from(hashes.CROP_LEVELS),
)
def test_resampled_centre_signature_is_a_weighted_mean(grid: list[int], scale: float) -> None:
    cells = np.asarray(grid, dtype=np.uint8).reshape(4, 4, 3)
    centre = resample_to_centre(cells, scale)
    assert centre.shape == (4, 4, 3)
    assert (centre >= cells.min(axis=(0, 1)) - 1e-9).all()
    assert (centre <= cells.max(axis=(0, 1)) + 1e-9).all()
    flat = np.full((4, 4, 3), 77, dtype=np.uint8)  # a flat picture's centre is as flat
    assert np.allclose(resample_to_centre(flat, scale), 77)
