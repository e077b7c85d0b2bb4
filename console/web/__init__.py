"""The Panel application: ``app`` (the server: ``/wall``, ``/workstation``), ``session`` (one browser session's
URL arguments, periodic tick and clean-up, shared by every page), ``workstation`` (the page where people act on
alarms: login, alarm tables, action panel, muster panel), ``actions`` (what a role may do to an alarm), ``flood``
(the flood view's grouping), ``banners`` (escalation banners and their beep), ``tiles`` (wall tiles), ``theme``
(the look and the stylesheets of wall and workstation), ``i18n``."""
