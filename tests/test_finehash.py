"""The fine hash (dedupdb/finehash.py) on real drawn pages and products: alignment under the
8 turns, copies agreeing, look-alikes disagreeing, the stored form."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from lookalikes import bottle_shot, letter_page
from PIL import Image, ImageEnhance

from dedupdb import finehash
from dedupdb.decode import DecodedImage, decode
from dedupdb.hashes import DIHEDRAL, VARIANTS, centred


def luma_of(picture: Image.Image, **save: object) -> np.ndarray:
    """The whole frame's working luminance, as the index computes it from the saved file."""
    import io

    buffer = io.BytesIO()
    picture.save(buffer, "JPEG" if save else "PNG", **save)
    decoded = decode(buffer.getvalue())
    assert isinstance(decoded, DecodedImage)
    return decoded.working_luma


def fine(picture: Image.Image, **save: object) -> finehash.FineHash:
    found = finehash.unpack(finehash.compute(luma_of(picture, **save)))
    assert found is not None
    return found


def best(first: finehash.FineHash, second: finehash.FineHash) -> float:
    return min(
        finehash.disagreement(finehash.aligned(first.coefficients, v), second.coefficients)
        for v in range(VARIANTS)
    )


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, (finehash.SQUARE, finehash.SQUARE), elements=st.floats(0, 255)),
    st.integers(0, VARIANTS - 1),
)
def test_aligned_coefficients_are_those_of_the_turned_picture(
    pixels: np.ndarray, variant: int
) -> None:
    turned = np.ascontiguousarray(DIHEDRAL[variant](pixels))
    assert np.allclose(
        finehash.aligned(finehash.coefficients(pixels), variant),
        finehash.coefficients(turned),
        atol=1e-6,
    )


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 40), st.sampled_from(list(Image.Transpose)))
def test_a_turned_page_agrees_with_its_page_once_aligned(seed: int, turn: Image.Transpose) -> None:
    page = letter_page(seed).convert("L")
    upright, turned = fine(page), fine(page.transpose(turn))
    variant = next(
        v
        for v in range(VARIANTS)
        if np.array_equal(DIHEDRAL[v](np.asarray(page)), np.asarray(page.transpose(turn)))
    )
    aligned = finehash.aligned(upright.coefficients, variant)
    assert finehash.disagreement(aligned, turned.coefficients) <= 0.02


def test_copies_of_a_page_agree_and_other_pages_of_its_template_do_not() -> None:
    page = fine(letter_page(1))
    copies = [
        fine(letter_page(1), quality=50),
        fine(letter_page(1).resize((372, 526), Image.Resampling.LANCZOS), quality=90),
        fine(ImageEnhance.Brightness(letter_page(1)).enhance(1.1), quality=92),
    ]
    for copy in copies:
        assert best(page, copy) <= 0.02
    for seed in (2, 3):
        assert best(page, fine(letter_page(seed))) > 0.06


def test_signals_tell_pages_and_products_from_photos() -> None:
    from conftest import photo

    page, bottle, picture = fine(letter_page(1)), fine(bottle_shot(0, "LIME")), fine(photo(1))
    assert page.text > 0.45 > max(bottle.text, picture.text)
    assert bottle.flat > 0.5 > max(picture.flat, page.flat)


def test_stored_form_round_trips_and_other_versions_are_ignored() -> None:
    blob = finehash.compute(luma_of(letter_page(4)))
    assert len(blob) == finehash.SIZE and blob[0] == finehash.VERSION
    again = finehash.unpack(blob)
    assert again is not None and again.coefficients.shape == (finehash.SIDE, finehash.SIDE)
    assert again.coefficients[0, 0] == 0 and np.abs(again.coefficients).max() == 127
    assert finehash.unpack(bytes([finehash.VERSION + 1]) + blob[1:]) is None
    assert finehash.unpack(blob[:-1]) is None
    assert finehash.unpack(None) is None


def test_a_window_of_the_coefficients_is_that_of_the_cropped_picture() -> None:
    """``window`` carries a whole picture's coefficients to a centre crop's: they agree with
    the cropped picture's own over the band that survives, as a copy's do."""
    bottle = bottle_shot(2, "PEAR")
    box = centred(0.8)
    crop = bottle.crop((60, 60, 540, 540))
    whole, part = fine(bottle), fine(crop)
    band = finehash.window_band(box)
    carried = finehash.window(whole.coefficients, box)
    assert finehash.disagreement(carried, part.coefficients, band) <= 0.055
    other = fine(bottle_shot(0, "LIME").crop((60, 60, 540, 540)))
    assert finehash.disagreement(carried, other.coefficients, band) > 0.055
