"""The TrueScore HTTP API (FastAPI) and the web page it serves; see docs/api.md.

>>> from truescore.api import create_app
>>> app = create_app("sqlite:///truescore-demo.db")      # doctest: +SKIP

or from the command line: ``truescore serve --db sqlite:///truescore-demo.db``.
"""

from truescore.api.app import create_app, serve

__all__ = ["create_app", "serve"]
