"""Screenshots of pictures in made-up app chrome, for the tests of ``inner`` (not one app's
look: light and dark themes, the picture at 35 to 90 % of the width, at different heights,
captions above or below it, square or rounded corners)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont
from skimage import data

# Real photos shipped with scikit-image (a few hundred pixels each).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def photo(name: str) -> Image.Image:
    """One of scikit-image's sample photos, in RGB."""
    picture = getattr(data, name)()
    return Image.fromarray(picture).convert("RGB")


@dataclass(frozen=True)
class Chrome:
    """How a made-up app shows a picture."""

    dark: bool = False
    width_share: float = 0.55  # the picture's width, as a share of the screen's
    top: float = 0.17  # where the picture starts, as a share of the screen's height
    caption_above: bool = False
    rounded: int = 0  # corner radius, in screen pixels
    size: tuple[int, int] = (720, 1560)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def screenshot(picture: Image.Image, chrome: Chrome, seed: int = 0) -> Image.Image:
    """``picture`` shown inside ``chrome``: a status bar, an app bar, lines of text around it
    and a navigation bar."""
    rng = random.Random(seed)
    width, height = chrome.size
    page = (24, 24, 28) if chrome.dark else (250, 250, 250)
    ink = (220, 220, 220) if chrome.dark else (50, 50, 50)
    bar = (40, 40, 48) if chrome.dark else (33, 90, 160)
    screen = Image.new("RGB", (width, height), page)
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, width, 50), fill=(0, 0, 0) if chrome.dark else (30, 30, 30))
    draw.text((20, 10), f"{rng.randint(0, 23)}:{rng.randint(10, 59)}", font=_font(26), fill="white")
    draw.rectangle((0, 50, width, 150), fill=bar)
    draw.text((90, 80), rng.choice(("Gallery", "Messages", "Feed")), font=_font(36), fill="white")
    shown = picture.copy()
    shown.thumbnail((round(width * chrome.width_share), round(height * 0.6)))
    x, y = (width - shown.width) // 2, round(height * chrome.top)
    if chrome.caption_above:
        for line in range(2):
            draw.text(
                (40, y - 90 + line * 40), "Shared by a friend, yesterday", font=_font(28), fill=ink
            )
    if chrome.rounded:
        mask = Image.new("L", shown.size, 0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, *shown.size), chrome.rounded, fill=255)
        screen.paste(shown, (x, y), mask)
    else:
        screen.paste(shown, (x, y))
    below = y + shown.height + 36
    for line in range(3):
        words = " ".join(rng.choice(("lorem", "ipsum", "dolor", "amet", "sit")) for _ in range(5))
        draw.text((40, below + line * 44), words, font=_font(28), fill=ink)
    draw.rectangle(
        (0, height - 120, width, height), fill=(16, 16, 16) if chrome.dark else (238, 238, 238)
    )
    for i in range(3):
        cx = width // 4 * (i + 1)
        draw.ellipse((cx - 24, height - 84, cx + 24, height - 36), outline=ink, width=4)
    return screen


# A spread of chromes that no two tests tune to.
CHROMES = (
    Chrome(),
    Chrome(dark=True, width_share=0.4, top=0.3),
    Chrome(width_share=0.9, top=0.12, caption_above=False, rounded=24),
    Chrome(dark=True, width_share=0.7, top=0.25, caption_above=True, rounded=16),
    Chrome(width_share=0.35, top=0.45, caption_above=True),
    Chrome(width_share=0.6, top=0.2, size=(1080, 2340)),
)
