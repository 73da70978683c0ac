"""Search-quality benchmark: tunesmith's strategies beside peer optimizers on one suite, same budgets and seeds.

Run ``python -m benchmarks.search_quality --help`` from the repository root (needs ``pip install -e .[bench]``).
Modules: ``problems`` (the suite), ``optimizers/`` (one adapter file per library), ``runner`` (one run of one
optimizer on one problem), ``baseline`` (the cached random-search reference), ``scoring``, ``report`` (tables).
"""
