"""pytest collects the doctests of every module of the package (``--doctest-modules``, pyproject.toml).

A module that needs an optional extra which is not installed is left out of that collection, instead of
failing it with an ImportError; the extra's own tests say why they skip.
"""

from __future__ import annotations

import importlib.util

#: optional extra's import name -> the modules of the package that import it at the top
_OPTIONAL = {"pyspark": ["spark/*"]}

collect_ignore_glob = [glob for module, globs in _OPTIONAL.items() if importlib.util.find_spec(module) is None
                       for glob in globs]
