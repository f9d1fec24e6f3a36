// The Steps tab: one line per root step (prose, state, counts, tokens, cost, time); a step opened shows its code
// (highlighted), outputs, queries with their snippets and sub-calls. Details are built only when a step is opened.
//
// Big traces: the first rows are built at once and the rest in chunks between frames, so a 10,000-step trace
// paints at once and the page stays responsive; a row further down is built as soon as something needs it
// (the keyboard, the search). Which steps and parts are open is remembered per run, so a view rebuilt when the run
// ends (its display is re-sent) or re-opened shows them open again.

import { codeBlock, firstLine, fmtCost, fmtDur, fmtInt, fmtTokens, findSpans, folded, h, marked, unfoldWhere } from './dom';
import { createEditor } from './editor';
import { clearHits, hitsIn, markText } from './marks';
import { callChips } from './calltree';
import { countIn, SNIPPETS_SHOWN, StepMatch } from './search';
import type { TraceEvent } from './store';
import type { ViewHost } from './viewhost';
import { cutNote, fmtArgs, queryPatterns, stripFences, subCallKind, TERMINAL } from './viewtext';

interface StepRow {
  row: HTMLElement;
  summary: HTMLElement;
  details: HTMLElement | null;
  open: boolean;
}

/** Rows built before the first paint, then per chunk. */
const FIRST_ROWS = 200;
const CHUNK_ROWS = 1000;

/** Open steps and parts per root run id (a few runs: views of one notebook). */
const REMEMBERED = new Map<string, { steps: Set<string>; parts: Set<string> }>();

function remembered(runId: string): { steps: Set<string>; parts: Set<string> } {
  let r = REMEMBERED.get(runId);
  if (!r) {
    r = { steps: new Set(), parts: new Set() };
    REMEMBERED.set(runId, r);
    if (REMEMBERED.size > 50) {
      REMEMBERED.delete(REMEMBERED.keys().next().value!);
    }
  }
  return r;
}

export class StepsPane {
  private rows = new Map<string, StepRow>();
  /** Every root step's id, in order; rows exist for the first `built`. */
  order: string[] = [];
  private index = new Map<string, number>();
  private built = 0;
  private chunkTimer: number | null = null;
  selected = -1;
  private runId: string | null = null;
  private openSteps = new Set<string>();
  private openParts = new Set<string>();
  private lastStatus = '';
  // the search
  private query = '';
  private matches = new Map<string, StepMatch>();

  constructor(readonly pane: HTMLElement, private host: ViewHost) {}

  dispose(): void {
    if (this.chunkTimer !== null) {
      clearTimeout(this.chunkTimer);
      this.chunkTimer = null;
    }
  }

  clear(): void {
    this.rows.clear();
    this.order = [];
    this.index.clear();
    this.built = 0;
    this.selected = -1;
    this.pane.textContent = '';
  }

  /** Bring the rows up to date: all of them anew (`all`), or the new steps and the `dirty` ones. */
  render(all: boolean, dirty: Set<string>): void {
    const store = this.host.store;
    const root = store.root();
    const status = this.host.status();
    if (root && root.id !== this.runId) {
      this.runId = root.id;
      const mem = remembered(root.id);
      this.openSteps = mem.steps;
      this.openParts = mem.parts;
    }
    const steps = root ? store.kids(root.id, 'step') : [];
    if (all) {
      this.clear();
    }
    const wasComplete = this.built === this.order.length;
    for (const s of steps) {
      if (!this.index.has(s.id)) {
        this.index.set(s.id, this.order.length);
        this.order.push(s.id);
      }
    }
    // the edit buttons depend on whether the run has ended: open steps are redrawn (and stay open) when it does
    const ended = TERMINAL.has(status) !== TERMINAL.has(this.lastStatus);
    this.lastStatus = status;
    for (const [id, r] of this.rows) {
      if (dirty.has(id) || (ended && r.open)) {
        const s = store.get(id)!;
        this.fillSummary(r, s);
        if (r.open) {
          this.fillDetails(r, s);
        }
      }
    }
    if (wasComplete && this.order.length - this.built <= FIRST_ROWS) {
      this.build(this.order.length);   // a live run's next steps, or a small trace: at once
    } else {
      this.build(Math.min(this.order.length, Math.max(this.built, FIRST_ROWS)));
      this.scheduleChunks();
    }
    if (!steps.length && !this.pane.childElementCount) {
      const waiting = root && !TERMINAL.has(status) ? (store.kids(root.id, 'worker_start').length ? 'waiting for the first step…'
        : 'starting worker… (the first step follows)') : root ? 'no steps' : 'no run';
      this.pane.appendChild(h('div', 'rj-empty', waiting));
    } else if (steps.length) {
      this.pane.querySelector(':scope > .rj-empty')?.remove();
    }
  }

