"""The all-pairs search partitioned on a Dask LocalCluster (``dedupdb.distributed.search``),
over synthetic hashes with a real collection's structure (``dedupdb.distributed.synthetic``:
skewed bits, heavy-tailed near-duplicate groups, turned copies, groups across blocks).

    python benchmarks/bench_distributed_search.py [--sizes 1000000,3000000,10000000]
        [--workers 2] [--block-rows 250000] [--threshold 10] [--upright] [--check]

For each size the workers are restarted (so their peak memory is this run's), make the
blocks themselves (the client never holds the set), and run one task per pair of blocks.
Printed per size: wall seconds to make the blocks and to search, candidate pairs, and each
worker process's peak resident memory (``ru_maxrss``). ``--check`` also runs the
single-machine ``match.search`` on the same hashes in this process and compares (slow).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from distributed import Client, LocalCluster, wait

from dedupdb.distributed.search import block_bounds, partitioned_search
from dedupdb.distributed.synthetic import synthetic_block
from dedupdb.search import all_pairs as local_search

SEED = 2026


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(client: Client, n: int, args: argparse.Namespace) -> None:
    client.restart()
    bounds = block_bounds(n, args.block_rows)
    started = time.perf_counter()
    blocks = [
        client.submit(synthetic_block, SEED, i, stop - start, pure=False)
        for i, (start, stop) in enumerate(bounds)
    ]
    wait(blocks)
    made = time.perf_counter() - started
    started = time.perf_counter()
    found = partitioned_search(
        client, blocks, [s for s, _ in bounds], args.threshold, rotations=not args.upright
    )
    searched = time.perf_counter() - started
    peaks = client.run(peak_rss_mib)
    tasks = len(bounds) * (len(bounds) + 1) // 2
    print(
        f"n={n:,} blocks={len(bounds)} tasks={tasks} workers={len(peaks)} "
        f"make={made:.1f}s search={searched:.1f}s pairs={len(found.a):,} "
        f"turned={int((found.variant > 0).sum()):,} "
        f"peak MiB per worker={sorted(round(p) for p in peaks.values())}",
        flush=True,
    )
    if args.check:
        hashes = np.concatenate(client.gather(blocks))
        started = time.perf_counter()
        expected = local_search(hashes, args.threshold, not args.upright)
        alone = time.perf_counter() - started
        same = all(
            np.array_equal(getattr(found, c), getattr(expected, c))
            for c in ("a", "b", "distance", "variant")
        )
        print(f"  single machine: {alone:.1f}s, identical={same}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--block-rows", type=int, default=250_000)
    parser.add_argument("--threshold", type=int, default=10)
    parser.add_argument("--upright", action="store_true", help="no rotated or mirrored variants")
    parser.add_argument("--check", action="store_true", help="compare with match.search")
    args = parser.parse_args()
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        for n in (int(s) for s in args.sizes.split(",")):
            run(client, n, args)


if __name__ == "__main__":
    main()
