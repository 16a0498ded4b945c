"""Python's cyclic garbage collector around start-up: the one place the index path pauses and
resumes it.

Importing SQLAlchemy, numpy and Pillow creates a few hundred thousand objects, none of them
garbage, and the collector runs over them again and again as they are made: about 15% of the
command's start-up CPU. So the command pauses the collector while it loads its modules
(``pause``) and resumes it once they are loaded (``resume``), leaving what start-up made out of
all future collections (``gc.freeze``): frozen objects are also never written to by a worker's
collector, so forked workers keep sharing their memory pages with the process that forked them.
A worker forked while the collector was paused resumes it the same way once it has loaded its
own code.
"""

from __future__ import annotations

import gc


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
