"""console: the Panel application (wall and workstation pages) and the ``watchfloor`` command line.

Modules (imported on demand, so the command line stays light): ``app`` (the server: ``/wall``,
``/workstation``), ``workstation`` (the page where people act on alarms), ``link`` (``EngineLink``, the one
connection to the engine), ``auth`` (logins), ``actions`` (what a role may do to an alarm), ``flood`` (the
flood view's grouping), ``notify`` (escalation banners and their beep), ``tiles`` (wall tiles), ``theme``,
``i18n``, ``snapshot`` (screenshots), ``cli``, ``demo``, ``supervisor``.
"""
