"""Build a corpus of heavy edits that perceptual hashes miss, with hard negatives (issue 16).

    python benchmarks/make_heavy_corpus.py OUTDIR [--families 20] [--shared ../shared/bench]
        [--half public|heldout] [--style 1|2] [--more-kinds]

The pictures are shared/bench's (make_corpus.py: Debian's wallpaper packages, fetched with
`apt-get download` into ~/.cache/dedupdb-bench; `apt-get update` first on a fresh machine),
from its public half (``--half heldout``: the other half, whose pictures make_heldout.py
uses), the first ``--families`` look-alike groups by a fixed hash of their name. Each family
gets its picture (kind "original", at most 1600 px, JPEG 92) and one copy per kind in
``KINDS``: phone screenshots with fake UI chrome (and the mirrored screenshot), off-centre and
centre crops, a 4:5 portrait crop, tilts of 10 and 25 degrees with and without black corners,
a mild perspective (a photo of a screen) and stickers over ~10 % of it. ``--more-kinds`` adds
``MORE_KINDS``: a sepia-toned copy and a thumbnail whose longer side is 160 px (left out by
default, so that the default corpus stays the one earlier figures were measured on).

``--style 2`` is a second, different test of the same kinds of edit: other parameters for
every edit (``KINDS_2``: a dark-themed screenshot app showing the picture at 40-70 % of the
screen's width, at another height, with another caption; tilts of 8, 15 and 20 degrees; crops
at other places; other sticker shapes; another toning), other document pages and products,
another salt, and ``MORE_KINDS_2`` always. Its kinds are named by their edit (``tilt_15``),
so that a score names what was measured.

Hard negatives (pairs of families that must not be joined; every file is its own family):
pages of one text-document template with different text, product shots of different simple
objects on white, and, through the screenshots, every two photo families (their screenshots
share the identical phone chrome). OUTDIR/truth.json has make_corpus.py's format, so
shared/bench/score.py scores it:

    dedupdb index OUTDIR --db /tmp/heavy.sqlite
    dedupdb report --db /tmp/heavy.sqlite --json /tmp/heavy.json --quiet
    python benchmarks/score_report.py OUTDIR/truth.json /tmp/heavy.json --kinds
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_heldout import load_make_corpus  # a sibling script

HERE = Path(__file__).resolve().parent
MASTER_SIDE = 1600
SALT = "heavy-edits-v1"
SALTS = {1: SALT, 2: "heavy-edits-v2-other-params"}

Edit = Callable[[Image.Image, random.Random], Image.Image]


def font(size: int) -> Any:
    return ImageFont.load_default(size=size)


# ---------------------------------------------------------------- screenshots


def phone_screenshot(picture: Image.Image, rng: random.Random) -> Image.Image:
    """The picture at ~55 % of a phone screen's width, inside identical fake UI chrome: a
    status bar, an app bar with a title, a caption under the picture and a navigation bar."""
    width, height = 720, 1560
    screen = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, width, 60), fill=(30, 30, 30))
    draw.text((24, 14), "9:41", font=font(30), fill=(255, 255, 255))
    for i in range(4):  # signal bars and the battery
        draw.rectangle((560 + i * 14, 40 - i * 6, 568 + i * 14, 46), fill=(255, 255, 255))
    draw.rectangle((630, 18, 690, 44), outline=(255, 255, 255), width=3)
    draw.rectangle((0, 60, width, 170), fill=(33, 90, 160))
    draw.text((110, 92), "Photos shared with you", font=font(38), fill=(255, 255, 255))
    draw.polygon([(30, 115), (60, 90), (60, 140)], fill=(255, 255, 255))
    shown = picture.copy()
    shown.thumbnail((round(width * 0.55), 900), Image.Resampling.LANCZOS)
    x, y = (width - shown.width) // 2, 260
    screen.paste(shown, (x, y))
    caption = y + shown.height + 40
    for line in range(3):
        draw.text(
            (60, caption + line * 52),
            "Lorem ipsum dolor sit amet, consectetur",
            font=font(30),
            fill=(60, 60, 60),
        )
    draw.rectangle((0, height - 150, width, height), fill=(240, 240, 240))
    for i in range(4):
        cx = 90 + i * 180
        draw.ellipse((cx - 30, height - 110, cx + 30, height - 50), outline=(90, 90, 90), width=5)
    return screen


def dark_screenshot(picture: Image.Image, rng: random.Random) -> Image.Image:
    """Another app's screenshot: dark theme, the picture at 40-70 % of the screen's width
    (``rng``), at another height, a bottom sheet with another caption and a gesture bar."""
    width, height = 1080, 2340
    screen = Image.new("RGB", (width, height), (18, 18, 20))
    draw = ImageDraw.Draw(screen)
    draw.text((40, 22), "12:07", font=font(40), fill=(235, 235, 235))
    draw.ellipse((width // 2 - 18, 26, width // 2 + 18, 62), fill=(0, 0, 0))  # the camera hole
    draw.rounded_rectangle((930, 30, 1020, 62), radius=8, outline=(235, 235, 235), width=4)
    draw.rectangle((934, 34, 990, 58), fill=(235, 235, 235))
    draw.text((120, 150), "Album", font=font(54), fill=(240, 240, 240))
    draw.line((50, 180, 80, 150, 50, 180, 80, 210), fill=(240, 240, 240), width=6)
    for i in range(3):  # the overflow menu
        draw.ellipse((1010, 150 + i * 22, 1022, 162 + i * 22), fill=(240, 240, 240))
    shown = picture.copy()
    shown.thumbnail(
        (round(width * rng.uniform(0.40, 0.70)), round(height * 0.5)), Image.Resampling.LANCZOS
    )
    x = rng.randint(40, width - shown.width - 40)
    y = rng.randint(300, 700)
    screen.paste(shown, (x, y))
    sheet = max(y + shown.height + 80, height - 700)
    draw.rounded_rectangle((0, sheet, width, height), radius=40, fill=(38, 38, 42))
    lines = ["Sent from the family group", "Tap to download the original", "3 comments"]
    for line, text in enumerate(lines):
        draw.text((70, sheet + 60 + line * 70), text, font=font(42), fill=(200, 200, 205))
    for i, label in enumerate(["Share", "Edit", "Like", "Delete"]):
        draw.text((80 + i * 250, height - 230), label, font=font(38), fill=(170, 200, 255))
    draw.rounded_rectangle(
        (width // 2 - 140, height - 40, width // 2 + 140, height - 28),
        radius=6,
        fill=(220, 220, 220),
    )
    return screen


# ---------------------------------------------------------------- geometry


def crop_fraction(
    im: Image.Image, left: float, top: float, keep_w: float, keep_h: float
) -> Image.Image:
    w, h = im.size
    x, y = round(w * left), round(h * top)
    return im.crop((x, y, x + round(w * keep_w), y + round(h * keep_h)))


def portrait_crop(im: Image.Image, _rng: random.Random) -> Image.Image:
    """A 4:5 portrait cut from the middle of a landscape picture."""
    w, h = im.size
    cw = min(w, round(h * 4 / 5))
    ch = min(h, round(cw * 5 / 4))
    left, top = (w - cw) // 2, (h - ch) // 2
    return im.crop((left, top, left + cw, top + ch))


def portrait_at(im: Image.Image, place: float) -> Image.Image:
    """A 4:5 portrait cut at ``place`` (0 left .. 1 right) of a landscape picture."""
    w, h = im.size
    cw = min(w, round(h * 4 / 5))
    ch = min(h, round(cw * 5 / 4))
    left, top = round((w - cw) * place), (h - ch) // 2
    return im.crop((left, top, left + cw, top + ch))


def square_crop(im: Image.Image, _rng: random.Random) -> Image.Image:
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    return im.crop((left, top, left + side, top + side))


def tilt_inside(im: Image.Image, degrees: float) -> Image.Image:
    """Turned, then cropped to the largest centred rectangle of the same aspect ratio that
    holds no wedge of background."""
    w, h = im.size
    turned = im.rotate(degrees, Image.Resampling.BICUBIC, expand=False)
    a = np.radians(abs(degrees))
    scale = min(w / (w * np.cos(a) + h * np.sin(a)), h / (w * np.sin(a) + h * np.cos(a)))
    cw, ch = max(1, int(w * scale) - 2), max(1, int(h * scale) - 2)
    left, top = (w - cw) // 2, (h - ch) // 2
    return turned.crop((left, top, left + cw, top + ch))


def tilt_corners(im: Image.Image, degrees: float) -> Image.Image:
    """Turned with the whole picture kept: black corners fill the bounding box."""
    return im.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))


KEYSTONE = ((0.06, 0.02), (0.97, 0.08), (0.94, 0.93), (0.03, 0.98))
# Style 2: from slightly above and to the right.
KEYSTONE_2 = ((0.02, 0.07), (0.95, 0.01), (0.98, 0.97), (0.07, 0.91))


def perspective(
    im: Image.Image,
    _rng: random.Random,
    corners: tuple[tuple[float, float], ...] = KEYSTONE,
    surround: tuple[int, int, int] = (25, 25, 28),
) -> Image.Image:
    """A mild keystone, as a photo of a screen taken from slightly below and to the left, on a
    dark surround (the picture's corners go to ``corners``, fractions of its size)."""
    w, h = im.size
    target = [(x * w, y * h) for x, y in corners]
    source = [(0, 0), (w, 0), (w, h), (0, h)]
    coeffs = _perspective_coefficients(target, source)
    out = im.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        coeffs,
        Image.Resampling.BICUBIC,
        fillcolor=surround,
    )
    return out


