"""Pictures that only look alike, for the fine-hash tests: pages of one letter template and
product shots of one outline on white, drawn with Pillow (as benchmarks/make_heavy_corpus.py
draws its hard negatives, smaller)."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFont

WORDS = ("amount", "total", "invoice", "payment", "date", "customer", "account", "reference",
         "item", "quantity", "price", "service", "delivery", "order", "number", "balance",
         "address", "street", "description", "discount", "shipping", "terms")  # fmt: skip


def letter_page(seed: int) -> Image.Image:
    """A page of one letterhead template: the same band, logo, name and footer; paragraphs of
    other words, of other lengths."""
    rng = random.Random(seed)
    page = Image.new("RGB", (620, 877), (253, 252, 248))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=14)
    draw.rectangle((0, 0, 620, 20), fill=(120, 20, 40))
    draw.ellipse((45, 40, 115, 110), fill=(120, 20, 40))
    draw.text((135, 55), "Northbridge & Partners", font=ImageFont.load_default(size=25),
              fill=(120, 20, 40))  # fmt: skip
    y = 150
    for _ in range(rng.randint(3, 5)):
        for _ in range(rng.randint(3, 7)):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 8)))
            draw.text((50, y), words.capitalize(), font=font, fill=(25, 25, 25))
            y += 20
        y += 17
        if y > 640:
            break
    draw.text((50, y + 10), "Yours sincerely,", font=font, fill=(20, 20, 20))
    draw.line((50, 820, 570, 820), fill=(120, 20, 40), width=1)
    draw.text((50, 830), "Northbridge & Partners LLP - registered in England", font=font,
              fill=(110, 110, 110))  # fmt: skip
    return page


def bottle_shot(motif: int, word: str) -> Image.Image:
    """A green bottle of one shape on white with a soft shadow; its label's motif and word
    differ from one product to the next."""
    shot = Image.new("RGB", (600, 600), (255, 255, 255))
    draw = ImageDraw.Draw(shot)
    body, label, ink = (38, 92, 60), (245, 240, 225), (20, 20, 20)
    draw.ellipse((165, 480, 435, 520), fill=(228, 228, 228))
    draw.rectangle((278, 100, 322, 125), fill=(40, 40, 40))
    draw.rectangle((280, 125, 320, 200), fill=body)
    draw.rounded_rectangle((225, 190, 375, 495), radius=35, fill=body)
    draw.rectangle((225, 280, 375, 410), fill=label)
    draw.text((235, 290), word, font=ImageFont.load_default(size=30), fill=ink)
    box = (300, 325, 370, 405)  # the label's motif
    if motif == 0:
        draw.ellipse(box, outline=ink, width=8)
    elif motif == 1:
        for k in range(4):
            draw.line((box[0], box[1] + 8 + k * 20, box[2], box[1] + 8 + k * 20), fill=ink, width=9)
    else:
        draw.polygon([(335, box[1]), (box[2], box[3]), (box[0], box[3])], fill=ink)
    return shot
