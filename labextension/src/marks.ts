// Search hits marked in rendered text: every case-insensitive occurrence of the searched text in the trace's own
// texts of a step (not the view's labels and buttons), wrapped in <mark class="rj-hit">, found and removed again.

/** Where the search looks in a rendered step: the texts of the trace, not the view's own labels and buttons. */
const SEARCHED = 'pre, .rj-op, .rj-snip-id, .rj-snip-text, div.rj-error';

/** Wrap every case-insensitive occurrence of `needle` in the searched texts under `el` in <mark class="rj-hit">
 *  (a match across highlighted code tokens gets one mark per piece, all with the same data-hit). */
export function markText(el: HTMLElement, needle: string): number {
  const n = needle.toLowerCase();
  let hits = 0;
  for (const block of Array.from(el.querySelectorAll<HTMLElement>(SEARCHED))) {
    if (block.parentElement?.closest(SEARCHED) || (block as HTMLElement).hidden) {
      continue;   // counted with its outer block
    }
    const nodes: Text[] = [];
    const walk = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    for (let t = walk.nextNode(); t; t = walk.nextNode()) {
      nodes.push(t as Text);
    }
    const text = nodes.map(t => t.data).join('');
    const lower = text.toLowerCase();
    const spans: Array<[number, number]> = [];
    for (let at = lower.indexOf(n); at >= 0 && n; at = lower.indexOf(n, at + n.length)) {
      spans.push([at, at + n.length]);
    }
    if (!spans.length) {
      continue;
    }
    // cut each text node at the spans' edges, from the last node back (earlier offsets stay valid)
    let offset = text.length;
    for (let k = nodes.length - 1; k >= 0; k--) {
      const node = nodes[k];
      offset -= node.data.length;
      const from = offset;
      const to = offset + node.data.length;
      for (let s = spans.length - 1; s >= 0; s--) {
        const [a, b] = spans[s];
        const lo = Math.max(a, from);
        const hi = Math.min(b, to);
        if (lo >= hi) {
          continue;
        }
        const mid = node.splitText(lo - from);
        mid.splitText(hi - lo);
        const mark = document.createElement('mark');
        mark.className = 'rj-hit';
        mark.dataset.hit = String(hits + s);
        mid.replaceWith(mark);
        mark.appendChild(mid);
      }
    }
    hits += spans.length;
  }
  return hits;
}

/** The first mark of each hit under `el`, in order. */
export function hitsIn(el: HTMLElement): HTMLElement[] {
  const out: HTMLElement[] = [];
  let last: string | undefined;
  for (const m of Array.from(el.querySelectorAll<HTMLElement>('mark.rj-hit'))) {
    if (m.dataset.hit !== last) {
      out.push(m);
      last = m.dataset.hit;
    }
  }
  return out;
}

export function clearHits(el: HTMLElement): void {
  for (const m of Array.from(el.querySelectorAll('mark.rj-hit'))) {
    const parent = m.parentNode!;
    m.replaceWith(...Array.from(m.childNodes));
    parent.normalize();
  }
}