def _perspective_coefficients(
    target: list[tuple[float, float]], source: list[tuple[float, float]]
) -> list[float]:
    rows = []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.asarray(rows, dtype=np.float64)
    b = np.asarray([c for point in source for c in point], dtype=np.float64)
    return [float(v) for v in np.linalg.solve(a, b)]


def stickers(im: Image.Image, rng: random.Random) -> Image.Image:
    """Five bright stickers (discs, stars, a speech bubble) covering ~10 % of the picture."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    radius = round(np.sqrt(0.10 * w * h / 5 / np.pi))
    colours = [(255, 214, 0), (255, 64, 129), (0, 200, 83), (41, 121, 255), (255, 255, 255)]
    for i, colour in enumerate(colours):
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        if i % 2:
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
        else:
            points = []
            for k in range(10):
                r = radius * (1.25 if k % 2 == 0 else 0.55)
                angle = np.pi / 5 * k
                points.append((cx + r * np.sin(angle), cy - r * np.cos(angle)))
            draw.polygon(points, fill=colour)
    return out


def labels(im: Image.Image, rng: random.Random) -> Image.Image:
    """Style 2's stickers: six rounded labels, triangles and hearts, in other colours, over
    ~10 % of the picture."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    side = np.sqrt(0.10 * w * h / 6)  # each about side x side
    colours = [(255, 87, 34), (156, 39, 176), (0, 188, 212), (255, 235, 59), (33, 33, 33)]
    for i in range(6):
        cx, cy = rng.uniform(0.08, 0.92) * w, rng.uniform(0.08, 0.92) * h
        colour = colours[i % len(colours)]
        shape = i % 3
        if shape == 0:  # a label, wider than tall
            draw.rounded_rectangle(
                (cx - side * 0.7, cy - side * 0.36, cx + side * 0.7, cy + side * 0.36),
                radius=round(side * 0.12),
                fill=colour,
            )
        elif shape == 1:  # a triangle
            r = side * 0.76
            draw.polygon(
                [(cx, cy - r), (cx + r, cy + r * 0.75), (cx - r, cy + r * 0.75)], fill=colour
            )
        else:  # a heart: two discs and a triangle
            r = side * 0.3
            draw.ellipse((cx - 2 * r, cy - 1.6 * r, cx, cy + 0.4 * r), fill=colour)
            draw.ellipse((cx, cy - 1.6 * r, cx + 2 * r, cy + 0.4 * r), fill=colour)
            draw.polygon(
                [(cx - 1.95 * r, cy - 0.3 * r), (cx + 1.95 * r, cy - 0.3 * r), (cx, cy + 2 * r)],
                fill=colour,
            )
    return out


