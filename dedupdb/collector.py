"""Python's cyclic garbage collector: the one place dedupdb pauses and resumes it.

At start-up, importing SQLAlchemy, numpy and Pillow creates a few hundred thousand objects,
none of them garbage, and the collector runs over them again and again as they are made: about
15% of the command's start-up CPU. So the command pauses the collector while it loads its modules
(``pause``) and resumes it once they are loaded (``resume``), leaving what start-up made out of
all future collections (``gc.freeze``): frozen objects are also never written to by a worker's
collector, so forked workers keep sharing their memory pages with the process that forked them.
A worker forked while the collector was paused resumes it the same way once it has loaded its
own code.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def pause() -> None:
    """Pause the collector until ``resume`` (reference counting still frees everything)."""
    gc.disable()


def paused() -> bool:
    return not gc.isenabled()


def resume(*, freeze: bool = True) -> None:
    """Resume the collector, leaving every object alive now out of all future collections
    (``freeze``; not when nothing worth it was loaded: a usage error, ``--help``)."""
    if freeze:
        gc.freeze()
    gc.enable()


# Around a stage's own work: the report stage and its writers allocate millions of small objects
# (pairs, members, their dicts) and no reference cycles. Every so many allocations the collector
# would scan all of them again, which grows with the library; reference counting frees them
# all without it.
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
