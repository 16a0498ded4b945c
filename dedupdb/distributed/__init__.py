"""dedupdb on a Dask cluster: the all-pairs search partitioned over workers (``search``) and
the index's per-file work sent to workers (``executor``). Dask is an extra
(``pip install 'dedupdb[dask]'``): nothing outside this package imports it.
"""