  /** Rows built so far (the rest are on their way). */
  get rowsBuilt(): number {
    return this.built;
  }

  /** Build rows up to `n` (exclusive). */
  private build(n: number): void {
    if (n <= this.built) {
      return;
    }
    const store = this.host.store;
    const frag = document.createDocumentFragment();
    for (let i = this.built; i < n; i++) {
      const s = store.get(this.order[i]);
      if (!s) {
        continue;
      }
      const r = this.newRow(s);
      this.rows.set(s.id, r);
      frag.appendChild(r.row);
      if (this.openSteps.has(s.id)) {
        this.toggle(r, true);
      }
    }
    this.built = n;
    this.pane.appendChild(frag);
  }

  private scheduleChunks(): void {
    if (this.chunkTimer !== null || this.built >= this.order.length) {
      return;
    }
    this.chunkTimer = window.setTimeout(() => {
      this.chunkTimer = null;
      this.build(Math.min(this.order.length, this.built + CHUNK_ROWS));
      this.scheduleChunks();
    }, 0);
  }

  private ensureBuilt(i: number): void {
    if (i >= this.built) {
      this.build(Math.min(this.order.length, i + 1));
    }
  }

  private newRow(s: TraceEvent): StepRow {
    const row = h('div', 'rj-step', null, { role: 'listitem', 'data-id': s.id });
    const summary = h('div', 'rj-step-summary');
    row.appendChild(summary);
    const r: StepRow = { row, summary, details: null, open: false };
    summary.addEventListener('click', () => {
      this.select(this.index.get(s.id) ?? -1);
      this.toggle(r);
    });
    this.fillSummary(r, s);
    if (this.query && !this.matches.has(s.id)) {
      row.classList.add('rj-miss');
    }
    return r;
  }

