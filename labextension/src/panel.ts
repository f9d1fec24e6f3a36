// The panel over the lower part of the view: a snippet's full message (asked from the kernel), or a sub-call's
// details (prompt, response, usage, model, status, error). Everything in it is text: textContent only.

import { findSpans, firstLine, fmtCost, fmtDur, fmtInt, h, marked } from './dom';
import type { TraceEvent, TraceStore } from './store';
import type { MessageReply, ViewOptions } from './viewhost';
import { cutNote, subCallKind } from './viewtext';

export class Panel {
  readonly el: HTMLElement;
  private pending: { id: string; patterns: string[]; caseSensitive: boolean } | null = null;
  /** What the panel shows: 'message:<id>' or 'call:<id>' (for the host and the tests). */
  showing: string | null = null;
  onClose: (() => void) | null = null;

  constructor(private body: HTMLElement, private opts: ViewOptions) {
    this.el = h('div', 'rj-panel', null, { role: 'dialog', 'aria-label': 'details' });
    this.el.hidden = true;
  }

  get open(): boolean {
    return !this.el.hidden;
  }

  private frame(title: string, kind: string, id?: string): HTMLElement {
    const p = this.el;
    p.textContent = '';
    p.hidden = false;
    p.dataset.kind = kind;
    this.body.classList.add('rj-with-panel');
    const bar = h('div', 'rj-panel-bar');
    const head = h('span', 'rj-panel-title');
    head.appendChild(h('span', 'rj-label', title));
    if (id) {  // ids are case-sensitive: their own element, not in the upper-cased label
      head.append(' ', h('code', 'rj-msg-id', id));
    }
    bar.appendChild(head);
    const close = h('button', 'rj-btn rj-panel-close', 'close', { title: 'close (Escape)' });
    close.addEventListener('click', () => this.close());
    bar.appendChild(close);
    p.appendChild(bar);
    const body = h('div', 'rj-panel-body');
    p.appendChild(body);
    return body;
  }

  close(): void {
    if (this.el.hidden) {
      return;
    }
    this.el.hidden = true;
    this.body.classList.remove('rj-with-panel');
    this.pending = null;
    this.showing = null;
    this.onClose?.();
  }

  // -- a snippet's message ------------------------------------------------------------------------------------
  openMessage(id: string, sn: any, patterns: string[], caseSensitive: boolean): void {
    const body = this.frame('message', 'message', id);
    this.showing = 'message:' + id;
    if (this.opts.send) {
      body.appendChild(h('div', 'rj-note', 'loading…'));
      this.pending = { id, patterns, caseSensitive };
      this.opts.send({ action: 'message', id });
    } else {
      if (sn?.text) {
        body.appendChild(marked(sn.text, findSpans(sn.text, patterns, caseSensitive), 'rj-msg-text'));
      }
      body.appendChild(h('div', 'rj-note', 'The full message needs the kernel that loaded the context.'));
    }
  }

  /** The kernel's answer to {"action": "message"}. */
  showMessage(m: MessageReply): void {
    if (this.el.hidden || !this.pending || this.pending.id !== m.id) {
      return;
    }
    const { patterns, caseSensitive } = this.pending;
    const body = this.el.querySelector('.rj-panel-body')!;
    body.textContent = '';
    if (!m.found) {
      body.appendChild(h('div', 'rj-error', m.error ?? `message ${m.id} is not in the loaded context`));
      return;
    }
    const meta = [m.role ?? '', m.tool_name ? 'tool ' + m.tool_name : '', m.format ?? '', m.session_id ? 'session ' + m.session_id : '',
      m.position != null ? 'position ' + m.position : ''].filter(Boolean).join(' · ');
    body.appendChild(h('div', 'rj-meta', meta));
    const text = m.text ?? '';
    const pre = h('pre', 'rj-msg');
    const spans = findSpans(text, patterns, caseSensitive, 500);
    pre.appendChild(marked(text, spans, 'rj-msg-text'));
    body.appendChild(pre);
    pre.querySelector('mark')?.scrollIntoView({ block: 'nearest' });
  }

  // -- a sub-call's details -----------------------------------------------------------------------------------
  openCall(e: TraceEvent, store: TraceStore): void {
    const body = this.frame(`${subCallKind(e)}: ${firstLine(e.prompt, 80)}`, 'call');
    this.showing = 'call:' + e.id;
    this.pending = null;
    this.el.dataset.id = e.id;
    const status = e.status ?? 'ok';
    const child = e.child_run ? store.get(e.child_run) : undefined;
    const u = child ? store.usage(child.id) : null;
    const rows: Array<[string, string, string?]> = [
      ['model', e.model ?? '?'],
      ['status', status, status],
      ['tokens in', u ? (u.tokensKnown ? fmtInt(u.tokensIn) : 'not recorded') : e.tokens_in == null ? 'not recorded' : fmtInt(e.tokens_in)],
      ['tokens out', u ? (u.tokensKnown ? fmtInt(u.tokensOut) : 'not recorded') : e.tokens_out == null ? 'not recorded' : fmtInt(e.tokens_out)],
      ['cost', u ? fmtCost(u.cost, u.costKnown) : fmtCost(e.cost_usd, e.cost_usd != null)],
      ['latency', fmtDur(e.dur)],
    ];
    const run = runOf(store, e);
    if (run && typeof e.t === 'number') {
      rows.push(['started', `${fmtDur(e.t - run.t)} into the run`]);
    }
    if (e.batch != null) {
      rows.push(['batch', `${e.batch}` + (e.batch_index != null ? ` · item ${e.batch_index}` : '')]);
    }
    if (child) {
      rows.push(['child run', `${firstLine(child.question, 80)} (usage counted through its steps)`]);
    }
    const grid = h('dl', 'rj-call-facts');
    for (const [k, v, st] of rows) {
      grid.appendChild(h('dt', null, k));
      grid.appendChild(h('dd', 'rj-fact-' + k.replace(/\s+/g, '-'), v, st ? { 'data-status': st } : undefined));
    }
    body.appendChild(grid);
    const section = (label: string, text: string | null | undefined, cls: string, field: string) => {
      body.appendChild(h('div', 'rj-label', label));
      if (text == null || text === '') {
        body.appendChild(h('div', 'rj-note', `no ${label} recorded`));
        return;
      }
      body.appendChild(h('pre', 'rj-call-text ' + cls, text));
      const note = cutNote(e, field);
      if (note) {
        body.appendChild(h('div', 'rj-note', note));
      }
    };
    if (e.error) {
      body.appendChild(h('div', 'rj-label', 'error'));
      body.appendChild(h('pre', 'rj-error rj-call-error', e.error));
    }
    section('prompt', e.prompt, 'rj-call-prompt', 'prompt');
    section('response', e.response, 'rj-call-response', 'response');
  }
}

function runOf(store: TraceStore, e: TraceEvent): TraceEvent | undefined {
  let cur: TraceEvent | undefined = e;
  for (let guard = 0; cur && guard < 1000; guard++) {
    if (cur.type === 'run') {
      return cur;
    }
    cur = store.get(cur.parent);
  }
  return undefined;
}
