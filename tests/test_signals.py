"""Quality signals stored at index time: they must rank and separate pictures the way a person
would (sharper beats blurred, light is not dark, blank is flagged)."""

from __future__ import annotations

import numpy as np
from conftest import photo
from PIL import Image, ImageFilter

from dedupdb import hashes, signals


def measure(picture: Image.Image) -> signals.Signals:
    rgb = np.asarray(picture.convert("RGB"))
    return signals.measure(rgb, hashes.gray_square(rgb))


def test_blurred_copy_is_less_sharp() -> None:
    picture = photo(1, (256, 192))
    sharp = measure(picture).sharpness
    blurred = measure(picture.filter(ImageFilter.GaussianBlur(3))).sharpness
    assert sharp > 2 * blurred > 0


def test_uniform_and_near_uniform_pictures_are_low_information() -> None:
    assert measure(Image.new("RGB", (200, 150), (40, 90, 200))).low_information
    noise = np.random.default_rng(0).normal(128, 1, (150, 200, 3))
    nearly = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))
    assert measure(nearly).low_information
    assert not measure(photo(2)).low_information


def test_colour_signature_tells_light_from_dark_and_colours_apart() -> None:
    picture = photo(3)
    base = np.frombuffer(measure(picture).colour, dtype=np.uint8).astype(int)
    dark = np.frombuffer(measure(picture.point(lambda v: v // 2)).colour, dtype=np.uint8)
    assert base.shape == (signals.SIGNATURE_GRID * signals.SIGNATURE_GRID * 3,)
    assert (base - dark.astype(int)).mean() > 30
    red = measure(Image.new("RGB", (64, 64), (255, 0, 0))).colour
    assert np.frombuffer(red, dtype=np.uint8).reshape(-1, 3).tolist()[0] == [255, 0, 0]


def test_thumbnail_is_a_small_gray_square_of_the_picture() -> None:
    result = measure(photo(4))
    thumb = np.frombuffer(result.thumb, dtype=np.uint8)
    assert thumb.size == signals.THUMB_SIZE**2
    assert thumb.std() > 5  # the picture, not a blank


def test_signals_are_deterministic() -> None:
    assert measure(photo(5)) == measure(photo(5))