def sepia(im: Image.Image, _rng: random.Random) -> Image.Image:
    """The classic sepia matrix of photo apps (and of CSS ``sepia()``)."""
    rgb = np.asarray(im, dtype=np.float64)
    matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return Image.fromarray(np.clip(rgb @ matrix.T + 0.5, 0, 255).astype(np.uint8))


def toned(im: Image.Image, dark: tuple[int, int, int], light: tuple[int, int, int]) -> Image.Image:
    """Grey levels mapped onto a ramp from ``dark`` to ``light`` (a duotone: another sepia, a
    cyanotype)."""
    return ImageOps.colorize(im.convert("L"), black=dark, white=light)


def thumbnail(im: Image.Image, longest: int) -> Image.Image:
    """The picture with its longer side ``longest`` px (a 16:9 picture at 160 is 160x90)."""
    out = im.copy()
    out.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return out


KINDS: dict[str, Edit] = {
    "screenshot": phone_screenshot,
    "screenshot_mirror": lambda im, rng: ImageOps.mirror(phone_screenshot(im, rng)),
    "crop_offcentre_60": lambda im, _r: crop_fraction(im, 0.05, 0.33, 0.60, 0.60),
    "crop_centre_60": lambda im, _r: crop_fraction(im, 0.20, 0.20, 0.60, 0.60),
    "crop_centre_75": lambda im, _r: crop_fraction(im, 0.125, 0.125, 0.75, 0.75),
    "crop_square": square_crop,
    "crop_portrait_45": portrait_crop,
    "tilt_10": lambda im, _r: tilt_inside(im, 10),
    "tilt_25": lambda im, _r: tilt_inside(im, -25),
    "tilt_10_corners": lambda im, _r: tilt_corners(im, 10),
    "tilt_25_corners": lambda im, _r: tilt_corners(im, -25),
    "perspective": perspective,
    "stickers": stickers,
}
MORE_KINDS: dict[str, Edit] = {
    "sepia": sepia,
    "thumbnail_160": lambda im, _r: thumbnail(im, 160),
}
KINDS_2: dict[str, Edit] = {
    "screenshot_dark": dark_screenshot,
    "screenshot_dark_mirror": lambda im, rng: ImageOps.mirror(dark_screenshot(im, rng)),
    "crop_offcentre_60": lambda im, _r: crop_fraction(im, 0.36, 0.05, 0.60, 0.60),
    "crop_lower_60": lambda im, _r: crop_fraction(im, 0.12, 0.36, 0.60, 0.60),
    "crop_left_75": lambda im, _r: crop_fraction(im, 0.03, 0.16, 0.75, 0.75),
    "crop_square_left": lambda im, _r: crop_fraction(
        im, 0.04, 0.0, min(im.size) / im.width, min(im.size) / im.height
    ),
    "crop_portrait_45_right": lambda im, _r: portrait_at(im, 0.85),
    "tilt_8": lambda im, _r: tilt_inside(im, -8),
    "tilt_15": lambda im, _r: tilt_inside(im, 15),
    "tilt_20": lambda im, _r: tilt_inside(im, -20),
    "tilt_8_corners": lambda im, _r: tilt_corners(im, -8),
    "tilt_20_corners": lambda im, _r: tilt_corners(im, 20),
    "perspective_above": lambda im, rng: perspective(im, rng, KEYSTONE_2, (230, 228, 222)),
    "labels": labels,
}
MORE_KINDS_2: dict[str, Edit] = {
    "sepia_duotone": lambda im, _r: toned(im, (38, 24, 10), (255, 242, 214)),
    "cyanotype": lambda im, _r: toned(im, (8, 30, 70), (226, 240, 250)),
    "grayscale": lambda im, _r: im.convert("L").convert("RGB"),
    "thumbnail_160": lambda im, _r: thumbnail(im, 160),
}