  private fillSummary(r: StepRow, s: TraceEvent): void {
    const st = this.host.store;
    const codes = st.kids(s.id, 'code');
    let queries = 0;
    let subs = 0;
    let failed = s.status === 'error';
    for (const c of codes) {
      for (const k of st.kids(c.id)) {
        if (k.type === 'query') {
          queries++;
        } else if (k.type === 'sub_call') {
          subs++;
          failed = failed || k.status === 'error';
        } else if (k.type === 'output') {
          failed = failed || k.status !== 'ok';
        }
      }
    }
    const u = st.usage(s.id);
    const sm = r.summary;
    sm.textContent = '';
    sm.appendChild(h('span', 'rj-caret', r.open ? '▾' : '▸'));
    sm.appendChild(h('span', 'rj-idx', '#' + ((s.index ?? 0) + 1)));
    const state = s.status === 'pending' ? 'pending' : failed ? 'error' : 'ok';
    sm.appendChild(h('span', 'rj-dot', null, { 'data-state': state, title: state }));
    const prose = s.status === 'pending' ? 'calling ' + (s.model ?? 'the model') + '…' : firstLine(stripFences(s.response ?? ''), 120);
    sm.appendChild(h('span', 'rj-prose', prose || (codes.length ? '(code only)' : '')));
    const chips = h('span', 'rj-chips');
    // live events carry finish_reason; the `replayed` / `edited` marks are added to the trace when the re-run ends
    if (s.replayed || s.finish_reason === 'replayed') {
      chips.appendChild(h('span', 'rj-chip rj-chip-replayed', 'replayed', { title: 'replayed from the recorded run: no model call' }));
    } else if (s.edited || s.finish_reason === 'edited') {
      const what = s.edited ?? st.get(s.parent)?.rerun_of?.edited;
      chips.appendChild(h('span', 'rj-chip rj-chip-edited', 'edited' + (what ? ' ' + what : ''), { title: 'this step ran your edit' }));
    }
    const m = this.matches.get(s.id);
    if (m) {
      chips.appendChild(h('span', 'rj-chip rj-chip-hits', `${fmtInt(m.count)} match${m.count === 1 ? '' : 'es'}`));
    }
    if (codes.length) {
      chips.appendChild(h('span', 'rj-chip', `${codes.length} code`));
    }
    if (queries) {
      chips.appendChild(h('span', 'rj-chip rj-chip-q', `${queries} ${queries === 1 ? 'query' : 'queries'}`));
    }
    if (subs) {
      chips.appendChild(h('span', 'rj-chip rj-chip-s', `${subs} sub-call${subs === 1 ? '' : 's'}`));
    }
    chips.appendChild(h('span', 'rj-chip rj-chip-t', u.tokensKnown ? `${fmtTokens(u.tokensIn + u.tokensOut)} tok`
      : '? tok', u.tokensKnown ? undefined : { title: 'the trace has no token counts for this step' }));
    if (u.costKnown && u.cost > 0) {
      chips.appendChild(h('span', 'rj-chip', fmtCost(u.cost)));
    }
    chips.appendChild(h('span', 'rj-chip rj-chip-d', fmtDur(s.dur)));
    sm.appendChild(chips);
    r.row.dataset.state = state;
  }

  toggle(r: StepRow, open?: boolean): void {
    r.open = open ?? !r.open;
    const id = r.row.dataset.id!;
    const s = this.host.store.get(id)!;
    if (r.open) {
      this.openSteps.add(id);
      this.fillDetails(r, s);
    } else {
      this.openSteps.delete(id);
      if (r.details) {
        r.details.remove();
        r.details = null;
      }
    }
    r.row.classList.toggle('rj-open', r.open);
    const caret = r.summary.querySelector('.rj-caret');
    if (caret) {
      caret.textContent = r.open ? '▾' : '▸';
    }
  }

  private fillDetails(r: StepRow, s: TraceEvent): void {
    const store = this.host.store;
    const d = h('div', 'rj-step-details');
    const meta = [`model ${s.model ?? '?'}`, s.tokens_in == null && s.tokens_out == null ? 'tokens not recorded'
      : `${fmtInt(s.tokens_in ?? 0)} in / ${fmtInt(s.tokens_out ?? 0)} out`,
      fmtCost(s.cost_usd, s.cost_usd != null), fmtDur(s.dur)];
    if (s.prompt_messages != null) {
      meta.push(`${s.prompt_messages} messages in the prompt`);
    }
    d.appendChild(h('div', 'rj-meta', meta.join(' · ')));
    const prose = stripFences(s.response ?? '').trim();
    if (prose) {
      d.appendChild(folded(prose, 'rj-response', 6, cutNote(s, 'response')));
    }
    for (const c of store.kids(s.id, 'code')) {
      d.appendChild(this.codeSection(s, c));
    }
    for (const e of store.kids(s.id)) {
      if (e.type === 'error') {
        d.appendChild(h('div', 'rj-error', e.message));
      }
    }
    if (r.details) {
      r.details.replaceWith(d);
    } else {
      r.row.appendChild(d);
    }
    r.details = d;
    if (this.query && this.matches.has(s.id)) {
      this.markHits(r);
    }
  }

  /** Offer "edit & re-run": a kernel-side handler is behind the view (a %%rlm cell) and the run has ended (the
   *  kernel re-runs finished runs only; while it goes or is paused, the button would do nothing). */
  private canEdit(): boolean {
    const o = this.host.opts;
    return !!(o.send && o.controls && TERMINAL.has(this.host.status()));
  }

