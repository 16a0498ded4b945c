"""Review UI speed: pages of `dedupdb serve` over a report of 100,000 clusters.

Usage (from the repository, with dedupdb[serve] and httpx2 installed)::

    python benchmarks/bench_serve.py [--clusters 100000] [--repeats 5]

Builds a real SQLite database of 2 x ``--clusters`` synthetic image rows (bench_report's
``populate``), ranks them as that many clusters of two (``report_from_clusters``: the real
ranking and the real ``Report``), hands the report to the real application (what its
background build does when it finishes), and times requests through Starlette's in-process
client: the first page as opened, other sort orders (the first use of an order sorts), a
search, a deep page and one cluster's page. Medians of ``--repeats`` requests; the cold
figure is the first request of each. The report's build itself is bench_report's subject.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_report import _Cluster, populate
from starlette.testclient import TestClient

from dedupdb.report import ReportOptions, report_from_clusters
from dedupdb.store import open_store
from dedupdb.web import create_app
from dedupdb.web.listing import describe_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.sqlite")
        populate(store, 2 * args.clusters, crops=False)
        clusters = [_Cluster([2 * i + 1, 2 * i + 2]) for i in range(args.clusters)]
        started = time.perf_counter()
        report = report_from_clusters(store, clusters, ReportOptions())
        ranked = time.perf_counter() - started
        started = time.perf_counter()
        describe_report(report)
        described = time.perf_counter() - started
        app = create_app(store, cache_dir=Path(tmp) / "cache", build=False)
        app.state.review.reports.install(report)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            key = re.search(r"/cluster/([0-9a-f]{32})", client.get("/").text)
            assert key is not None
            pages = {
                "first page (space to free)": "/",
                "first page, newest first": "/?sort=date",
                "first page, by folder": "/?sort=folder",
                "search 'IMG_00012'": "/?q=IMG_00012&state=all",
                "page 1000": "/?page=1000",
                "one cluster (with next/previous)": f"/cluster/{key.group(1)}",
            }
            print(f"{args.clusters:,} clusters; report_from_clusters {ranked:.2f} s, "
                  f"describing them for the list {described:.2f} s\n")  # fmt: skip
            print(f"| request | cold | median of {args.repeats} |")
            print("| --- | ---: | ---: |")
            for name, url in pages.items():
                times = []
                for _ in range(args.repeats + 1):
                    start = time.perf_counter()
                    response = client.get(url)
                    times.append(time.perf_counter() - start)
                    assert response.status_code == 200, (url, response.status_code)
                print(f"| {name} | {times[0] * 1000:.0f} ms | "
                      f"{statistics.median(times[1:]) * 1000:.0f} ms |")  # fmt: skip
        store.close()


if __name__ == "__main__":
    main()
