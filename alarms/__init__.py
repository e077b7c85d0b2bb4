"""Alarm conditions, the ISA-18.2 lifecycle, the hash-chained journal, notifications, KPIs.

- :mod:`alarms.lifecycle`: ``AlarmBook``, ``AlarmDefinition``, ``Alarm``, ``Refused``, states and roles
- :mod:`alarms.definitions`: ``AlarmCatalog`` (site ``alarm_rules`` applied to definitions)
- :mod:`alarms.journal`: ``Journal``, ``verify_journal``
- :mod:`alarms.seal`: ``PeriodicSealer``, ``Signer``, ``Seal`` (Ed25519 seals of a chain head), ``sealer_from_site``
- :mod:`alarms.keys`: the key directory (``init_key_dir``, ``load_journal_signing_key``, ``fingerprint``)
- :mod:`alarms.zones`: ``ZoneMembership`` (fences with hysteresis), ``RestrictedZoneRule``, ``FenceEvent``
- :mod:`alarms.permits`: ``PermitBook`` (permits-to-work and their checks)
- :mod:`alarms.people`: ``PeopleSafety`` (man-down, SOS, lone worker, battery)
- :mod:`alarms.muster`: ``Muster`` (emergency headcount)
- :mod:`alarms.rules`: ``CompositeRules`` (declarative site rules)
- :mod:`alarms.flood`: ``FloodMonitor``
- :mod:`alarms.notify`: ``Notifier``, ``MqttSink``, ``WebhookSink``
- :mod:`alarms.kpi`: ``compute_kpis``
- :mod:`alarms.gas`: ``GasConditions`` (levels, STEL/TWA, oxygen, faults)
- :mod:`alarms.vibration`: ``VibrationConditions`` (ISO 20816-3 zones, trend, stale)
- :mod:`alarms.detections`: ``DetectionFusion`` (untagged people, PPE, verification)
"""

from .definitions import AlarmCatalog
from .detections import DetectionFusion, Verification
from .flood import FloodChange, FloodMonitor
from .gas import GasConditions
from .journal import GENESIS_HASH, Journal, JournalRow, VerifyResult, verify_journal
from .kpi import AlarmKpis, compute_kpis
from .lifecycle import Alarm, AlarmBook, AlarmDefinition, EscalationPlan, Refused
from .muster import Muster, MusterRefused
from .notify import MqttSink, Notice, Notifier, WebhookSink
from .people import PeopleSafety
from .permits import Permit, PermitBook
from .rules import CompositeRules
from .vibration import VibrationConditions
from .zones import FenceEvent, RestrictedZoneRule, ZoneMembership

__all__ = [
    "AlarmCatalog", "FloodChange", "FloodMonitor", "GENESIS_HASH", "Journal", "JournalRow", "VerifyResult",
    "verify_journal", "AlarmKpis", "compute_kpis", "Alarm", "AlarmBook",
    "AlarmDefinition", "EscalationPlan", "Refused", "Muster", "MusterRefused", "MqttSink", "Notice", "Notifier",
    "WebhookSink", "PeopleSafety", "Permit", "PermitBook", "CompositeRules", "FenceEvent", "RestrictedZoneRule",
    "ZoneMembership", "DetectionFusion", "Verification", "GasConditions", "VibrationConditions",
]