  private codeSection(step: TraceEvent, c: TraceEvent): HTMLElement {
    const sec = h('div', 'rj-codeblock', null, { 'data-id': c.id });
    const bar = h('div', 'rj-codebar');
    bar.appendChild(h('span', 'rj-label', `code ${(c.index ?? 0) + 1}`));
    if (this.canEdit()) {
      const edit = h('button', 'rj-btn rj-btn-edit', 'edit & re-run from here');
      edit.addEventListener('click', ev => {
        ev.stopPropagation();
        this.editCode(sec, step, c);
      });
      bar.appendChild(edit);
    }
    sec.appendChild(bar);
    sec.appendChild(codeBlock(c.code ?? ''));
    const note = cutNote(c, 'code');
    if (note) {
      sec.appendChild(h('div', 'rj-note', note));
    }
    for (const k of this.host.store.kids(c.id)) {
      if (k.type === 'query') {
        sec.appendChild(this.querySection(k));
      } else if (k.type === 'sub_call') {
        sec.appendChild(this.subCallLine(k));
      }
    }
    for (const o of this.host.store.kids(c.id, 'output')) {
      sec.appendChild(this.outputSection(o));
    }
    return sec;
  }

  private editCode(sec: HTMLElement, step: TraceEvent, c: TraceEvent): void {
    if (sec.querySelector('.rj-editor')) {
      return;
    }
    const code = sec.querySelector(':scope > .rj-code') as HTMLElement | null;
    const box = h('div', 'rj-editor');
    const host = h('div', 'rj-editor-host');
    box.appendChild(host);
    const k = (step.index ?? 0) + 1;
    const ed = createEditor(host, c.code ?? '', 'code of step ' + k);
    box.dataset.editor = ed.kind;
    const bar = h('div', 'rj-editor-bar');
    const go = h('button', 'rj-btn rj-btn-primary rj-btn-rerun', `re-run from step ${k}`);
    go.addEventListener('click', ev => {
      ev.stopPropagation();
      this.host.opts.send?.({ action: 'rerun', step: step.index ?? 0, code: ed.value() });
      go.textContent = 're-running…';
      (go as HTMLButtonElement).disabled = true;
    });
    const cancel = h('button', 'rj-btn rj-btn-cancel', 'cancel');
    cancel.addEventListener('click', ev => {
      ev.stopPropagation();
      ed.dispose();
      box.remove();
      if (code) {
        code.hidden = false;
      }
    });
    bar.append(go, cancel, h('span', 'rj-note', k > 1
      ? `steps 1–${k - 1} are replayed from the record (no model calls), step ${k} runs this code, then the model goes on`
      : `step 1 runs this code, then the model goes on`));
    box.append(bar);
    if (code) {
      code.hidden = true;
    }
    sec.insertBefore(box, code ? code.nextSibling : sec.children[1] ?? null);
    ed.focus();
  }

  private outputSection(o: TraceEvent): HTMLElement {
    const box = h('div', 'rj-output', null, { 'data-status': o.status ?? 'ok' });
    const head = [`output · ${o.status ?? 'ok'}`];
    if (o.dur != null) {
      head.push(fmtDur(o.dur));
    }
    if (o.stdout_bytes != null) {
      head.push(`${fmtInt(o.stdout_bytes)} bytes`);
    }
    box.appendChild(h('div', 'rj-label', head.join(' · ')));
    if (o.stdout) {
      box.appendChild(folded(o.stdout, 'rj-stdout', 14, cutNote(o, 'stdout')));
    }
    if (o.stderr) {
      box.appendChild(folded(o.stderr, 'rj-stderr', 8, cutNote(o, 'stderr')));
    }
    if (o.error) {
      box.appendChild(h('pre', 'rj-error', o.error));
    }
    return box;
  }

  /** A folded part (a query's snippets, a sub-call's texts): its head toggles its body, built on first open. */
  private part(key: string, box: HTMLElement, head: HTMLElement, body: HTMLElement, fill: () => void): void {
    const open = this.openParts.has(key);
    head.prepend(h('span', 'rj-caret', open ? '▾' : '▸'));
    body.hidden = !open;
    if (open) {
      fill();
    }
    head.addEventListener('click', ev => {
      ev.stopPropagation();
      body.hidden = !body.hidden;
      head.firstElementChild!.textContent = body.hidden ? '▸' : '▾';
      if (!body.hidden) {
        this.openParts.add(key);
        if (!body.childElementCount) {
          fill();
        }
      } else {
        this.openParts.delete(key);
      }
    });
    box.append(head, body);
  }

