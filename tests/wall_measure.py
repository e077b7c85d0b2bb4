"""What a person sees on the wall, measured in the browser (Chromium), not estimated on the server.

:func:`map_label_boxes` reads every text glyph the floor map draws (Bokeh canvas text) and measures it with the
canvas's own ``measureText`` in the glyph's font; :func:`clipped_alarm_cards` looks at the alarm tile's HTML as
laid out (shadow roots included) and returns every card that is cut off or hidden, and every message wider or
taller than its box.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

__all__ = ["clipped_alarm_cards", "map_label_boxes", "more_counts", "overlapping_labels", "shown_alarm_cards"]

_MAP_LABELS_JS = """(name) => {
  const spec = (v, data, i) => {
    if (v !== null && typeof v === 'object') {
      if ('field' in v && v.field !== undefined && v.field !== null) return data[v.field][i];
      if ('value' in v) return v.value;
    }
    return v;
  };
  const ctx = document.createElement('canvas').getContext('2d');
  for (const doc of Bokeh.documents) {
    const f = doc.get_model_by_name(name);
    if (!f) continue;
    const xr = f.x_range, yr = f.y_range, W = f.inner_width, H = f.inner_height;
    const sx = x => (x - xr.start) / (xr.end - xr.start) * W;
    const sy = y => (yr.end - y) / (yr.end - yr.start) * H;
    const out = [];
    f.renderers.forEach((r, k) => {
      const g = r.glyph;
      if (!r.visible || !g || g.type !== 'Text') return;
      const data = r.data_source.data;
      const n = data[Object.keys(data)[0]].length;
      for (let i = 0; i < n; i++) {
        const text = String(spec(g.text, data, i) ?? '');
        const x = Number(spec(g.x, data, i)), y = Number(spec(g.y, data, i));
        if (!text || !Number.isFinite(x) || !Number.isFinite(y)) continue;
        const size = parseFloat(spec(g.text_font_size, data, i));
        const style = spec(g.text_font_style, data, i) || 'normal';
        ctx.font = `${style} ${size}px ${spec(g.text_font, data, i)}`;
        const lines = text.split('\\n');
        const pad = typeof g.padding === 'number' ? g.padding : 0;
        const w = Math.max(...lines.map(s => ctx.measureText(s).width)) + 2 * pad;
        // Bokeh's text box: each line the font's ascent + descent, (line height - 1) of that between lines
        const m = ctx.measureText(lines[0]);
        const fm = m.fontBoundingBoxAscent + m.fontBoundingBoxDescent;
        const lh = Number(spec(g.text_line_height, data, i));
        const h = fm * (lines.length + (lh - 1) * (lines.length - 1)) + 2 * pad;
        const ax = sx(x) + Number(spec(g.x_offset, data, i) || 0);
        const ay = sy(y) + Number(spec(g.y_offset, data, i) || 0);
        const align = spec(g.text_align, data, i), base = spec(g.text_baseline, data, i);
        const left = align === 'center' ? ax - w / 2 : align === 'right' ? ax - w : ax;
        const top = base === 'middle' ? ay - h / 2 : base === 'bottom' ? ay - h : ay;
        if (left + w < 0 || top + h < 0 || left > W || top > H) continue;  // not in view
        out.push({text, layer: k, left, top, right: left + w, bottom: top + h});
      }
    });
    return {boxes: out, width: W, height: H};
  }
  return null;
}"""

_CARDS_JS = """([listSel, cardSel, msgSel, lineSel]) => {
  const all = (root, sel, acc = []) => {
    root.querySelectorAll(sel).forEach(e => acc.push(e));
    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) all(e.shadowRoot, sel, acc); });
    return acc;
  };
  const out = [];
  for (const list of all(document, listSel)) {
    const box = list.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    for (const card of list.querySelectorAll(cardSel)) {
      const c = card.getBoundingClientRect();
      const msg = card.querySelector(msgSel);
      const line = card.querySelector(lineSel);
      out.push({
        id: card.dataset.alarm || card.dataset.group || card.dataset.permit || '',
        count: Number(card.dataset.count || 1),
        text: msg ? msg.textContent : '',
        shown: c.left >= box.left - 1 && c.right <= box.right + 1 && c.top >= box.top - 1 && c.bottom <= box.bottom + 1,
        hidden: c.left >= box.right - 1 || c.top >= box.bottom - 1,
        msg_overflow: msg ? (msg.scrollWidth > msg.clientWidth + 1 || msg.scrollHeight > msg.clientHeight + 1) : false,
        line_overflow: line ? line.scrollWidth > line.clientWidth + 1 : false,
      });
    }
  }
  return out;
}"""


_MORE_JS = """(listSel) => {
  const all = (root, sel, acc) => {
    root.querySelectorAll(sel).forEach(e => acc.push(e));
    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) all(e.shadowRoot, sel, acc); });
    return acc;
  };
  const counters = {};
  for (const m of all(document, '.wf-more[data-tile]', [])) counters[m.dataset.tile] = m;
  return all(document, listSel + '.wf-cards', []).map(l => {
    const m = counters[l.dataset.tile];
    return m && m.style.display !== 'none' ? m.textContent : '';
  });
}"""


def more_counts(page: Any, *, permits: bool = False) -> list[int]:
    """The "+N more" number each alarm (``permits``: permit) tile's header shows now, as a person reads it
    (0: none shown)."""
    import re

    out = []
    for text in page.evaluate(_MORE_JS, ".wf-permits" if permits else ".wf-alarms"):
        m = re.search(r"(\d+)", text)
        out.append(int(m.group(1)) if m else 0)
    return out


def map_label_boxes(page: Any, name: str = "wall-floor-map") -> dict[str, Any]:
    """``{"boxes": [{text, layer, left, top, right, bottom}], "width", "height"}``: every label the map draws in
    view, in canvas px, measured with the canvas font."""
    got = page.evaluate(_MAP_LABELS_JS, name)
    if got is None:
        raise RuntimeError(f"no figure {name!r} in the page's Bokeh document")
    return got


def overlapping_labels(boxes: list[dict[str, Any]], tolerance_px: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of labels whose boxes intersect by more than ``tolerance_px`` in both directions."""
    bad = []
    for a, b in combinations(boxes, 2):
        w = min(a["right"], b["right"]) - max(a["left"], b["left"])
        h = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
        if w > tolerance_px and h > tolerance_px:
            bad.append((a["text"], b["text"]))
    return bad


_ALARMS = [".wf-alarms", ".wf-alarm", ".wf-alarm-msg", ".wf-alarm-line"]
_PERMITS = [".wf-permits", ".wf-permit", ".wf-permit-facts", ".wf-permit-line"]


def shown_alarm_cards(page: Any, *, permits: bool = False) -> list[dict[str, Any]]:
    """Every alarm card (``permits``: permit card) on the page with whether it is wholly ``shown`` or wholly
    ``hidden``, and whether its message (facts) or first line overflows its box."""
    return page.evaluate(_CARDS_JS, _PERMITS if permits else _ALARMS)


def clipped_alarm_cards(page: Any, *, permits: bool = False) -> list[dict[str, Any]]:
    """Cards that a person would see cut off: partly visible, or with a message or first line that does not fit."""
    return [
        c
        for c in shown_alarm_cards(page, permits=permits)
        if (not c["shown"] and not c["hidden"]) or (c["shown"] and (c["msg_overflow"] or c["line_overflow"]))
    ]
