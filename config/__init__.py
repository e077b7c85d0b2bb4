"""Site configuration: the schema, the loader with file/path/reason errors, and the shipped sites."""

from pathlib import Path

from .loader import ConfigError, ConfigIssue, load_site, parse_site, site_summary
from .schema import Site

SITES_DIR = Path(__file__).parent / "sites"
DEMO_SITE = SITES_DIR / "demo-plant.yaml"

__all__ = ["ConfigError", "ConfigIssue", "load_site", "parse_site", "site_summary", "Site", "SITES_DIR", "DEMO_SITE"]
