// DOM helpers. Trace text only ever reaches the page through textContent / text nodes: a notebook or a trace
// file from someone else must not be able to run script or inject markup.

import hljs from 'highlight.js/lib/core';
import python from 'highlight.js/lib/languages/python';

hljs.registerLanguage('python', python);

// the formatters live in format.ts (no DOM: unit-tested under Node); re-exported for the views that import them here
export { fmtInt, fmtTokens, fmtCost, fmtDur, firstLine, findSpans } from './format';
import { fmtInt } from './format';

type Attrs = Record<string, string | number | boolean | undefined>;

export function h(tag: string, cls?: string | null, text?: string | null, attrs?: Attrs): HTMLElement {
  const el = document.createElement(tag);
  if (cls) {
    el.className = cls;
  }
  if (text != null) {
    el.textContent = text;
  }
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== undefined && v !== false) {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  return el;
}

/** Python code, highlighted. highlight.js output is parsed in an inert document and copied node by node:
 *  only <span class="hljs-…"> and text survive, so nothing from the trace is ever parsed as live HTML. */
export function codeBlock(code: string): HTMLElement {
  const pre = h('pre', 'rj-code');
  const out = h('code', 'hljs language-python');
  pre.appendChild(out);
  if (code.length > 200_000) {
    out.textContent = code;
    return pre;
  }
  try {
    const html = hljs.highlight(code, { language: 'python', ignoreIllegals: true }).value;
    const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html');
    copySafe(doc.body, out);
  } catch {
    out.textContent = code;
  }
  return pre;
}

function copySafe(from: Node, to: HTMLElement): void {
  for (const n of Array.from(from.childNodes)) {
    if (n.nodeType === Node.TEXT_NODE) {
      to.appendChild(document.createTextNode(n.textContent ?? ''));
    } else if (n.nodeType === Node.ELEMENT_NODE) {
      const src = n as Element;
      const span = document.createElement('span');
      const cls = (src.getAttribute('class') ?? '').split(/\s+/).filter(c => /^hljs-[\w-]+$/.test(c) || /^[\w-]+_$/.test(c));
      if (cls.length) {
        span.className = cls.join(' ');
      }
      copySafe(src, span);
      to.appendChild(span);
    }
  }
}

/** Text with [start, end) spans wrapped in <mark>. */
export function marked(text: string, spans: Array<[number, number]> | null | undefined, cls = 'rj-text'): HTMLElement {
  const el = h('span', cls);
  let at = 0;
  const sorted = (spans ?? []).filter(s => Array.isArray(s) && s[1] > s[0]).sort((a, b) => a[0] - b[0]);
  for (const [s, e] of sorted) {
    if (s < at || s > text.length) {
      continue;
    }
    if (s > at) {
      el.appendChild(document.createTextNode(text.slice(at, s)));
    }
    el.appendChild(h('mark', 'rj-mark', text.slice(s, e)));
    at = e;
  }
  if (at < text.length) {
    el.appendChild(document.createTextNode(text.slice(at)));
  }
  return el;
}

const FULL = new WeakMap<HTMLElement, string>();

/** Show the whole text of every folded block under `el` whose hidden part holds what `test` finds (the search). */
export function unfoldWhere(el: HTMLElement, test: (text: string) => boolean): void {
  for (const wrap of Array.from(el.querySelectorAll<HTMLElement>('.rj-fold'))) {
    const more = wrap.querySelector<HTMLElement>(':scope > .rj-more');
    const full = FULL.get(wrap);
    if (more && full != null && test(full)) {
      more.click();
    }
  }
}

/** A long text folded to about `lines` lines: its head and its last few lines (where a traceback or a final print
 *  usually is), with a button between them that shows the hidden middle. */
export function folded(text: string, cls: string, lines = 14, note?: string): HTMLElement {
  const wrap = h('div', 'rj-fold');
  FULL.set(wrap, text);
  const all = text.split('\n');
  const pre = h('pre', cls);
  wrap.appendChild(pre);
  if (all.length <= lines + 2 && text.length <= 4000) {
    pre.textContent = text;
  } else {
    const tailN = all.length > lines + 2 ? Math.max(1, Math.min(4, Math.floor(lines / 3))) : 0;
    const headN = Math.max(1, lines - tailN);
    const clip = (s: string, n: number, fromEnd: boolean) =>
      s.length <= n ? s : fromEnd ? '…' + s.slice(s.length - n) : s.slice(0, n) + '…';
    pre.textContent = clip(all.slice(0, headN).join('\n'), 3000, false);
    const hidden = all.length - headN - tailN;
    const label = hidden > 0 ? `⋯ ${fmtInt(hidden)} more line${hidden === 1 ? '' : 's'}: show all ${fmtInt(all.length)} lines (${fmtInt(text.length)} chars)`
      : `⋯ show all ${fmtInt(text.length)} chars`;
    const more = h('button', 'rj-more', label, { 'aria-expanded': 'false' });
    wrap.appendChild(more);
    let tail: HTMLElement | null = null;
    if (tailN) {
      tail = h('pre', cls + ' rj-tail');
      tail.textContent = clip(all.slice(all.length - tailN).join('\n'), 1000, true);
      wrap.appendChild(tail);
    }
    more.addEventListener('click', ev => {
      ev.stopPropagation();
      pre.textContent = text;
      more.remove();
      tail?.remove();
    });
  }
  if (note) {
    wrap.appendChild(h('div', 'rj-note', note));
  }
  return wrap;
}
