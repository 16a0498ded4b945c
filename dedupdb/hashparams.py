"""What determines the stored hash values (``HashParams``, recorded in the database), in a
module that imports nothing heavy: the indexing process needs them, but not numpy or Pillow,
which only its workers load (see ``hashes`` for the algorithms and the versions' history)."""

from __future__ import annotations

from dataclasses import dataclass

# Bumped whenever any stored hash value changes (``hashes``' docstring lists the versions).
HASH_VERSION = 4


@dataclass(frozen=True)
class HashParams:
    """What determines the stored hash values; recorded in the database."""

    hash_size: int = 8
    version: int = HASH_VERSION

    def __post_init__(self) -> None:
        if self.hash_size not in (8, 16):
            raise ValueError("hash size must be 8 (64-bit hashes) or 16 (256-bit hashes)")

    @property
    def bits(self) -> int:
        return self.hash_size * self.hash_size

    @property
    def nbytes(self) -> int:
        return self.bits // 8
