"""The wire protocol, defined once beside the bus framing (:mod:`ingest.bus`):

- :mod:`.names`: topics, message kinds, alarm states and priorities, quality codes, person actions and ops,
  the role tables, permit ops and states, wearable events;
- :mod:`.records`: the records that cross the bus to the consoles (alarm, permit, muster, flood, escalation)
  with their parse functions;
- :mod:`.wire`: what a payload or bus message may be (a limited JSON reader, reason codes, each kind's schema).

The engine, the adapters, the consoles, the OPC UA server and the tests import it; it imports nothing of ours
but ``config``'s detection classes. docs/protocol.md documents it.
"""
