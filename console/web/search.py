"""Finding a person the way a control room is asked: "where is Zhang Wei?", "张伟", "zhangwei", "zw", "T0101",
"P0101", "Contractor".

:class:`PeopleIndex` is built once per site: for each person the id, tag, name, company (folded to lower case),
the Chinese name, its toneless pinyin run together ("zhangwei") and its initials ("zw"). A query matches a
person when it is a substring of any of them (spaces ignored for the pinyin, so "zhang wei" finds 张伟); results
are ranked: an exact id or tag first, then a field that starts with the query, then any other match, each in site
order. The fields of each person are joined into one string (NUL between them, which no query holds) and the
people are found with one vectorised ``numpy.char.find`` over all of them; only the people found are ranked in
Python. 10,000 people in about a millisecond (``watchfloor bench people-search``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pypinyin import Style, lazy_pinyin

from config import Site

__all__ = ["PeopleIndex", "PersonHit", "index_for", "pinyin_keys"]

_INDEXES: dict[int, tuple[Site, PeopleIndex]] = {}


def pinyin_keys(name_zh: str) -> tuple[str, str]:
    """The toneless pinyin of ``name_zh`` run together, and its initials: ``'张伟'`` -> ``('zhangwei', 'zw')``."""
    if not name_zh:
        return "", ""
    full = "".join(lazy_pinyin(name_zh)).lower()
    initials = "".join(lazy_pinyin(name_zh, style=Style.FIRST_LETTER)).lower()
    return full, initials


@dataclass(frozen=True)
class PersonHit:
    """One person found: its index in the site's people, and how well it matched (0 exact id or tag, 1 a field
    starting with the query, 2 elsewhere)."""

    index: int
    rank: int


class PeopleIndex:
    """The site's people, ready to search (see the module text)."""

    def __init__(self, site: Site) -> None:
        self.people = list(site.people)
        self._exact = [(p.id.lower(), p.tag.lower()) for p in self.people]
        self._fields: list[tuple[str, ...]] = []
        for p in self.people:
            full, initials = pinyin_keys(p.name_zh)
            self._fields.append(
                (p.id.lower(), p.tag.lower(), p.name.lower(), p.name.lower().replace(" ", ""), p.name_zh,
                 full, initials, p.company.lower())
            )
        self._joined = np.array(["\x00".join(f) for f in self._fields] or [""], dtype=np.str_)

    def search(self, query: str, limit: int = 20) -> list[PersonHit]:
        """The people matching ``query``, best first, at most ``limit``; nothing for an empty query."""
        q = query.strip().lower()
        if not q:
            return []
        tight = q.replace(" ", "")
        found = np.char.find(self._joined, q) >= 0
        if tight != q:
            found |= np.char.find(self._joined, tight) >= 0
        hits: list[PersonHit] = []
        for i in np.flatnonzero(found[: len(self._fields)]).tolist():
            fields = self._fields[i]
            if q in self._exact[i]:
                hits.append(PersonHit(i, 0))
                continue
            rank = _rank(fields, q, tight)
            if rank is not None:
                hits.append(PersonHit(i, rank))
        hits.sort(key=lambda h: (h.rank, h.index))
        return hits[:limit]


def _rank(fields: Iterable[str], q: str, tight: str) -> int | None:
    best = None
    for f in fields:
        if not f:
            continue
        for needle in (q, tight):
            pos = f.find(needle)
            if pos == 0:
                return 1
            if pos > 0:
                best = 2
    return best


def index_for(site: Site) -> PeopleIndex:
    """The index of ``site``'s people, built once per site object (every workstation session of a console shares
    it: pinyin for 10,000 names takes about a second)."""
    held = _INDEXES.get(id(site))
    if held is None or held[0] is not site:
        held = _INDEXES[id(site)] = (site, PeopleIndex(site))
    return held[1]
