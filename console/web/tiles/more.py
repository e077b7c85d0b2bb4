""""+N more", counted by the browser: a list tile never shows half a card, and its header always counts what
it does not show.

The server sends the cards it expects to fit (:mod:`.fit`); the list's stylesheet wraps any card that does not
fit whole into a column outside the tile, so it is hidden, never cut. The page's own JavaScript then counts the
hidden cards (each card says in ``data-count`` how many alarms or permits it stands for) plus those the server
did not send (``data-base`` on the header's counter) and writes the header's "+N more" from its template. It
runs after every change of the list and twice a second, so a font or a window size the server's estimate did
not foresee still gives the right count.
"""

from __future__ import annotations

import html

from bokeh.models import CustomJS, Div

__all__ = ["MORE_JS", "follow_hidden_cards", "more_span"]

#: installs one timer per page that recounts every list's hidden cards (see the module text)
MORE_JS = """
if (!window.wfMoreTimer) {
  const all = (root, sel, acc) => {
    root.querySelectorAll(sel).forEach(e => acc.push(e));
    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) all(e.shadowRoot, sel, acc); });
    return acc;
  };
  window.wfRecount = () => {
    const counters = {};
    for (const m of all(document, '.wf-more[data-tile]', [])) counters[m.dataset.tile] = m;
    for (const list of all(document, '[data-tile].wf-cards', [])) {
      const more = counters[list.dataset.tile];
      if (!more) continue;
      const box = list.getBoundingClientRect();
      let hidden = 0;
      for (const card of list.children) {
        const r = card.getBoundingClientRect();
        if (box.height > 0 && (r.left >= box.right - 1 || r.top >= box.bottom - 1))
          hidden += Number(card.dataset.count || 1);
      }
      const n = hidden + Number(more.dataset.base || 0);
      const text = n > 0 ? more.dataset.template.replace('{n}', String(n)) : '';
      if (more.textContent !== text) more.textContent = text;
      more.style.display = n > 0 ? '' : 'none';
    }
  };
  window.wfMoreTimer = setInterval(window.wfRecount, 500);
}
requestAnimationFrame(() => requestAnimationFrame(() => window.wfRecount()));
"""


def more_span(tile: str, base: int, template: str) -> str:
    """The header's counter: ``base`` items the server did not send; ``template`` with ``{n}`` (e.g.
    ``'+{n} more'``). The browser adds the cards it had to hide."""
    text = template.replace("{n}", str(base)) if base > 0 else ""
    style = "" if base > 0 else ' style="display:none"'
    return (
        f'<span class="wf-dim wf-more" data-tile="{html.escape(tile)}" data-base="{base}" '
        f'data-template="{html.escape(template)}"{style}>{html.escape(text)}</span>'
    )


def follow_hidden_cards(body: Div) -> None:
    """Recount the hidden cards whenever ``body`` (the list's Div) changes, and twice a second."""
    body.js_on_change("text", CustomJS(code=MORE_JS))
