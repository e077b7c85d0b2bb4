"""Numeric kernels: pure functions over arrays (numba), no I/O, importing nothing of ours.

- :mod:`kernels.trilateration`: UWB fixes from ranges (``trilaterate``, ``Fixes``)
- :mod:`kernels.tracking`: constant-velocity Kalman filter with gating, stationary detector
- :mod:`kernels.geofence`: points in polygons
- :mod:`kernels.vibration`: band-limited RMS velocity
"""

__all__ = ["trilateration", "tracking", "geofence", "vibration"]