# ---------------------------------------------------------------- hard negatives

WORDS = [
    "amount",
    "total",
    "invoice",
    "payment",
    "date",
    "customer",
    "account",
    "reference",
    "item",
    "quantity",
    "price",
    "service",
    "delivery",
    "order",
    "number",
    "tax",
    "due",
    "balance",
    "address",
    "street",
    "city",
    "phone",
    "email",
    "description",
    "unit",
    "discount",
    "subtotal",
    "shipping",
    "terms",
    "conditions",
    "thank",
    "you",
    "business",
]


def document_page(page: int) -> Image.Image:
    """Page ``page`` of one of three document templates (``page % 3``): an invoice, a letter
    on letterhead paper, a till receipt (long and narrow). Pages of one template share the
    letterhead, logo, rules and footer; their text, its length and the figures differ."""
    rng = random.Random(f"{SALT}:doc:{page}")
    template = (_invoice_page, _letter_page, _receipt_page)[page % 3]
    return template(page, rng)


def _text_line(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize()


def _invoice_page(page: int, rng: random.Random) -> Image.Image:
    """An invoice: letterhead, a table of items with prices, a total and a footer."""
    im = Image.new("RGB", (1240, 1754), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    draw.rectangle((80, 80, 240, 200), fill=(20, 60, 140))
    draw.text((100, 120), "ACME", font=font(44), fill=(255, 255, 255))
    draw.text((300, 95), "ACME Supplies Ltd.", font=font(48), fill=(20, 20, 20))
    draw.text((300, 160), "12 Harbour Road, Springfield", font=font(28), fill=(90, 90, 90))
    draw.line((80, 250, 1160, 250), fill=(20, 60, 140), width=4)
    draw.text((80, 290), f"INVOICE No. {1000 + page * 37}", font=font(40), fill=(20, 20, 20))
    draw.text(
        (760, 290),
        f"Date 2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        font=font(30),
        fill=(60, 60, 60),
    )
    draw.rectangle((80, 360, 1160, 410), fill=(230, 234, 242))
    for x, title in ((90, "Description"), (760, "Qty"), (1000, "Amount")):
        draw.text((x, 368), title, font=font(30), fill=(20, 20, 20))
    y = 430
    for _ in range(rng.randint(8, 26)):
        draw.text((90, y), _text_line(rng, 2, 5), font=font(30), fill=(30, 30, 30))
        draw.text((770, y), str(rng.randint(1, 12)), font=font(30), fill=(30, 30, 30))
        price = f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}"
        draw.text((1000, y), price, font=font(30), fill=(30, 30, 30))
        y += 46
    draw.line((80, y + 20, 1160, y + 20), fill=(20, 20, 20), width=2)
    draw.text((800, y + 40), f"Total {rng.randint(100, 9999)}.00", font=font(36), fill=(0, 0, 0))
    for line in range(rng.randint(0, 4)):  # payment terms, as long as the page needs
        draw.text(
            (80, y + 120 + line * 40), _text_line(rng, 6, 11), font=font(26), fill=(90, 90, 90)
        )
    draw.text(
        (80, 1660), "Page 1 of 1 - Thank you for your business", font=font(26), fill=(120, 120, 120)
    )
    return im


def _letter_page(page: int, rng: random.Random) -> Image.Image:
    """A letter on letterhead paper: a round logo and a coloured band, an address block, a
    greeting, paragraphs of text, a signature and a footer with the company's details."""
    im = Image.new("RGB", (1240, 1754), (253, 252, 248))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 1240, 40), fill=(120, 20, 40))
    draw.ellipse((90, 80, 230, 220), fill=(120, 20, 40))
    draw.text((122, 128), "NB", font=font(52), fill=(253, 252, 248))
    draw.text((270, 100), "Northbridge & Partners", font=font(50), fill=(120, 20, 40))
    draw.text((270, 165), "Solicitors - 4 Mill Lane - Eastbury", font=font(26), fill=(80, 80, 80))
    y = 300
    for _ in range(4):  # the recipient's address
        draw.text((100, y), _text_line(rng, 2, 4), font=font(28), fill=(30, 30, 30))
        y += 38
    draw.text((860, 300), f"{rng.randint(1, 28)} March 2026", font=font(28), fill=(30, 30, 30))
    y += 60
    draw.text((100, y), f"Dear {rng.choice(WORDS).capitalize()},", font=font(30), fill=(20, 20, 20))
    y += 70
    for _ in range(rng.randint(2, 5)):  # paragraphs of ragged lines, as many as fit
        if y > 1250:
            break
        for line in range(rng.randint(3, 7)):
            text = _text_line(rng, 5, 8)
            draw.text((100 + (40 if line == 0 else 0), y), text, font=font(28), fill=(25, 25, 25))
            y += 40
        y += 34
    draw.text((100, y + 10), "Yours sincerely,", font=font(30), fill=(20, 20, 20))
    points = [(110 + k * 18, y + 110 + rng.randint(-22, 22)) for k in range(14)]
    draw.line(points, fill=(20, 30, 90), width=4)  # the signature
    draw.line((100, 1640, 1140, 1640), fill=(120, 20, 40), width=2)
    draw.text(
        (100, 1660),
        "Northbridge & Partners LLP - registered in England no. 0451 2290",
        font=font(22),
        fill=(110, 110, 110),
    )
    return im


