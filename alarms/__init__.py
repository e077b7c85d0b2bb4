"""Alarm conditions, the ISA-18.2 lifecycle and the hash-chained journal."""

from .journal import GENESIS_HASH, Journal, JournalRow, VerifyResult, verify_journal
from .lifecycle import PRIORITY_RANK, STATES, Alarm, AlarmBook, AlarmDefinition, Refused
from .zones import RestrictedZoneRule

__all__ = ["GENESIS_HASH", "Journal", "JournalRow", "VerifyResult", "verify_journal", "PRIORITY_RANK", "STATES",
           "Alarm", "AlarmBook", "AlarmDefinition", "Refused", "RestrictedZoneRule"]
