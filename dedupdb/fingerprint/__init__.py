"""The fingerprint stage: a file's bytes in, what dedupdb stores about its content out.

- ``records``: the stage's plain data (``FingerprintSettings``, ``Fingerprint``, ``Rejected``;
  the per-file ``Task`` and its ``Result``: ``Indexed``, ``KnownContent`` or ``NotIndexed``).
  Imports nothing heavy, so the indexing process plans and writes without the decoders.
- ``compute``: ``fingerprint(bytes or binary file, settings)``, pure: decode, content hash,
  perceptual hashes, quality signals; no database, no path.
- ``files``: ``process_file(task)``, what an executor runs for each file of the tree: read
  once, recognise known content by its hash, fingerprint, turn failures into ``NotIndexed``.

The two working modules load numpy and Pillow: they are imported on first use of their names.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .records import (
    IMAGE_FIELDS,
    Fingerprint,
    FingerprintSettings,
    Indexed,
    KnownContent,
    NotIndexed,
    PackedFeatures,
    Rejected,
    Result,
    Task,
)

if TYPE_CHECKING:
    from .compute import fingerprint, fingerprint_path, warm_up
    from .files import process_file

_LAZY = {
    "fingerprint": "compute",
    "fingerprint_path": "compute",
    "warm_up": "compute",
    "process_file": "files",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


__all__ = [
    "IMAGE_FIELDS",
    "Fingerprint",
    "FingerprintSettings",
    "Indexed",
    "KnownContent",
    "NotIndexed",
    "PackedFeatures",
    "Rejected",
    "Result",
    "Task",
    "fingerprint",
    "fingerprint_path",
    "process_file",
    "warm_up",
]