def _receipt_page(page: int, rng: random.Random) -> Image.Image:
    """A till receipt: long and narrow, mostly text, the shop's name and address on top,
    items and prices, dashed rules, a total, a barcode."""
    items = rng.randint(6, 22)
    height = 900 + items * 44
    im = Image.new("RGB", (560, height), (250, 249, 244))
    draw = ImageDraw.Draw(im)
    draw.text((150, 40), "CORNER MARKET", font=font(40), fill=(20, 20, 20))
    draw.text((120, 100), "221 Station Street, Millford", font=font(24), fill=(40, 40, 40))
    draw.text((170, 135), "Tel 0161 555 0134", font=font(24), fill=(40, 40, 40))
    draw.text(
        (40, 200),
        f"Receipt {40000 + page * 113}   Till {rng.randint(1, 6)}",
        font=font(24),
        fill=(30, 30, 30),
    )
    y = 250

    def dashes(at: int) -> None:
        for x in range(30, 530, 20):
            draw.line((x, at, x + 10, at), fill=(60, 60, 60), width=2)

    dashes(y)
    y += 25
    for _ in range(items):
        draw.text((40, y), _text_line(rng, 1, 3).upper()[:22], font=font(26), fill=(20, 20, 20))
        draw.text(
            (420, y),
            f"{rng.randint(0, 40)}.{rng.randint(0, 99):02d}",
            font=font(26),
            fill=(20, 20, 20),
        )
        y += 44
    dashes(y + 10)
    draw.text((40, y + 40), "TOTAL", font=font(34), fill=(0, 0, 0))
    draw.text(
        (390, y + 40),
        f"{rng.randint(10, 300)}.{rng.randint(0, 99):02d}",
        font=font(34),
        fill=(0, 0, 0),
    )
    draw.text(
        (40, y + 100), f"CARD ****{rng.randint(1000, 9999)}", font=font(26), fill=(30, 30, 30)
    )
    draw.text(
        (40, y + 145),
        f"VAT {rng.randint(1, 50)}.{rng.randint(0, 99):02d}",
        font=font(26),
        fill=(30, 30, 30),
    )
    dashes(y + 200)
    draw.text((110, y + 230), "Thank you for shopping", font=font(28), fill=(20, 20, 20))
    x = 80
    while x < 480:  # the barcode of the receipt number
        bar = rng.choice((3, 3, 6, 9))
        draw.rectangle((x, y + 300, x + bar - 1, y + 420), fill=(10, 10, 10))
        x += bar + rng.choice((3, 6))
    return im


