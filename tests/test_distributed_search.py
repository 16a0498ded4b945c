"""The all-pairs search partitioned on a real Dask cluster (a LocalCluster of worker
processes) against the single-machine search: the same candidates, array for array."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from dask_cluster import local_cluster  # noqa: E402

from dedupdb.distributed.search import block_bounds, partitioned_search, search  # noqa: E402
from dedupdb.distributed.synthetic import synthetic_block  # noqa: E402
from dedupdb.hashes import DIHEDRAL  # noqa: E402
from dedupdb.search import Candidates  # noqa: E402
from dedupdb.search import all_pairs as local_search  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[distributed.Client]:
    with local_cluster(tmp_path_factory.mktemp("dask")) as connected:
        yield connected


def assert_identical(got: Candidates, expected: Candidates) -> None:
    for column in ("a", "b", "distance", "variant"):
        assert np.array_equal(getattr(got, column), getattr(expected, column)), column


@pytest.mark.slow
def test_partitioned_search_equals_the_single_machine_search(client: distributed.Client) -> None:
    # 120,000 rows with near-duplicate groups, skewed bits, turned copies, and groups that
    # cross blocks; five blocks, so fifteen tasks: five within a block, ten across.
    hashes = np.concatenate([synthetic_block(7, block, 24_000) for block in range(5)])
    expected = local_search(hashes, 10, rotations=True)
    turned = np.bincount(expected.variant, minlength=8)
    assert len(expected.a) > 100_000 and (turned[1:] > 1_000).all()  # the search is exercised
    across = block_bounds(len(hashes), 24_000)
    block_of = np.searchsorted([stop for _, stop in across], expected.a, side="right")
    assert (block_of != np.searchsorted([s for _, s in across], expected.b, side="right")).any()
    assert_identical(search(client, hashes, 10, rotations=True, block_rows=24_000), expected)


def test_blocks_made_on_the_workers_uneven_and_upright(client: distributed.Client) -> None:
    sizes = [9_000, 1_500, 7_000]
    futures = [
        client.submit(synthetic_block, 3, block, rows, pure=False)
        for block, rows in enumerate(sizes)
    ]
    hashes = np.concatenate([synthetic_block(3, block, rows) for block, rows in enumerate(sizes)])
    starts = [0, sizes[0], sizes[0] + sizes[1]]
    for threshold in (0, 12):
        got = partitioned_search(client, futures, starts, threshold, rotations=False)
        assert_identical(got, local_search(hashes, threshold, rotations=False))


def test_synthetic_variants_are_the_dihedral_symmetries() -> None:
    # A turned copy's upright hash is its picture's variant: the rows' 8 hashes are the bit
    # grid under hashes.DIHEDRAL, as a real picture's are.
    block = synthetic_block(1, 0, 500)
    bits = np.unpackbits(block.astype(">u8").view(np.uint8).reshape(500, 8, 8), axis=2)
    for row in bits[:50]:
        upright = row[0].reshape(8, 8)
        for variant, transform in enumerate(DIHEDRAL):
            assert np.array_equal(row[variant].reshape(8, 8), transform(upright))
    assert np.array_equal(block, synthetic_block(1, 0, 500))  # reproducible


def test_block_bounds() -> None:
    assert block_bounds(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert block_bounds(0, 3) == []
    with pytest.raises(ValueError):
        block_bounds(4, 0)
