"""The OPC UA Alarms & Conditions server (``watchfloor alarms-server``): the engine's alarms for SCADA clients."""
