"""Benchmark suites for ``optbench bench``: TOML files shipped with the package (see :mod:`optbench.studies.bench`)."""
