"""The OPC UA Alarms & Conditions server (``watchfloor alarms-server``): the engine's alarms for SCADA clients.

Public names live in :mod:`console.opcua.server` (``AlarmsServer``, ``main``, and re-exported from
:mod:`console.opcua.mapping`: ``condition_state``, ``condition_class``, ``SEVERITY``, ``refusal_status``).
"""
