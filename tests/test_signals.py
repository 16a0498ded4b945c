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


def test_the_colours_are_reduced_once_for_both_signatures() -> None:
    picture = photo(4, (900, 600))
    small = signals.colour_source(picture)
    assert min(small.size) in range(32, 64)
    assert signals.colour_source(small) is small  # already reduced: the indexer passes it on
    assert signals.colour_signature(small) == signals.colour_signature(picture)
    windows = hashes.CROP_WINDOWS
    assert signals.crop_colours(small, windows) == signals.crop_colours(picture, windows)


def test_colour_signature_is_the_exact_mean_of_each_cell_at_any_size() -> None:
    # Flat blocks of random colours 13 px across: their edges fall anywhere in the cells, so a
    # reduction that weighs a partial block like a whole one, or cells that straddle reduced
    # pixels, shows (it was up to 9 levels off at 320x200 and 8 at 400x300).
    rng = np.random.default_rng(3)
    for width, height in ((320, 200), (512, 320), (400, 300), (1000, 140)):
        blocks = rng.integers(0, 256, (height // 13 + 1, width // 13 + 1, 3), dtype=np.uint8)
        pixels = np.kron(blocks, np.ones((13, 13, 1), dtype=np.uint8))[:height, :width]
        grid = signals.SIGNATURE_GRID
        exact = pixels.reshape(grid, height // grid, grid, width // grid, 3).mean(axis=(1, 3))
        signature = np.frombuffer(signals.colour_signature(Image.fromarray(pixels)), np.uint8)
        assert np.abs(signature.reshape(grid, grid, 3) - exact).max() <= 2, (width, height)


def test_crop_colours_are_the_mean_colours_of_each_window() -> None:
    # Left half red, right half blue: a window's cells are red, blue or a mix by area.
    pixels = np.zeros((64, 96, 3), dtype=np.uint8)
    pixels[:, :48] = (200, 0, 0)
    pixels[:, 48:] = (0, 0, 200)
    picture = Image.fromarray(pixels)
    whole, left_half = (0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 0.5, 1.0)
    cells = np.frombuffer(signals.crop_colours(picture, [whole, left_half]), dtype=np.uint8)
    grids = cells.reshape(2, 4, 4, 3)
    assert (grids[0, :, :2] == (200, 0, 0)).all() and (grids[0, :, 2:] == (0, 0, 200)).all()
    assert (grids[1] == (200, 0, 0)).all()
    assert grids.tobytes()[:48] == signals.colour_signature(picture)
