"""Reports: figures, tables and a self-contained report that put theory next to measurement.

Reads result files only (the schema of :mod:`symbolic.common.schema`), never the producers'
internals: ``python -m reports.build --sim results/*.nc --runs runs/* --out report/`` and
``python -m reports.demo --out report/``.
"""