# A catalogue's product lines: one shape each, several versions differing in body colour, label
# colour and text, as a shop photographs them. Body colours repeat within a line, so some pairs
# differ by their label only.
BODY_COLOURS = (
    (38, 92, 60),
    (150, 30, 40),
    (38, 92, 60),
    (30, 60, 130),
    (150, 30, 40),
    (230, 200, 60),
)
LABEL_COLOURS = (
    (245, 240, 225),
    (250, 200, 40),
    (255, 255, 255),
    (200, 225, 240),
    (60, 60, 60),
    (240, 120, 40),
)


def product_shot(number: int) -> Image.Image:
    """A product on white with a soft shadow: product lines (``number % 3``) share one
    outline (a bottle, a mug, a box); their versions differ in colour, label and text."""
    rng = random.Random(f"{SALT}:product:{number}")
    im = Image.new("RGB", (1200, 1200), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    version = number // 3
    body = BODY_COLOURS[version % len(BODY_COLOURS)]
    label = LABEL_COLOURS[(version * 5 + number) % len(LABEL_COLOURS)]
    ink = (20, 20, 20) if sum(label) > 400 else (250, 250, 250)
    name = f"{rng.choice(WORDS).upper()}"
    draw.ellipse((330, 960, 870, 1040), fill=(228, 228, 228))
    line = number % 3
    if line == 0:  # a bottle: neck, cap, shoulders, a label round its body
        draw.rectangle((555, 200, 645, 250), fill=(40, 40, 40))
        draw.rectangle((560, 250, 640, 400), fill=body)
        draw.rounded_rectangle((450, 380, 750, 990), radius=70, fill=body)
        draw.rectangle((450, 560, 750, 820), fill=label)
        draw.text((480, 600), name[:9], font=font(48), fill=ink)
        draw.text((480, 670), f"{rng.randint(250, 1000)} ml", font=font(34), fill=ink)
        _label_mark(draw, rng, (640, 700, 730, 800), ink)
    elif line == 1:  # a mug with a handle and a printed motif
        draw.rounded_rectangle((380, 420, 760, 980), radius=30, fill=body)
        draw.ellipse((700, 560, 900, 820), outline=body, width=40)
        draw.rounded_rectangle((420, 560, 720, 840), radius=20, fill=label)
        _label_mark(draw, rng, (470, 580, 670, 760), ink)
        draw.text((450, 770), name[:8], font=font(40), fill=ink)
    else:  # a box standing at an angle: its front carries the brand, its side a stripe
        draw.polygon(
            [(350, 500), (650, 420), (880, 520), (880, 960), (580, 1010), (350, 900)], fill=body
        )
        draw.polygon([(580, 560), (880, 520), (880, 960), (580, 1010)], fill=_shade(body, 0.75))
        draw.line((650, 420, 580, 560, 580, 1010), fill=(255, 255, 255), width=6)
        draw.polygon([(370, 640), (560, 680), (560, 800), (370, 760)], fill=label)
        draw.text((385, 690), name[:7], font=font(36), fill=ink)
        _label_mark(draw, rng, (640, 640, 820, 860), label)
    return im


def _shade(colour: tuple[int, ...], factor: float) -> tuple[int, int, int]:
    r, g, b = (round(c * factor) for c in colour[:3])
    return (r, g, b)


def _label_mark(
    draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int], ink: Any
) -> None:
    """A motif in ``box``: a disc, a star, stripes or a leaf, chosen by ``rng``."""
    left, top, right, bottom = box
    cx, cy, r = (left + right) / 2, (top + bottom) / 2, min(right - left, bottom - top) / 2
    motif = rng.randrange(4)
    if motif == 0:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=ink, width=8)
    elif motif == 1:
        points = [
            (
                cx + (r if k % 2 == 0 else r * 0.45) * np.sin(np.pi / 5 * k),
                cy - (r if k % 2 == 0 else r * 0.45) * np.cos(np.pi / 5 * k),
            )
            for k in range(10)
        ]
        draw.polygon(points, fill=ink)
    elif motif == 2:
        for k in range(4):
            y = top + (bottom - top) * (k + 0.5) / 4
            draw.line((left, y, right, y), fill=ink, width=10)
    else:
        draw.ellipse((cx - r, cy - r * 0.45, cx + r, cy + r * 0.45), fill=ink)
        draw.line((cx - r, cy, cx + r, cy), fill=(255, 255, 255), width=4)


