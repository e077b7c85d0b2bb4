"""The console's one link to the engine (:class:`EngineLink`) and the immutable views sessions read from it.

- :mod:`console.link.engine_link`: the receiver thread owning the SUB and DEALER sockets, commands and futures;
- :mod:`console.link.alarm_mirror`: the sequence-numbered copy of the engine's alarm table (pure);
- :mod:`console.link.frame_checks`: display frames that do not fit the site are refused (pure);
- :mod:`console.link.views`: Frame, AlarmTable, LinkCounters, LinkSnapshot (frozen).
"""

from console.link.engine_link import EngineLink
from console.link.views import MAX_NOTIFICATIONS, AlarmTable, Frame, LinkCounters, LinkSnapshot, LinkState

__all__ = [
    "MAX_NOTIFICATIONS",
    "AlarmTable",
    "EngineLink",
    "Frame",
    "LinkCounters",
    "LinkSnapshot",
    "LinkState",
]