  private querySection(q: TraceEvent): HTMLElement {
    const box = h('div', 'rj-query', null, { 'data-id': q.id });
    const ids: string[] = q.result_ids ?? [];
    const head = h('div', 'rj-query-head');
    head.appendChild(h('span', 'rj-op', `${q.op}(${fmtArgs(q.args)})`));
    head.appendChild(h('span', 'rj-chip', `${fmtInt(q.total ?? ids.length)} result${ids.length === 1 ? '' : 's'}`));
    if (q.latency_ms != null) {
      head.appendChild(h('span', 'rj-chip', fmtDur(q.latency_ms / 1000)));
    }
    const body = h('div', 'rj-snippets');
    this.part('q:' + q.id, box, head, body, () => this.fillSnippets(body, q));
    return box;
  }

  private fillSnippets(body: HTMLElement, q: TraceEvent): void {
    const ids: string[] = q.result_ids ?? [];
    const snippets: any[] = Array.isArray(q.snippets) ? q.snippets : [];
    const byId = new Map(snippets.map(s => [s.id, s]));
    const { patterns, caseSensitive } = queryPatterns(q);
    const shown = ids.slice(0, SNIPPETS_SHOWN);
    shown.forEach((id, i) => {
      const sn = byId.get(id);
      const row = h('div', 'rj-snippet', null, { 'data-id': id, tabindex: 0, title: 'open the full message' });
      const who = sn ? [sn.position != null ? `[${sn.position}]` : '', sn.role ?? '', sn.tool_name ? '/' + sn.tool_name : '']
        .join(' ').trim() : '';
      if (who) {
        row.appendChild(h('span', 'rj-snip-who', who));
      }
      row.appendChild(h('span', 'rj-snip-id', id));
      if (Array.isArray(q.scores) && q.scores[i] != null) {
        row.appendChild(h('span', 'rj-chip', 'score ' + Number(q.scores[i]).toFixed(2)));
      }
      if (sn?.text) {
        const spans = Array.isArray(sn.spans) ? sn.spans : findSpans(sn.text, patterns, caseSensitive);
        row.appendChild(marked(sn.text, spans, 'rj-snip-text'));
      }
      const open = (ev: Event) => {
        ev.stopPropagation();
        this.host.openMessage(id, sn, patterns, caseSensitive);
      };
      row.addEventListener('click', open);
      row.addEventListener('keydown', ev => {
        if ((ev as KeyboardEvent).key === 'Enter') {
          open(ev);
        }
      });
      body.appendChild(row);
    });
    if (ids.length > shown.length) {
      body.appendChild(h('div', 'rj-note', `${fmtInt(ids.length - shown.length)} more results not listed`));
    }
    if (!ids.length) {
      body.appendChild(h('div', 'rj-note', 'no results'));
    }
  }

  private subCallLine(e: TraceEvent): HTMLElement {
    const box = h('div', 'rj-subcall', null, { 'data-id': e.id, 'data-status': e.status ?? 'ok' });
    const head = h('div', 'rj-subcall-head');
    head.appendChild(h('span', 'rj-op', subCallKind(e)));
    head.append(...callChips(this.host.store, e));
    if (e.child_run) {
      head.appendChild(h('span', 'rj-chip rj-chip-child', 'child run'));
    }
    const more = h('button', 'rj-btn rj-btn-details', 'details', { title: 'prompt, response, usage and error in a pane' });
    more.addEventListener('click', ev => {
      ev.stopPropagation();
      this.host.openCall(e);
    });
    head.appendChild(more);
    const body = h('div', 'rj-subcall-body');
    this.part('s:' + e.id, box, head, body, () => {
      body.appendChild(h('div', 'rj-label', 'prompt'));
      body.appendChild(folded(e.prompt ?? '', 'rj-prompt', 6, cutNote(e, 'prompt')));
      body.appendChild(h('div', 'rj-label', 'response'));
      body.appendChild(folded(e.response ?? '', 'rj-response', 10, cutNote(e, 'response')));
      if (e.error) {
        body.appendChild(h('pre', 'rj-error', e.error));
      }
    });
    if (e.status === 'error' && e.error) {
      box.appendChild(h('div', 'rj-error', firstLine(e.error, 200)));
    }
    return box;
  }