# True copies of a few documents and products, so that a guard refusing whatever looks like a
# document or a product shot is caught: (edit, JPEG quality) by kind.
LOOKALIKE_COPIES: dict[str, tuple[Callable[[Image.Image], Image.Image], int]] = {
    "jpeg_q50": (lambda im: im, 50),
    "resize_60": (
        lambda im: im.resize(
            (round(im.width * 0.6), round(im.height * 0.6)), Image.Resampling.LANCZOS
        ),
        92,
    ),
    "bright_110": (lambda im: ImageEnhance.Brightness(im).enhance(1.10), 92),
    "rot90": (lambda im: im.transpose(Image.Transpose.ROTATE_90), 92),
}
COPIED = 3  # documents and products 0..2 (one of each template and product line)


def lookalike_copies(outdir: Path, files: dict[str, dict[str, str]]) -> None:
    """Add to ``files`` (and write) the ``LOOKALIKE_COPIES`` of the first ``COPIED``
    documents and products, made from their written files; kinds ``document_jpeg_q50``..."""
    for path, entry in list(files.items()):
        group, _, name = entry["family"].partition("/")
        if group not in ("document", "product") or entry["kind"] != "original":
            continue
        if int(name.rsplit("-", 1)[1]) >= COPIED:
            continue
        with Image.open(outdir / path) as im:
            picture = im.convert("RGB")
        for kind, (edit, quality) in LOOKALIKE_COPIES.items():
            copy = f"{Path(path).parent}/copies/{Path(path).stem}_{kind}.jpg"
            (outdir / copy).parent.mkdir(parents=True, exist_ok=True)
            edit(picture).save(outdir / copy, "JPEG", quality=quality)
            files[copy] = {"family": entry["family"], "kind": f"{group}_{kind}"}


# ---------------------------------------------------------------- writing


def choose_families(
    make_corpus: ModuleType, cache: Path, count: int, half: str = "public", salt: str = SALT
) -> list[Any]:
    """``count`` families of one half ("public" or "heldout"), one per look-alike group, in
    a fixed order (by ``salt``)."""
    package_root, _ = make_corpus.fetch_packages(cache)
    public, heldout = make_corpus.split_families(make_corpus.discover_families(package_root))
    by_group: dict[str, Any] = {}
    for family in public if half == "public" else heldout:
        by_group.setdefault(family.group, family)
    ordered = sorted(
        by_group.values(), key=lambda f: hashlib.sha256(f"{salt}:{f.name}".encode()).hexdigest()
    )
    return ordered[:count]


