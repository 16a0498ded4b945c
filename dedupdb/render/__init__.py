"""Writers of a ``report.Report``: ``json_report`` (the versioned document, and reading it
back), ``csv_report`` (one row per member) and ``html`` (one self-contained page, from the
packaged ``templates/``). Each renders the same data; none reads the database.
"""
