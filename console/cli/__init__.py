"""The ``watchfloor`` command line (:mod:`.main`), the ``demo`` / ``run`` launcher (:mod:`.launch`) and its
process supervisor (:mod:`.supervisor`)."""

from .main import main

__all__ = ["main"]
