"""Numeric kernels: pure functions over arrays (numba), no I/O, importing nothing of ours.

- :mod:`kernels.trilateration`: UWB fixes from ranges (``trilaterate``, ``Fixes``)
- :mod:`kernels.tracking`: constant-velocity Kalman filter with gating, stationary detector
- :mod:`kernels.geofence`: the one plane geometry: points in polygons, distance to edges, zone fences
- :mod:`kernels.vibration`: band-limited RMS velocity and waveform features
- :mod:`kernels.gasfield`: inverse-distance gas field on the site grid
- :mod:`kernels.detection`: letterbox, YOLO decoding, non-maximum suppression, floor projection
"""

__all__ = ["trilateration", "tracking", "geofence", "vibration", "gasfield", "detection"]
