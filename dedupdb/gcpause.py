"""Python's cyclic garbage collector paused while a stage builds many objects.

The report stage and its writers allocate millions of small objects (pairs, members, their
dicts) and no reference cycles. Every so many allocations the collector would scan all of them
again, which grows with the library; reference counting frees them all without it. This is the
one place dedupdb pauses it around its own work (the command line also pauses it while it
imports its modules, see ``cli.main``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for the block.

    At the end, what the block allocated is moved to the oldest generation at once (what
    surviving a few collections would do): otherwise the first collection after the block
    would scan every one of those objects again. Not when the program froze objects itself
    (``gc.freeze``): unfreezing would hand those back to the collector. Nested blocks leave
    the collector as the outer one set it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
