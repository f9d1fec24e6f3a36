// The trace view: header (question, models, status, running totals, budget bars, controls), steps (code, output,
// queries with their snippets, sub-calls), the sub-call tree and a timeline. Framework-free: the anywidget host
// (widget.ts) and the JupyterLab MIME renderer both construct `TraceView` on a plain element.
//
// Large traces: step rows are one line each and their details are built only when opened; the tree builds a
// node's children on first expand; the timeline is built when its tab is shown. Live updates are coalesced.

import { TraceEvent, TraceStore, Usage } from './store';
import { codeBlock, findSpans, firstLine, fmtCost, fmtDur, fmtInt, fmtTokens, folded, h, marked } from './dom';
import { ensureStyles } from './styles';
import { RUN_STATUSES } from './trace-events';

export type { TraceEvent } from './store';

export interface Budget {
  usd?: number | null;
  tokens?: number | null;
  seconds?: number | null;
  iterations?: number | null;
  depth?: number | null;
}

export interface ViewOptions {
  title?: string;
  status?: string;
  budget?: Budget | null;
  /** Sends an action to the kernel; absent when there is none (a saved notebook, a trace file). */
  send?: (msg: Record<string, unknown>) => void;
  /** Show pause / step / continue / stop (a live run with a controller). */
  controls?: boolean;
  /** The run's .rlmtrace.jsonl (said in the header), and a note such as where a re-run's Run went. */
  tracePath?: string;
  note?: string;
}

export interface MessageReply {
  id: string;
  found?: boolean;
  text?: string;
  role?: string;
  tool_name?: string | null;
  session_id?: string | null;
  position?: number | null;
  format?: string | null;
  error?: string;
}

const TERMINAL = new Set<string>(RUN_STATUSES);
type Tab = 'steps' | 'tree' | 'timeline';

interface StepRow {
  row: HTMLElement;
  summary: HTMLElement;
  details: HTMLElement | null;
  open: boolean;
}

export class TraceView {
  readonly store = new TraceStore();
  private opts: ViewOptions;
  private root: HTMLElement;
  private header: HTMLElement;
  private stepsPane: HTMLElement;
  private treePane: HTMLElement;
  private timelinePane: HTMLElement;
  private panel: HTMLElement;
  private body: HTMLElement;
  private rows = new Map<string, StepRow>();
  private stepOrder: string[] = [];
  private selected = -1;
  private tab: Tab = 'steps';
  private dirtySteps = new Set<string>();
  private dirtyAll = true;
  private timer: number | null = null;
  private lastRender = 0;
  private clock: number | null = null;
  private openTree = new Set<string>();
  private treeScroll = 0;
  private tabCost = 0;
  private tabRendered = 0;
  private tabTimer: number | null = null;
  private openParts = new Set<string>();
  private pendingMessage: { id: string; patterns: string[]; caseSensitive: boolean } | null = null;

  constructor(el: HTMLElement, opts: ViewOptions = {}) {
    this.opts = { ...opts };
    ensureStyles(el.ownerDocument);
    this.root = h('div', 'rj-trace', null, { 'data-lm-suppress-shortcuts': 'true' });
    this.header = h('div', 'rj-header');
    const tabs = h('div', 'rj-tabs', null, { role: 'tablist' });
    for (const [key, label] of [['steps', 'Steps'], ['tree', 'Calls'], ['timeline', 'Timeline']] as Array<[Tab, string]>) {
      const b = h('button', 'rj-tab', label, { 'data-tab': key, role: 'tab' });
      b.addEventListener('click', () => this.showTab(key));
      tabs.appendChild(b);
    }
    this.stepsPane = h('div', 'rj-steps', null, { tabindex: 0, role: 'list', 'aria-label': 'steps' });
    this.stepsPane.addEventListener('keydown', ev => this.onKey(ev));
    this.treePane = h('div', 'rj-tree');
    this.treePane.addEventListener('scroll', () => {
      this.treeScroll = this.treePane.scrollTop;
    }, { passive: true });
    this.timelinePane = h('div', 'rj-timeline');
    this.panel = h('div', 'rj-panel', null, { role: 'dialog', 'aria-label': 'message' });
    this.panel.hidden = true;
    // The panes share one body; the message panel floats over its lower part, so opening a message does not make
    // the view taller than the notebook can show.
    this.body = h('div', 'rj-body');
    this.body.append(this.stepsPane, this.treePane, this.timelinePane, this.panel);
    this.root.append(this.header, tabs, this.body);
    this.root.addEventListener('keydown', ev => {
      if (ev.key === 'Escape' && !this.panel.hidden) {
        ev.preventDefault();
        ev.stopPropagation();
        this.closeMessage();
      }
    });
    el.appendChild(this.root);
    this.showTab('steps');
  }

  // -- data in ---------------------------------------------------------------------------------------------------
  reset(events: TraceEvent[] | null | undefined): void {
    this.store.clear();
    this.rows.clear();
    this.stepOrder = [];
    this.stepsPane.textContent = '';
    this.selected = -1;
    for (const e of events ?? []) {
      this.store.upsert(e);
    }
    this.dirtyAll = true;
    this.render();
  }

  upsert(events: TraceEvent[]): void {
    const rootId = this.store.root()?.id;
    for (const e of events) {
      this.store.upsert(e);
      if (e.type === 'run' && e.parent == null && e.id !== rootId) {
        this.dirtyAll = true; // a new top-level run: start over
      } else if (!this.dirtyAll) {
        const s = this.store.rootStepOf(e.id, rootId);
        if (s) {
          this.dirtySteps.add(s);
        }
      }
    }
    this.schedule();
  }

