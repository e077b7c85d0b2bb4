"""Alarm definitions: the behaviour the site config gives each alarm (priority, delays, latching, re-alarm,
escalation), applied to the alarms the conditions raise.

Escalation: the policy the matching ``alarm_rules`` entry names; when it names none (or no rule matches), the
site's ``default_escalation`` for the alarm's priority (after the rule's priority override), so that a site can
say "every high and critical alarm escalates" once instead of a rule per condition."""

from __future__ import annotations

from fnmatch import fnmatchcase

from config import Site

from .lifecycle import AlarmDefinition, EscalationPlan

__all__ = ["AlarmCatalog"]


class AlarmCatalog:
    """Builds :class:`AlarmDefinition` objects with the first matching ``alarm_rules`` entry applied."""

    def __init__(self, site: Site) -> None:
        self.rules = site.alarm_rules
        self.plans = {
            p.id: EscalationPlan(tuple((s.after_s, s.notify_role) for s in p.steps), p.repeat_every_s,
                                 p.raise_priority)
            for p in site.escalation_policies
        }
        self.defaults: dict[str, str] = dict(site.default_escalation)

    def rule_for(self, condition: str, alarm_id: str):
        for r in self.rules:
            if (r.condition in ("*", condition)) and fnmatchcase(alarm_id, r.match):
                return r
        return None

    def define(self, *, id: str, condition: str, source: str, priority: str, message_en: str, message_zh: str,
               zone: str | None = None, person: str | None = None, area: str | None = None) -> AlarmDefinition:
        r = self.rule_for(condition, id)
        if r is None:
            return AlarmDefinition(id, condition, source, priority, message_en, message_zh, zone, person, area,
                                   escalation=self.default_plan(priority))
        priority = r.priority or priority
        return AlarmDefinition(
            id=id, condition=condition, source=source, priority=priority, message_en=message_en,
            message_zh=message_zh, zone=zone, person=person, area=area, on_delay_s=r.on_delay_s,
            off_delay_s=r.off_delay_s, latching=r.latching, re_alarm_s=r.re_alarm_s,
            escalation=self.plans.get(r.escalation) if r.escalation else self.default_plan(priority))

    def default_plan(self, priority: str) -> EscalationPlan | None:
        """The site's ``default_escalation`` plan for alarms of ``priority`` (None: they do not escalate)."""
        pid = self.defaults.get(priority)
        return self.plans.get(pid) if pid else None
