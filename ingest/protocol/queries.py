"""Read-only requests on the engine's command socket (docs/protocol.md, "Read-only queries"), defined once.

A query changes nothing, so it is not recorded and is answered at once, in the order it came
(ingest/engine/queries.py holds the answers). Everything else on the command socket is a command: checked,
recorded, then applied. The queries in :data:`PERSONAL_QUERY_OPS` tell about people by name or show them (who
was where, camera pictures): they need a valid session token of a workstation role (not a field worker's phone
login), as a command does; the others answer what every console shows anyway.

- ``snapshot``: the live alarm table, permits, muster, detections, floods (a console's start and resync);
- ``detections``: the camera detections pending verification, the recent verdicts, false-positive rates per
  camera and class, and for each detection whether the engine holds its snapshot;
- ``blob_get`` (``sha256``): one blob of the engine's blob store: ``content_type``, ``bytes``, ``data_b64`` (the
  bytes in base64) and ``meta`` (a snapshot's camera, capture time, image size and boxes); refused with the
  reason when the hash is malformed or the store does not hold it;
- ``trails`` (``since_ts_s``, ``step_s``): where everyone has been lately (ingest/protocol/trails.py: the wire
  form, at most one sample per ``step_s`` per person, default 1 s), for a console's link on connect;
- ``zone_presence`` (``zone``, ``from_ts_s``, ``to_ts_s``): who was in a zone at some time in the period (equal
  times: at that moment) from the engine's index of fence entries and exits (ingest/engine/presence.py).

To add a query: its name here, in :data:`QUERY_OPS`, and its answer in ingest/engine/queries.py.
"""

from __future__ import annotations

__all__ = ["OP_SNAPSHOT", "OP_DETECTIONS", "OP_BLOB_GET", "OP_TRAILS", "OP_ZONE_PRESENCE", "PERSONAL_QUERY_OPS",
           "QUERY_OPS"]

OP_SNAPSHOT = "snapshot"
OP_DETECTIONS = "detections"
OP_BLOB_GET = "blob_get"
OP_TRAILS = "trails"
OP_ZONE_PRESENCE = "zone_presence"
#: every read-only op the engine answers at once
QUERY_OPS: frozenset[str] = frozenset({OP_SNAPSHOT, OP_DETECTIONS, OP_BLOB_GET, OP_TRAILS, OP_ZONE_PRESENCE})
#: the queries that need a logged-in person of a workstation role (their token, as for a command)
PERSONAL_QUERY_OPS: frozenset[str] = frozenset({OP_BLOB_GET, OP_ZONE_PRESENCE})