  setStatus(status: string): void {
    this.opts.status = status;
    this.schedule();
  }

  setTitle(title: string): void {
    this.opts.title = title;
    this.schedule();
  }

  setBudget(budget: Budget | null): void {
    this.opts.budget = budget;
    this.schedule();
  }

  /** The header's "trace: PATH" and note lines. */
  setSaved(tracePath: string | undefined, note: string | undefined): void {
    this.opts.tracePath = tracePath || undefined;
    this.opts.note = note || undefined;
    this.schedule();
  }

  setControls(on: boolean): void {
    this.opts.controls = on;
    this.schedule();
  }

  dispose(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
    }
    if (this.clock !== null) {
      clearInterval(this.clock);
    }
    if (this.tabTimer !== null) {
      clearTimeout(this.tabTimer);
    }
    this.root.remove();
  }

  status(): string {
    if (this.opts.status) {
      return this.opts.status;
    }
    const root = this.store.root();
    const end = root ? this.store.kids(root.id, 'run_end')[0] : undefined;
    return end?.status ?? (root ? 'running' : 'empty');
  }

  // -- rendering ----------------------------------------------------------------------------------------------
  private schedule(): void {
    if (this.timer !== null) {
      return;
    }
    // Coalesce bursts: at most one render every 50 ms while events stream in.
    const wait = Math.max(0, 50 - (Date.now() - this.lastRender));
    this.timer = window.setTimeout(() => {
      this.timer = null;
      this.render();
    }, wait);
  }

  render(): void {
    this.lastRender = Date.now();
    this.renderHeader();
    this.renderSteps();
    if (this.tab === 'tree' || this.tab === 'timeline') {
      this.renderTabLive();
    } else {
      this.treePane.dataset.stale = '1';
      this.timelinePane.dataset.stale = '1';
    }
    this.dirtyAll = false;
    this.dirtySteps.clear();
    this.root.dataset.steps = String(this.stepOrder.length);
    this.root.dataset.status = this.status();
  }

  /** The Calls and Timeline tabs are rebuilt whole: while events stream in, at most every 4x what the last
   *  rebuild cost (and >= 200 ms), so a big live run cannot keep the page busy rebuilding them. */
  private renderTabLive(): void {
    const pane = this.tab === 'tree' ? this.treePane : this.timelinePane;
    const wait = Math.max(200, 4 * this.tabCost) - (Date.now() - this.tabRendered);
    if (wait > 0) {
      pane.dataset.stale = '1';
      if (this.tabTimer === null) {
        this.tabTimer = window.setTimeout(() => {
          this.tabTimer = null;
          if (pane.dataset.stale === '1' && !pane.hidden) {
            this.renderTabLive();
          }
        }, wait);
      }
      return;
    }
    this.renderTabNow();
  }

  private renderTabNow(): void {
    const t = performance.now();
    if (this.tab === 'tree') {
      this.renderTree();
    } else if (this.tab === 'timeline') {
      this.renderTimeline();
    }
    this.tabCost = performance.now() - t;
    this.tabRendered = Date.now();
  }

  private renderHeader(): void {
    const root = this.store.root();
    const status = this.status();
    const sum = this.store.summary();
    const total = sum.usage;
    const steps = root ? this.store.kids(root.id, 'step').length : 0;
    const calls = sum.subCalls;
    const hd = this.header;
    hd.textContent = '';
    const top = h('div', 'rj-top');
    top.appendChild(h('span', 'rj-status', status, { 'data-status': status }));
    top.appendChild(h('span', 'rj-question', (this.opts.title || root?.question || '(no run yet)').trim()));
    hd.appendChild(top);
    if (root) {
      const meta = [root.model ?? '?'];
      if (root.sub_model && root.sub_model !== root.model) {
        meta.push('sub: ' + root.sub_model);
      }
      if (root.mode && root.mode !== 'rlm') {
        meta.push(root.mode);
      }
      if (root.rerun_of) {
        const r = root.rerun_of;
        const replayed = Array.isArray(r.replayed_steps) ? r.replayed_steps.length : (r.replayed_steps ?? r.step ?? 0);
        meta.push(`re-run from step ${(r.step ?? 0) + 1} of ${r.run ?? 'an earlier run'} (${replayed} step${replayed === 1 ? '' : 's'} replayed` +
          (r.edited ? `, ${r.edited} edited)` : ')'));
      }
      if (root.context?.messages != null) {
        meta.push(`context: ${fmtInt(root.context.messages)} messages, ~${fmtTokens(root.context.tokens ?? 0)} tokens`);
      }
      hd.appendChild(h('div', 'rj-meta', meta.join(' · ')));
    }
    if (this.opts.note) {
      hd.appendChild(h('div', 'rj-meta rj-note-line', this.opts.note));
    }
    if (this.opts.tracePath) {
      hd.appendChild(h('div', 'rj-meta rj-trace-path', 'trace: ' + this.opts.tracePath, { title: this.opts.tracePath }));
    }
    const elapsed = this.elapsed(sum.lastTime);
    const totals = h('div', 'rj-totals');
    const stat = (cls: string, value: string, label: string) => {
      const s = h('span', 'rj-stat ' + cls);
      s.append(h('b', null, value), document.createTextNode(' ' + label));
      totals.appendChild(s);
    };
    stat('rj-count-steps', fmtInt(steps), steps === 1 ? 'step' : 'steps');
    stat('rj-count-calls', fmtInt(calls), 'sub-calls');
    stat('rj-count-tokens', fmtTokens(total.tokensIn), 'in');
    stat('rj-count-tokens-out', fmtTokens(total.tokensOut), 'out');
    stat('rj-count-cost', fmtCost(total.cost, total.costKnown || total.tokensIn === 0), '');
    stat('rj-count-time', fmtDur(elapsed), '');
    hd.appendChild(totals);
    this.renderBudget(hd, root, total.tokensIn + total.tokensOut, total.cost, elapsed, steps);
    if (this.opts.send && this.opts.controls && !TERMINAL.has(status)) {
      hd.appendChild(this.controls(status));
    }
    const final = root ? this.store.kids(root.id, 'final').pop() : undefined;
    if (final && final.answer != null) {
      const ans = h('div', 'rj-answer');
      ans.appendChild(h('div', 'rj-label', 'Answer' + (final.via ? ` (${final.via})` : '')));
      ans.appendChild(folded(String(final.answer), 'rj-answer-text', 6, cutNote(final, 'answer')));
      hd.appendChild(ans);
    }
    for (const e of root ? this.store.kids(root.id) : []) {
      if (e.type === 'error' || e.type === 'budget_stop') {
        const text = e.type === 'error' ? e.message : `budget stop: ${e.budget} (limit ${e.limit}, used ${e.used})`;
        hd.appendChild(h('div', 'rj-error', text));
      }
    }
    this.tickClock(status);
  }

  private renderBudget(hd: HTMLElement, root: TraceEvent | undefined, tokens: number, cost: number, secs: number | null,
    steps: number): void {
    const b: Budget = this.opts.budget ?? (root?.type === 'run' ? root.budget as Budget | null | undefined : null) ?? {};
    const used: Record<string, number> = { usd: cost, tokens, seconds: secs ?? 0, iterations: steps };
    const bars = h('div', 'rj-budget');
    for (const key of ['usd', 'tokens', 'seconds', 'iterations'] as const) {
      const limit = b[key];
      if (limit == null || !(limit > 0)) {
        continue;
      }
      const frac = Math.min(1, used[key] / limit);
      const bar = h('div', 'rj-bar' + (used[key] >= limit ? ' rj-over' : ''), null, { 'data-budget': key });
      const fill = h('div', 'rj-bar-fill');
      fill.style.width = (frac * 100).toFixed(1) + '%';
      bar.appendChild(fill);
      const label = key === 'usd' ? `${fmtCost(used.usd)} / ${fmtCost(limit)}` : key === 'seconds'
        ? `${fmtDur(used.seconds)} / ${fmtDur(limit)}` : `${fmtInt(used[key])} / ${fmtInt(limit)} ${key}`;
      bar.appendChild(h('span', 'rj-bar-label', label));
      bars.appendChild(bar);
    }
    if (bars.childElementCount) {
      hd.appendChild(bars);
    }
  }

  private controls(status: string): HTMLElement {
    const box = h('div', 'rj-controls');
    const btn = (action: string, label: string, title: string) => {
      const b = h('button', 'rj-btn rj-btn-' + action, label, { title });
      b.addEventListener('click', ev => {
        ev.stopPropagation();
        this.opts.send?.({ action });
      });
      box.appendChild(b);
    };
    if (status === 'paused') {
      btn('step', 'Step', 'run one root step, then pause');
      btn('continue', 'Continue', 'run on without pausing');
    } else {
      btn('pause', 'Pause', 'pause before the next root step');
      btn('step', 'Step', 'run one root step, then pause');
    }
    btn('stop', 'Stop', 'end the run at the next step boundary');
    return box;
  }

  private elapsed(lastSeen?: number): number | null {
    const root = this.store.root();
    if (!root) {
      return null;
    }
    const end = this.store.kids(root.id, 'run_end')[0];
    const seen = () => lastSeen ?? this.store.lastTime();
    const last = end ? end.t : TERMINAL.has(this.status()) ? seen() : Math.max(Date.now() / 1000, seen());
    return Math.max(0, last - root.t);
  }

  private tickClock(status: string): void {
    const live = !TERMINAL.has(status) && status !== 'paused' && !!this.store.root();
    if (live && this.clock === null) {
      this.clock = window.setInterval(() => {
        const t = this.header.querySelector('.rj-count-time b');
        if (t) {
          t.textContent = fmtDur(this.elapsed());
        }
      }, 1000);
    } else if (!live && this.clock !== null) {
      clearInterval(this.clock);
      this.clock = null;
    }
  }

  // -- steps ----------------------------------------------------------------------------------------------------
  private renderSteps(): void {
    const root = this.store.root();
    const steps = root ? this.store.kids(root.id, 'step') : [];
    if (this.dirtyAll) {
      this.rows.clear();
      this.stepOrder = [];
      this.stepsPane.textContent = '';
    }
    const frag = document.createDocumentFragment();
    for (const s of steps) {
      let r = this.rows.get(s.id);
      if (!r) {
        r = this.newRow(s);
        this.rows.set(s.id, r);
        this.stepOrder.push(s.id);
        frag.appendChild(r.row);
      } else if (this.dirtySteps.has(s.id)) {
        this.fillSummary(r, s);
        if (r.open) {
          this.fillDetails(r, s);
        }
      }
    }
    this.stepsPane.appendChild(frag);
    if (!steps.length && !this.stepsPane.childElementCount) {
      this.stepsPane.appendChild(h('div', 'rj-empty', root ? 'waiting for the first step…' : 'no run'));
    } else {
      this.stepsPane.querySelector(':scope > .rj-empty')?.remove();
    }
  }

  private newRow(s: TraceEvent): StepRow {
    const row = h('div', 'rj-step', null, { role: 'listitem', 'data-id': s.id });
    const summary = h('div', 'rj-step-summary');
    row.appendChild(summary);
    const r: StepRow = { row, summary, details: null, open: false };
    summary.addEventListener('click', () => {
      this.select(this.stepOrder.indexOf(s.id));
      this.toggle(r);
    });
    this.fillSummary(r, s);
    return r;
  }

  private fillSummary(r: StepRow, s: TraceEvent): void {
    const st = this.store;
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

  private toggle(r: StepRow, open?: boolean): void {
    r.open = open ?? !r.open;
    const s = this.store.get(r.row.dataset.id)!;
    if (r.open) {
      this.fillDetails(r, s);
    } else if (r.details) {
      r.details.remove();
      r.details = null;
    }
    r.row.classList.toggle('rj-open', r.open);
    const caret = r.summary.querySelector('.rj-caret');
    if (caret) {
      caret.textContent = r.open ? '▾' : '▸';
    }
  }

  private fillDetails(r: StepRow, s: TraceEvent): void {
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
    for (const c of this.store.kids(s.id, 'code')) {
      d.appendChild(this.codeSection(s, c));
    }
    for (const e of this.store.kids(s.id)) {
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
  }

  private codeSection(step: TraceEvent, c: TraceEvent): HTMLElement {
    const sec = h('div', 'rj-codeblock', null, { 'data-id': c.id });
    const bar = h('div', 'rj-codebar');
    bar.appendChild(h('span', 'rj-label', `code ${(c.index ?? 0) + 1}`));
    if (this.opts.send && this.opts.controls) {   // a kernel-side handler is behind the view (a %%rlm cell)
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
    for (const k of this.store.kids(c.id)) {
      if (k.type === 'query') {
        sec.appendChild(this.querySection(k));
      } else if (k.type === 'sub_call') {
        sec.appendChild(this.subCallLine(k));
      }
    }
    for (const o of this.store.kids(c.id, 'output')) {
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
    const ta = h('textarea', 'rj-edit-code', null, { spellcheck: 'false', 'aria-label': 'code of step ' + ((step.index ?? 0) + 1) }) as HTMLTextAreaElement;
    ta.value = c.code ?? '';
    ta.rows = Math.min(24, Math.max(4, ta.value.split('\n').length + 1));
    ta.addEventListener('keydown', ev => ev.stopPropagation());
    const k = (step.index ?? 0) + 1;
    const bar = h('div', 'rj-editor-bar');
    const go = h('button', 'rj-btn rj-btn-primary rj-btn-rerun', `re-run from step ${k}`);
    go.addEventListener('click', ev => {
      ev.stopPropagation();
      this.opts.send?.({ action: 'rerun', step: step.index ?? 0, code: ta.value });
      go.textContent = 're-running…';
      (go as HTMLButtonElement).disabled = true;
    });
    const cancel = h('button', 'rj-btn rj-btn-cancel', 'cancel');
    cancel.addEventListener('click', ev => {
      ev.stopPropagation();
      box.remove();
      if (code) {
        code.hidden = false;
      }
    });
    bar.append(go, cancel, h('span', 'rj-note', k > 1
      ? `steps 1–${k - 1} are replayed from the record (no model calls), step ${k} runs this code, then the model goes on`
      : `step 1 runs this code, then the model goes on`));
    box.append(ta, bar);
    if (code) {
      code.hidden = true;
    }
    sec.insertBefore(box, code ? code.nextSibling : sec.children[1] ?? null);
    ta.focus();
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

  private querySection(q: TraceEvent): HTMLElement {
    const box = h('div', 'rj-query', null, { 'data-id': q.id });
    const ids: string[] = q.result_ids ?? [];
    const head = h('div', 'rj-query-head');
    const key = 'q:' + q.id;
    const open = this.openParts.has(key);
    head.appendChild(h('span', 'rj-caret', open ? '▾' : '▸'));
    head.appendChild(h('span', 'rj-op', `${q.op}(${fmtArgs(q.args)})`));
    head.appendChild(h('span', 'rj-chip', `${fmtInt(q.total ?? ids.length)} result${ids.length === 1 ? '' : 's'}`));
    if (q.latency_ms != null) {
      head.appendChild(h('span', 'rj-chip', fmtDur(q.latency_ms / 1000)));
    }
    box.appendChild(head);
    const body = h('div', 'rj-snippets');
    body.hidden = !open;
    if (open) {
      this.fillSnippets(body, q);
    }
    head.addEventListener('click', ev => {
      ev.stopPropagation();
      const nowOpen = body.hidden;
      body.hidden = !nowOpen;
      head.firstElementChild!.textContent = nowOpen ? '▾' : '▸';
      if (nowOpen) {
        this.openParts.add(key);
        if (!body.childElementCount) {
          this.fillSnippets(body, q);
        }
      } else {
        this.openParts.delete(key);
      }
    });
    box.appendChild(body);
    return box;
  }

  private fillSnippets(body: HTMLElement, q: TraceEvent): void {
    const ids: string[] = q.result_ids ?? [];
    const snippets: any[] = Array.isArray(q.snippets) ? q.snippets : [];
    const byId = new Map(snippets.map(s => [s.id, s]));
    const { patterns, caseSensitive } = queryPatterns(q);
    const shown = ids.slice(0, 50);
    shown.forEach((id, i) => {
      const sn = byId.get(id);
      const row = h('div', 'rj-snippet', null, { 'data-id': id, tabindex: 0, title: 'open the full message' });
      const who = sn ? [sn.position != null ? `[${sn.position}]` : '', sn.role ?? '', sn.tool_name ? '/' + sn.tool_name : '']
        .join(' ').trim() : '';
      row.appendChild(h('span', 'rj-snip-id', who ? `${who} ${id}` : id));
      if (Array.isArray(q.scores) && q.scores[i] != null) {
        row.appendChild(h('span', 'rj-chip', 'score ' + Number(q.scores[i]).toFixed(2)));
      }
      if (sn?.text) {
        const spans = Array.isArray(sn.spans) ? sn.spans : findSpans(sn.text, patterns, caseSensitive);
        row.appendChild(marked(sn.text, spans, 'rj-snip-text'));
      }
      const open = (ev: Event) => {
        ev.stopPropagation();
        this.openMessage(id, sn, patterns, caseSensitive);
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
    const key = 's:' + e.id;
    const open = this.openParts.has(key);
    head.appendChild(h('span', 'rj-caret', open ? '▾' : '▸'));
    const kind = (e.kind ?? 'sub_llm') + (e.batch_index != null ? `[${e.batch_index}]` : '');
    head.appendChild(h('span', 'rj-op', kind));
    head.append(...callChips(this.store, e));
    if (e.child_run) {
      head.appendChild(h('span', 'rj-chip rj-chip-child', 'child run'));
    }
    box.appendChild(head);
    const body = h('div', 'rj-subcall-body');
    body.hidden = !open;
    const fill = () => {
      body.appendChild(h('div', 'rj-label', 'prompt'));
      body.appendChild(folded(e.prompt ?? '', 'rj-prompt', 6, cutNote(e, 'prompt')));
      body.appendChild(h('div', 'rj-label', 'response'));
      body.appendChild(folded(e.response ?? '', 'rj-response', 10, cutNote(e, 'response')));
      if (e.error) {
        body.appendChild(h('pre', 'rj-error', e.error));
      }
    };
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
    box.appendChild(body);
    if (e.status === 'error' && e.error) {
      box.appendChild(h('div', 'rj-error', firstLine(e.error, 200)));
    }
    return box;
  }

  // -- the full message of a snippet ----------------------------------------------------------------------------
  private openMessage(id: string, sn: any, patterns: string[], caseSensitive: boolean): void {
    const p = this.panel;
    p.textContent = '';
    p.hidden = false;
    this.body.classList.add('rj-with-panel');
    const bar = h('div', 'rj-panel-bar');
    const title = h('span');
    title.append(h('span', 'rj-label', 'message'), ' ');
    title.appendChild(h('code', 'rj-msg-id', id)); // ids are case-sensitive: not in the upper-cased label
    bar.appendChild(title);
    const close = h('button', 'rj-btn rj-panel-close', 'close');
    close.addEventListener('click', () => this.closeMessage());

    bar.appendChild(close);
    p.appendChild(bar);
    const body = h('div', 'rj-panel-body');
    p.appendChild(body);
    if (this.opts.send) {
      body.appendChild(h('div', 'rj-note', 'loading…'));
      this.pendingMessage = { id, patterns, caseSensitive };
      this.opts.send({ action: 'message', id });
    } else {
      if (sn?.text) {
        body.appendChild(marked(sn.text, findSpans(sn.text, patterns, caseSensitive), 'rj-msg-text'));
      }
      body.appendChild(h('div', 'rj-note', 'The full message needs the kernel that loaded the context.'));
    }
  }

  private closeMessage(): void {
    this.panel.hidden = true;
    this.body.classList.remove('rj-with-panel');
    this.pendingMessage = null;
    if (this.tab === 'steps') {
      this.stepsPane.focus({ preventScroll: true });
    }
  }

  /** The kernel's answer to {"action": "message"}. */
  showMessage(m: MessageReply): void {
    if (this.panel.hidden || !this.pendingMessage || this.pendingMessage.id !== m.id) {
      return;
    }
    const { patterns, caseSensitive } = this.pendingMessage;
    const body = this.panel.querySelector('.rj-panel-body')!;
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

  // -- keyboard -----------------------------------------------------------------------------------------------
  private onKey(ev: KeyboardEvent): void {
    const t = ev.target as HTMLElement;
    if (t !== this.stepsPane) {
      return;
    }
    let handled = true;
    if (ev.key === 'ArrowDown' || ev.key === 'j') {
      this.select(Math.min(this.stepOrder.length - 1, this.selected + 1));
    } else if (ev.key === 'ArrowUp' || ev.key === 'k') {
      this.select(Math.max(0, this.selected - 1));
    } else if (ev.key === 'Enter' || ev.key === ' ') {
      const r = this.rows.get(this.stepOrder[this.selected]);
      if (r) {
        this.toggle(r);
      }
    } else if (ev.key === 'Home') {
      this.select(0);
    } else if (ev.key === 'End') {
      this.select(this.stepOrder.length - 1);
    } else {
      handled = false;
    }
    if (handled) {
      ev.preventDefault();
      ev.stopPropagation();
    }
  }

  private select(i: number): void {
    if (i < 0 || i >= this.stepOrder.length) {
      return;
    }
    this.rows.get(this.stepOrder[this.selected])?.row.classList.remove('rj-selected');
    this.selected = i;
    const r = this.rows.get(this.stepOrder[i])!;
    r.row.classList.add('rj-selected');
    r.summary.scrollIntoView({ block: 'nearest' });
    this.stepsPane.focus({ preventScroll: true });
  }

  // -- tabs ---------------------------------------------------------------------------------------------------
  showTab(tab: Tab): void {
    this.tab = tab;
    for (const b of Array.from(this.root.querySelectorAll('.rj-tab'))) {
      b.classList.toggle('rj-active', (b as HTMLElement).dataset.tab === tab);
    }
    this.stepsPane.hidden = tab !== 'steps';
    this.treePane.hidden = tab !== 'tree';
    this.timelinePane.hidden = tab !== 'timeline';
    if ((tab === 'tree' && this.treePane.dataset.stale !== '0') || (tab === 'timeline' && this.timelinePane.dataset.stale !== '0')) {
      this.renderTabNow();
    }
  }

  // -- the call tree ------------------------------------------------------------------------------------------
  private renderTree(): void {
    const pane = this.treePane;
    pane.dataset.stale = '0';
    // the scroll position is remembered by a listener: reading scrollTop here would force a layout of the page
    const scroll = this.treeScroll;
    pane.textContent = '';
    const root = this.store.root();
    if (!root) {
      pane.appendChild(h('div', 'rj-empty', 'no run'));
      return;
    }
    if (!this.openTree.size) {
      this.openTree.add(root.id);
    }
    pane.appendChild(this.treeNode(root, 0));
    if (scroll > 0) {
      pane.scrollTop = scroll;
    }
  }

  private treeKids(e: TraceEvent): TraceEvent[] {
    const st = this.store;
    if (e.type === 'run') {
      return st.kids(e.id).filter(k => k.type === 'step' || k.type === 'error' || k.type === 'budget_stop');
    }
    if (e.type === 'step') {
      const out: TraceEvent[] = [];
      for (const c of st.kids(e.id, 'code')) {
        out.push(...st.kids(c.id, 'sub_call'));
      }
      return out;
    }
    if (e.type === 'sub_call') {
      const child = e.child_run ? st.get(e.child_run) : undefined;
      return child ? [child] : st.kids(e.id, 'run');
    }
    return [];
  }

  private treeNode(e: TraceEvent, depth: number): HTMLElement {
    const kids = this.treeKids(e);
    const failed = e.status === 'error' || e.type === 'error' || (e.type === 'run' && this.runStatus(e) === 'error');
    const node = h('div', 'rj-node', null, { 'data-id': e.id, 'data-type': e.type, 'data-failed': failed ? '1' : undefined });
    const row = h('div', 'rj-node-row');
    row.style.paddingLeft = depth * 16 + 4 + 'px';
    const open = this.openTree.has(e.id);
    row.appendChild(h('span', 'rj-caret', kids.length ? (open ? '▾' : '▸') : '·'));
    row.appendChild(h('span', 'rj-node-label', nodeLabel(e)));
    if (e.type === 'run') {
      const u = this.store.usage(e.id);
      row.appendChild(h('span', 'rj-chip', e.model ?? '?'));
      row.appendChild(h('span', 'rj-chip', inOut(u)));
      row.appendChild(h('span', 'rj-chip', fmtCost(u.cost, u.costKnown || u.tokensIn === 0)));
      const end = this.store.kids(e.id, 'run_end')[0];
      row.appendChild(h('span', 'rj-chip', fmtDur(end ? end.t - e.t : null)));
      row.appendChild(h('span', 'rj-chip rj-chip-status', this.runStatus(e)));
    } else if (e.type === 'step' || e.type === 'sub_call') {
      row.append(...callChips(this.store, e));
    }
    if (kids.length) {
      row.appendChild(h('span', 'rj-chip rj-chip-n', `${fmtInt(kids.length)} below`));
    }
    node.appendChild(row);
    if (failed) {
      const msg = e.error ?? e.message ?? (e.type === 'run' ? this.store.kids(e.id, 'error')[0]?.message : null);
      if (msg) {
        node.appendChild(h('div', 'rj-error rj-node-error', firstLine(msg, 240)));
      }
    }
    const box = h('div', 'rj-node-kids');
    node.appendChild(box);
    const fill = () => {
      const frag = document.createDocumentFragment();
      for (const k of kids) {
        frag.appendChild(this.treeNode(k, depth + 1));
      }
      box.appendChild(frag);
    };
    if (open && kids.length) {
      fill();
    }
    row.addEventListener('click', ev => {
      ev.stopPropagation();
      if (!kids.length) {
        return;
      }
      if (this.openTree.has(e.id)) {
        this.openTree.delete(e.id);
        box.textContent = '';
        row.firstElementChild!.textContent = '▸';
      } else {
        this.openTree.add(e.id);
        fill();
        row.firstElementChild!.textContent = '▾';
      }
    });
    return node;
  }

  private runStatus(run: TraceEvent): string {
    const end = this.store.kids(run.id, 'run_end')[0];
    return end?.status ?? (run.parent == null ? this.status() : 'running');
  }

  // -- the timeline -------------------------------------------------------------------------------------------
  private renderTimeline(): void {
    const pane = this.timelinePane;
    pane.dataset.stale = '0';
    pane.textContent = '';
    const root = this.store.root();
    if (!root) {
      pane.appendChild(h('div', 'rj-empty', 'no run'));
      return;
    }
    const items: TraceEvent[] = [];
    const busy: Array<[number, number]> = [];   // when something happened: calls, and code from start to output
    for (const e of this.store.below(root.id)) {
      if ((e.type === 'step' || e.type === 'sub_call') && !(e.type === 'sub_call' && e.child_run)) {
        items.push(e);
        busy.push([e.t, e.status === 'pending' ? Infinity : e.t + (e.dur ?? 0)]);   // a call still going: busy
      } else if (e.type === 'code') {
        let until = e.t;
        for (const o of this.store.kids(e.id, 'output')) {
          until = Math.max(until, o.t + (o.dur ?? 0));
        }
        busy.push([e.t, until]);
      } else {
        busy.push([e.t, e.t + (e.dur ?? 0)]);
      }
    }
    items.sort((a, b) => a.t - b.t);
    const t0 = root.t;
    let t1 = t0;
    for (const [a, b] of busy) {
      t1 = Math.max(t1, isFinite(b) ? b : a);
    }
    const end = this.store.kids(root.id, 'run_end')[0];
    t1 = Math.max(t1, end ? end.t : t1);
    const running = !end && !TERMINAL.has(this.status()) && this.status() !== 'paused';
    if (running) {
      t1 = Math.max(t1, Date.now() / 1000);
    }
    // while the run goes, the time since its last event is code running (or a call starting): not idle
    const axis = new TimeAxis(t0, t1, busy, !running);
    const span = t1 - t0;
    // Lanes: root steps on lane 0; everything else packed so overlapping (parallel) calls get their own lanes.
    const laneEnds: number[] = [];
    const placed: Array<[TraceEvent, number]> = [];
    const minX = 1 / 400;   // a call narrower than this takes this much room on its lane
    for (const e of items) {
      if (e.type === 'step' && e.parent === root.id) {
        placed.push([e, 0]);
        continue;
      }
      const s = axis.x(e.t);
      const f = Math.max(axis.x(e.t + (e.dur ?? 0)), s + minX);
      let lane = laneEnds.findIndex(x => x <= s);
      if (lane < 0) {
        lane = laneEnds.length;
        laneEnds.push(f);
      } else {
        laneEnds[lane] = f;
      }
      placed.push([e, lane + 1]);
    }
    const subs = items.filter(e => e.type === 'sub_call' && e.dur != null).map(e => e.dur as number).sort((a, b) => a - b);
    const median = subs.length ? subs[Math.floor(subs.length / 2)] : 0;
    const slowest = subs.length ? subs[subs.length - 1] : 0;
    const lanes = laneEnds.length + 1;
    const laneH = lanes > 60 ? 6 : lanes > 20 ? 10 : 16;
    const idle = axis.gaps.reduce((n, [a, b]) => n + (b - a), 0);
    pane.appendChild(h('div', 'rj-note',
      `${fmtInt(items.length)} calls on one time axis (${fmtDur(span)}); top lane: root steps, below: sub-calls, ` +
      'parallel calls stacked' + (slowest > 0 ? `; slowest sub-call ${fmtDur(slowest)} (median ${fmtDur(median)})` : '') +
      (axis.gaps.length ? `; ${fmtDur(idle)} with nothing running (paused or waiting) drawn narrow, hatched` : '')));
    const ticks = h('div', 'rj-axis');
    for (let i = 0; i <= 4; i++) {
      const tick = h('span', 'rj-tick', fmtDur(axis.t(i / 4) - t0));
      tick.style.left = i * 25 + '%';
      ticks.appendChild(tick);
    }
    pane.appendChild(ticks);
    const area = h('div', 'rj-lanes');
    area.style.height = lanes * (laneH + 2) + 'px';
    const frag = document.createDocumentFragment();
    for (const [a, b] of axis.gaps) {
      const gap = h('div', 'rj-gap', null, { title: `${fmtDur(b - a)} with nothing running (paused, or waiting)` });
      gap.style.cssText = `left:${(axis.x(a) * 100).toFixed(3)}%;width:${((axis.x(b) - axis.x(a)) * 100).toFixed(3)}%`;
      frag.appendChild(gap);
    }
    const byId = new Map<string, [TraceEvent, boolean]>();
    for (const [e, lane] of placed) {
      const left = axis.x(e.t);
      const width = axis.x(e.t + Math.max(e.dur ?? 0, 0)) - left;
      const slow = e.type === 'sub_call' && e.dur != null && subs.length > 2 && e.dur === slowest && slowest > 2 * median;
      const bar = h('div', 'rj-span rj-span-' + e.type + (e.status === 'error' ? ' rj-span-error' : '') +
        (slow ? ' rj-slow' : ''), null, { 'data-id': e.id });
      // one style write per bar; the tooltip is made when the mouse gets there (6,000 titles up front are slow)
      bar.style.cssText = `left:${(left * 100).toFixed(3)}%;width:max(2px,${(width * 100).toFixed(3)}%);` +
        `top:${lane * (laneH + 2)}px;height:${laneH}px`;
      byId.set(e.id, [e, slow]);
      frag.appendChild(bar);
    }
    area.addEventListener('mouseover', ev => {
      const bar = ev.target as HTMLElement;
      const hit = bar.dataset?.id ? byId.get(bar.dataset.id) : undefined;
      if (hit && !bar.title) {
        const [e, slow] = hit;
        bar.title = `${nodeLabel(e)} · ${e.model ?? ''} · ${fmtDur(e.dur)}` + (e.status === 'error' ? ' · failed' : '') +
          (slow ? ' · slowest' : '');
      }
    });
    area.appendChild(frag);
    pane.appendChild(area);
  }
}

/** The timeline's x axis: time mapped to [0, 1], linear while something runs; a stretch with nothing running that is
 *  long (>= 3 s and >= 15% of the run) is drawn narrow, so a paused run's steps do not shrink to slivers. */
export class TimeAxis {
  /** Idle stretches drawn narrow, [from, to] in epoch seconds. */
  readonly gaps: Array<[number, number]> = [];
  private segs: Array<{ a: number; b: number; x0: number; x1: number }> = [];

  constructor(t0: number, t1: number, busy: Array<[number, number]>, idleTail = true) {
    const span = Math.max(t1 - t0, 1e-3);
    const merged: Array<[number, number]> = [];
    for (const [a, b] of busy.map(([a, b]) => [Math.max(a, t0), Math.min(Math.max(a, b), t1)] as [number, number])
      .sort((p, q) => p[0] - q[0])) {
      const last = merged[merged.length - 1];
      if (last && a <= last[1]) {
        last[1] = Math.max(last[1], b);
      } else {
        merged.push([a, b]);
      }
    }
    const minGap = Math.max(3, 0.15 * span);
    let at = t0;
    for (const [a, b] of idleTail ? [...merged, [t1, t1] as [number, number]] : merged) {
      if (a - at >= minGap) {
        this.gaps.push([at, a]);
      }
      at = Math.max(at, b);
    }
    const gapW = this.gaps.length ? Math.min(0.04, 0.3 / this.gaps.length) : 0;
    const idle = this.gaps.reduce((n, [a, b]) => n + (b - a), 0);
    const scale = (1 - gapW * this.gaps.length) / Math.max(span - idle, 1e-3);
    let x = 0;
    at = t0;
    for (const [a, b] of this.gaps) {
      this.segs.push({ a: at, b: a, x0: x, x1: x + (a - at) * scale });
      x += (a - at) * scale;
      this.segs.push({ a, b, x0: x, x1: x + gapW });
      x += gapW;
      at = b;
    }
    this.segs.push({ a: at, b: t0 + span, x0: x, x1: 1 });
  }

  /** Where time `t` is, from 0 (the run's start) to 1 (its end). */
  x(t: number): number {
    const segs = this.segs;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {   // the last segment starting at or before t
      const mid = (lo + hi + 1) >> 1;
      if (segs[mid].a <= t) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    const s = segs[lo];
    const f = s.b > s.a ? (t - s.a) / (s.b - s.a) : 0;
    return Math.min(1, Math.max(0, s.x0 + Math.min(1, Math.max(0, f)) * (s.x1 - s.x0)));
  }

  /** The time at position `x` (0..1). */
  t(x: number): number {
    const s = this.segs.find(g => x <= g.x1) ?? this.segs[this.segs.length - 1];
    const f = s.x1 > s.x0 ? (x - s.x0) / (s.x1 - s.x0) : 0;
    return s.a + Math.min(1, Math.max(0, f)) * (s.b - s.a);
  }
}

// -- helpers --------------------------------------------------------------------------------------------------------

function stripFences(text: string): string {
  return text.replace(/```[\s\S]*?(```|$)/g, '[code]').replace(/\n{3,}/g, '\n\n');
}

function fmtArgs(args: any): string {
  if (!args || typeof args !== 'object') {
    return '';
  }
  const parts = Object.entries(args).map(([k, v]) => {
    let s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
    if (s.length > 60) {
      s = s.slice(0, 59) + '…';
    }
    return `${k}=${s}`;
  });
  return parts.join(', ');
}

/** The patterns whose matches a query's snippets highlight: the regex of regex_search, the words of a search. */
export function queryPatterns(q: TraceEvent): { patterns: string[]; caseSensitive: boolean } {
  const a = q.args ?? {};
  if (q.op === 'regex_search' && typeof a.pattern === 'string') {
    return { patterns: [a.pattern], caseSensitive: a.case !== false };
  }
  if (q.op === 'search' && typeof a.query === 'string') {
    const words = a.query.split(/\W+/).filter((w: string) => w.length > 2);
    return { patterns: words.map((w: string) => '\\b' + w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), caseSensitive: false };
  }
  return { patterns: [], caseSensitive: false };
}

function inOut(u: Usage): string {
  return u.tokensKnown ? `${fmtTokens(u.tokensIn)} in / ${fmtTokens(u.tokensOut)} out` : 'tokens not recorded';
}

function callChips(st: TraceStore, e: TraceEvent): HTMLElement[] {
  const out = [h('span', 'rj-chip', e.model ?? '?')];
  if (e.type === 'sub_call' && e.child_run) {
    const u = st.usage(e.child_run);
    out.push(h('span', 'rj-chip', inOut(u)));
    out.push(h('span', 'rj-chip', fmtCost(u.cost, u.costKnown || u.tokensIn === 0)));
  } else {
    out.push(h('span', 'rj-chip', e.tokens_in == null && e.tokens_out == null ? 'tokens not recorded'
      : `${fmtTokens(e.tokens_in ?? 0)} in / ${fmtTokens(e.tokens_out ?? 0)} out`));
    out.push(h('span', 'rj-chip', fmtCost(e.cost_usd, e.cost_usd != null)));
  }
  out.push(h('span', 'rj-chip', fmtDur(e.dur)));
  const status = e.status ?? 'ok';
  out.push(h('span', 'rj-chip rj-chip-status', status, { 'data-status': status }));
  return out;
}

function nodeLabel(e: TraceEvent): string {
  switch (e.type) {
    case 'run':
      return (e.parent ? 'child run: ' : 'run: ') + firstLine(e.question, 80);
    case 'step':
      return 'step ' + ((e.index ?? 0) + 1);
    case 'sub_call':
      return (e.kind ?? 'sub_llm') + (e.batch_index != null ? `[${e.batch_index}]` : '') + ': ' + firstLine(e.prompt, 60);
    case 'error':
      return 'error: ' + firstLine(e.message, 80);
    case 'budget_stop':
      return `budget stop: ${e.budget}`;
    default:
      return e.type;
  }
}

function cutNote(e: TraceEvent, field: string): string | undefined {
  const full = e._cut?.[field];
  return typeof full === 'number' ? `cut here: the full text is ${fmtInt(full)} characters (in the trace file)` : undefined;
}
