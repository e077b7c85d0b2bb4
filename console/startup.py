"""What every console process does first: set up logging and read its site file, reporting a bad one."""

from __future__ import annotations

import logging
import sys

from config import ConfigError, Site, load_site

__all__ = ["load_site_or_report", "start_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def start_logging(level: str) -> None:
    """Log to stderr at ``level`` (e.g. "info"), unless the caller (a test, the launcher) already set logging up."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level.upper(), format=LOG_FORMAT)


def load_site_or_report(path: str) -> Site | None:
    """The site at ``path``; None after printing why it cannot be used (the file, the path in it, the problem)."""
    try:
        return load_site(path)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return None
