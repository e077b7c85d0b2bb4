"""Site state: the hot path as arrays indexed by dense person / detector / point index (DESIGN principle 2)."""

from __future__ import annotations

import numpy as np

from config import Site
from ingest.protocol.names import QUALITY_NO_DATA

__all__ = ["SiteState"]



class SiteState:
    """Latest known values for every tracked thing of a site."""

    def __init__(self, site: Site) -> None:
        p, g, v = len(site.people), len(site.gas_detectors), len(site.vibration_points)
        self.xyz_m = np.full((p, 3), np.nan)
        self.fix_ts_s = np.full(p, np.nan)
        self.gdop = np.full(p, np.nan)
        self.rms_m = np.full(p, np.nan)
        self.stationary_s = np.full(p, np.nan)  # as of the last fix (the UWB adapter's tracker)
        self.gas_value = np.full(g, np.nan)
        self.gas_quality = np.full(g, QUALITY_NO_DATA, dtype=np.uint8)
        self.gas_ts_s = np.full(g, np.nan)
        self.vib_rms_mm_s = np.full(v, np.nan)
        self.vib_quality = np.full(v, QUALITY_NO_DATA, dtype=np.uint8)
        self.vib_ts_s = np.full(v, np.nan)
