"""console: what consumes the engine's published state, one subpackage per kind of console.

- :mod:`console.web`: the Panel application (``/wall``, ``/workstation``; tiles, theme, translations, banners);
- :mod:`console.opcua`: the OPC UA Alarms & Conditions server (a console for SCADA clients);
- :mod:`console.cli`: the ``watchfloor`` command line, the ``demo`` / ``run`` launcher and its supervisor.

Shared by the consoles: :mod:`console.link` (``EngineLink``, the one connection of a console process to the
engine) and :mod:`console.auth` (logins). Subpackages are imported on demand, so the command line stays light.
"""