  // -- the keyboard -----------------------------------------------------------------------------------------
  select(i: number): void {
    if (i < 0 || i >= this.order.length) {
      return;
    }
    this.ensureBuilt(i);
    this.rows.get(this.order[this.selected])?.row.classList.remove('rj-selected');
    this.selected = i;
    const r = this.rows.get(this.order[i])!;
    r.row.classList.add('rj-selected');
    r.summary.scrollIntoView({ block: 'nearest' });
    this.pane.focus({ preventScroll: true });
  }

  /** The next (+1) or previous (-1) step the search left visible, from `i`. */
  private visible(i: number, dir: number): number {
    for (let j = i; j >= 0 && j < this.order.length; j += dir) {
      if (!this.query || this.matches.has(this.order[j])) {
        return j;
      }
    }
    return -1;
  }

  onKey(ev: KeyboardEvent): boolean {
    const last = this.order.length - 1;
    if (ev.key === 'ArrowDown' || ev.key === 'j') {
      this.select(this.visible(Math.min(last, this.selected + 1), 1));
    } else if (ev.key === 'ArrowUp' || ev.key === 'k') {
      this.select(this.visible(Math.max(0, this.selected - 1), -1));
    } else if (ev.key === 'Enter' || ev.key === ' ') {
      const r = this.rows.get(this.order[this.selected]);
      if (r) {
        this.toggle(r);
      }
    } else if (ev.key === 'Home') {
      this.select(this.visible(0, 1));
    } else if (ev.key === 'End') {
      this.select(this.visible(last, -1));
    } else {
      return false;
    }
    return true;
  }

  // -- the search ---------------------------------------------------------------------------------------------
  /** Filter the rows to the steps in `matches` and mark `query` in the open ones ('' clears the search). */
  setSearch(query: string, matches: StepMatch[]): void {
    const before = this.matches;
    this.query = query;
    this.matches = new Map(matches.map(m => [m.step, m]));
    this.pane.classList.toggle('rj-searching', !!query);
    for (const [id, r] of this.rows) {
      const now = this.matches.has(id);
      r.row.classList.toggle('rj-miss', !!query && !now);
      if (!now && !before.has(id)) {
        continue;   // neither then nor now a match: nothing on it changes (10,000 rows stay cheap)
      }
      this.fillSummary(r, this.host.store.get(id)!);
      if (r.details) {
        clearHits(r.details);
        if (query && now) {
          this.markHits(r);
        }
      }
    }
  }

  /** Open step `id` for the search (its matching parts too, and the folds that hide a match) and return its hits,
   *  in document order. */
  revealHits(id: string): HTMLElement[] {
    const i = this.index.get(id);
    if (i == null) {
      return [];
    }
    this.ensureBuilt(i);
    const r = this.rows.get(id)!;
    const m = this.matches.get(id);
    let reopen = !r.open;
    for (const p of m?.parts ?? []) {
      if (!this.openParts.has(p)) {
        this.openParts.add(p);
        reopen = true;
      }
    }
    if (reopen) {
      r.open = false;
      this.toggle(r, true);
    }
    const q = this.query;
    if (r.details && q) {
      const before = r.details.querySelectorAll('.rj-fold > .rj-more').length;
      unfoldWhere(r.details, t => countIn(t, q) > 0);
      if (r.details.querySelectorAll('.rj-fold > .rj-more').length !== before) {
        clearHits(r.details);
        this.markHits(r);
      }
    }
    return hitsIn(r.row);
  }

  private markHits(r: StepRow): void {
    if (r.details && this.query) {
      markText(r.details, this.query);
    }
  }
}
