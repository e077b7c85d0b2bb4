"""The Panel application: ``app`` (the server: ``/wall``, ``/workstation``), ``workstation`` (the page where
people act on alarms), ``actions`` (what a role may do to an alarm), ``flood`` (the flood view's grouping),
``banners`` (escalation banners and their beep), ``tiles`` (wall tiles), ``theme``, ``i18n``."""
