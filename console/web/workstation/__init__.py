"""The workstation page (``/workstation``): operators and supervisors log in and act on alarms.

One :class:`Workstation` per browser session composes four components, each owning its widgets:

- ``login``: :class:`LoginView`, the login form and the user line with its log-out button;
- ``alarm_tables``: :class:`AlarmTables`, the alarm table in the wall list's order (grouped by area and condition
  during a flood, first-out and life-safety alarms on top; a group row expands when selected), the shelved and
  out-of-service view and the selection; its rows are pure functions in ``rows``; and :class:`FloodBanner`, shown
  above the tabs;
- ``action_panel``: :class:`ActionPanel`, the selected alarm, a reason / comment field, the shelve duration, one
  button per action (enabled by role and alarm state) and the engine's reply, its refusal reason included;
- ``muster_panel``: :class:`MusterPanel`, the emergency muster line and, for a shift supervisor, declare / end
  with a confirmation first.

``page`` holds the :class:`Workstation` and ``make_workstation`` (one per session, driven by a
:class:`~console.web.session.PageSession`); ``commands`` sends a command and shows its reply; the stylesheets are
the theme's (:meth:`~console.web.theme.Theme.workstation_css` and the ones beside it).
"""

from ..session import session_arg
from .action_panel import ActionPanel
from .alarm_tables import AlarmTables, FloodBanner, Selection
from .login import LoginView
from .muster_panel import MusterPanel, muster_line_html
from .page import DEFAULT_SCALE, WORKSTATION_PATH, Workstation, make_workstation
from .rows import GROUP_PREFIX, alarm_rows, off_list_rows

__all__ = [
    "DEFAULT_SCALE",
    "GROUP_PREFIX",
    "WORKSTATION_PATH",
    "ActionPanel",
    "AlarmTables",
    "FloodBanner",
    "LoginView",
    "MusterPanel",
    "Selection",
    "Workstation",
    "alarm_rows",
    "make_workstation",
    "muster_line_html",
    "off_list_rows",
    "session_arg",
]
