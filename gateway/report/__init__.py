"""The monthly report: what the site did in a month, for the city's monthly risk analysis.

`figures.py` computes every figure from the history store and the outbox's alert log
(`source.py` reads them; `series.py`, `episodes.py` and `coverage.py` hold the arithmetic,
`summary.py` the analyst's paragraph), the same document `minewatch report monthly --json`
prints and the daemon publishes after each month (`publish.py`, schema
`config/schema/report.schema.json`). `html.py` renders it for people, with plots from
`plots.py`, the only module that imports matplotlib: the daemon never does.
"""