def master(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.draft("RGB", (MASTER_SIDE, MASTER_SIDE))
        out = ImageOps.exif_transpose(im).convert("RGB")
    out.thumbnail((MASTER_SIDE, MASTER_SIDE), Image.Resampling.LANCZOS)
    return out


def write(outdir: Path, name: str, im: Image.Image) -> str:
    path = outdir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, "JPEG", quality=92)
    return name


def build(
    outdir: Path,
    families: list[Any],
    documents: int,
    products: int,
    kinds: dict[str, Edit] = KINDS,
    salt: str = SALT,
    first_page: int = 0,
) -> dict[str, Any]:
    """Write the corpus; return its truth. Documents are pages ``first_page`` on of the
    template, products numbers ``first_page`` on."""
    files: dict[str, dict[str, str]] = {}
    photo_families = []
    for number, family in enumerate(families):
        picture = master(family.files[0])
        fam = f"photo/{family.name}"
        photo_families.append(fam)
        token = hashlib.sha256(f"{salt}:{family.name}".encode()).hexdigest()[:8]
        files[write(outdir, f"photos/{token}/IMG_{number:04d}.jpg", picture)] = {
            "family": fam,
            "kind": "original",
        }
        for index, (kind, edit) in enumerate(kinds.items()):
            rng = random.Random(f"{salt}:{family.name}:{kind}")
            name = f"shared/{token}/{index:02d}_{hashlib.sha256(kind.encode()).hexdigest()[:6]}.jpg"
            files[write(outdir, name, edit(picture, rng))] = {"family": fam, "kind": kind}
    doc_families = []
    for page in range(documents):
        fam = f"document/page-{page:02d}"
        doc_families.append(fam)
        picture = document_page(first_page + page)
        files[write(outdir, f"scans/scan_{page:03d}.jpg", picture)] = {
            "family": fam,
            "kind": "original",
        }
    product_families = []
    for number in range(products):
        fam = f"product/item-{number:02d}"
        product_families.append(fam)
        picture = product_shot(first_page + number)
        files[write(outdir, f"shop/item_{number:03d}.jpg", picture)] = {
            "family": fam,
            "kind": "original",
        }
    lookalike_copies(outdir, files)
    negatives = [
        sorted(pair)
        for group in (doc_families, product_families, photo_families)
        for pair in itertools.combinations(group, 2)
    ]
    return {
        "files": files,
        "hard_negatives": negatives,
        "hard_negative_groups": {
            "document": len(doc_families) * (len(doc_families) - 1) // 2,
            "product": len(product_families) * (len(product_families) - 1) // 2,
            "photo (shared chrome)": len(photo_families) * (len(photo_families) - 1) // 2,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--families", type=int, default=20)
    parser.add_argument("--documents", type=int, default=12)
    parser.add_argument("--products", type=int, default=12)
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "bench")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "dedupdb-bench")
    parser.add_argument(
        "--half",
        choices=["public", "heldout"],
        default="public",
        help="which half of shared/bench's pictures (heldout: make_heldout.py's)",
    )
    parser.add_argument(
        "--style", type=int, choices=[1, 2], default=1, help="2: other parameters for every edit"
    )
    parser.add_argument(
        "--more-kinds", action="store_true", help="also sepia and 160 px thumbnails (style 1)"
    )
    args = parser.parse_args()
    make_corpus = load_make_corpus(args.shared)
    salt = SALTS[args.style]
    families = choose_families(make_corpus, args.cache, args.families, args.half, salt)
    if args.style == 1:
        kinds = {**KINDS, **MORE_KINDS} if args.more_kinds else KINDS
    else:
        kinds = {**KINDS_2, **MORE_KINDS_2}
    # Style 2's pages and products are others of the same templates.
    first = 0 if args.style == 1 else 100
    truth = build(args.outdir, families, args.documents, args.products, kinds, salt, first)
    (args.outdir / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(
        f"{args.outdir}: {len(families)} photo families, {len(truth['files'])} files, "
        f"{len(truth['hard_negatives'])} hard-negative family pairs"
    )


if __name__ == "__main__":
    main()
