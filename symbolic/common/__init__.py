"""Shared plumbing of the four packages, at the bottom of the import graph.

It sits in ``symbolic`` because that package imports nothing of ours (docs/conventions.md,
"Layers"), so ``dynamics``, ``empirical`` and ``reports`` can all use it without
a cycle. Each module has one job:

- :mod:`~symbolic.common.cli`: exit codes, one-line errors, the argument parser and its help;
- :mod:`~symbolic.common.options`: options declared once on a dataclass field (``param``), their
  checks, the generated command-line options and TOML configuration files;
- :mod:`~symbolic.common.files`: atomic writes with cleanup, output-path checks;
- :mod:`~symbolic.common.lock`: an exclusive lock on an output;
- :mod:`~symbolic.common.provenance`: what made a result (parameters, seed, git revision);
- :mod:`~symbolic.common.schema`: the variables, dimensions, long names and units of result files;
- :mod:`~symbolic.common.results`: writing and reading result files (netCDF) by that schema;
- :mod:`~symbolic.common.latex`: plain text made safe for LaTeX.
"""
