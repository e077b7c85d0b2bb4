"""Operator-facing words of the console in the shipped languages (English and Simplified Chinese).

``t(key, lang, **values)`` looks a text up and fills ``{placeholders}``; an unknown language falls back to
English, an unknown key raises ``KeyError`` (a typo should fail a test, not show a blank on the wall).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "TEXTS", "normalize_language", "t"]

LANGUAGES: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"

_EN = {
    "page.title": "Wall",
    "alarms.title": "Alarms",
    "alarms.count": "{n} active",
    "alarms.unacknowledged": "{n} unacknowledged",
    "alarms.more": "+{n} more",
    "alarms.none": "No active alarms",
    "alarms.waiting": "Alarm list not yet received from the engine",
    "alarms.resyncing": "re-synchronising\u2026",
    "alarms.col.priority": "Priority",
    "alarms.col.time": "Time",
    "alarms.col.message": "Message",
    "alarms.col.state": "State",
    "priority.critical": "CRITICAL",
    "priority.high": "HIGH",
    "priority.medium": "MEDIUM",
    "priority.low": "LOW",
    "state.active_unack": "UNACK",
    "state.active_ack": "ACK",
    "state.rtn_unack": "CLEARED, UNACK",
    "state.latched_unack": "LATCHED, UNACK",
    "state.latched_ack": "LATCHED",
    "state.shelved": "SHELVED",
    "state.suppressed": "SUPPRESSED",
    "state.out_of_service": "OUT OF SERVICE",
    "state.normal": "NORMAL",
    "alarms.shelved": "{n} shelved",
    "status.engine_time": "Engine time",
    "status.inputs_per_s": "Inputs/s",
    "status.rejected": "Rejected",
    "status.people": "Located",
    "status.alarms": "Alarms",
    "status.link_ok": "Engine link OK",
    "status.link_waiting": "Connecting to engine\u2026",
    "status.link_lost": "\u26a0 ENGINE LINK LOST \u2014 no data for {s} s",
    "map.link_lost": "Positions not live: engine link lost",
    "map.legend": "\u25cf person   \u25cb fix older than {s} s   {alarms}",
    "gas.bad": "BAD",
    "gas.no_data": "---",
    "gas.uncertain": "?",
    "gas.level1": "A1",
    "gas.level2": "A2",
}

_ZH = {
    "page.title": "大屏",
    "alarms.title": "报警",
    "alarms.count": "{n} 条活动",
    "alarms.unacknowledged": "{n} 条未确认",
    "alarms.more": "另有 {n} 条",
    "alarms.none": "无活动报警",
    "alarms.waiting": "尚未从引擎收到报警列表",
    "alarms.resyncing": "正在重新同步\u2026",
    "alarms.col.priority": "优先级",
    "alarms.col.time": "时间",
    "alarms.col.message": "信息",
    "alarms.col.state": "状态",
    "priority.critical": "紧急",
    "priority.high": "高",
    "priority.medium": "中",
    "priority.low": "低",
    "state.active_unack": "未确认",
    "state.active_ack": "已确认",
    "state.rtn_unack": "已恢复未确认",
    "state.latched_unack": "闭锁未确认",
    "state.latched_ack": "闭锁已确认",
    "state.shelved": "已搁置",
    "state.suppressed": "已抑制",
    "state.out_of_service": "停用",
    "state.normal": "正常",
    "alarms.shelved": "{n} 条已搁置",
    "status.engine_time": "引擎时间",
    "status.inputs_per_s": "输入/秒",
    "status.rejected": "拒收",
    "status.people": "已定位",
    "status.alarms": "报警",
    "status.link_ok": "引擎连接正常",
    "status.link_waiting": "正在连接引擎\u2026",
    "status.link_lost": "\u26a0 引擎连接中断 \u2014 {s} 秒无数据",
    "map.link_lost": "位置非实时：引擎连接中断",
    "map.legend": "\u25cf 人员   \u25cb 定位超过 {s} 秒   {alarms}",
    "gas.bad": "故障",
    "gas.no_data": "---",
    "gas.uncertain": "?",
    "gas.level1": "一级",
    "gas.level2": "二级",
}

#: language -> key -> text (read-only)
TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"en": MappingProxyType(_EN), "zh-CN": MappingProxyType(_ZH)}
)


def normalize_language(lang: str | None) -> str:
    """'zh', 'zh-cn', 'zh_CN' -> 'zh-CN'; anything else -> 'en'."""
    if lang and lang.lower().replace("_", "-").startswith("zh"):
        return "zh-CN"
    return DEFAULT_LANGUAGE


def t(key: str, lang: str | None = DEFAULT_LANGUAGE, **values: object) -> str:
    """The text for ``key`` in ``lang``, with ``{name}`` placeholders filled from ``values``."""
    texts = TEXTS[normalize_language(lang)]
    text = texts[key] if key in texts else TEXTS[DEFAULT_LANGUAGE][key]
    return text.format(**values) if values else text
