// The trace view: header (header.ts), steps (steps.ts), the sub-call tree (calltree.ts), a timeline (timeline.ts),
// the detail panel (panel.ts) and a search box over the steps (search.ts). Framework-free: the anywidget host
// (widget.ts) and the JupyterLab MIME renderer both construct `TraceView` on a plain element. This module wires
// the parts together: data in, coalesced rendering, tabs, keyboard, search.
//
// Large traces: step rows are one line each, built in chunks, and their details are built only when opened; the
// tree builds a node's children on first expand; the timeline is built when its tab is shown. Live updates are
// coalesced.

import { CallTree } from './calltree';
import { h } from './dom';
import { Header } from './header';
import { Panel } from './panel';
import { searchSteps, StepMatch } from './search';
import { StepsPane } from './steps';
import { TraceEvent, TraceStore } from './store';
import { ensureStyles } from './styles';
import { renderTimeline } from './timeline';
import type { Budget, MessageReply, ViewHost, ViewOptions } from './viewhost';
import { TERMINAL } from './viewtext';

export type { TraceEvent } from './store';
export type { Budget, MessageReply, ViewOptions } from './viewhost';
export { TimeAxis } from './timeaxis';
export { queryPatterns } from './viewtext';

type Tab = 'steps' | 'tree' | 'timeline';

export class TraceView implements ViewHost {
  readonly store = new TraceStore();
  readonly opts: ViewOptions;
  private root: HTMLElement;
  private header: Header;
  private steps: StepsPane;
  private tree: CallTree;
  private timelinePane: HTMLElement;
  private panel: Panel;
  private tab: Tab = 'steps';
  private dirtySteps = new Set<string>();
  private dirtyAll = true;
  private timer: number | null = null;
  private lastRender = 0;
  private tabCost = 0;
  private tabRendered = 0;
  private tabTimer: number | null = null;
  // the search
  private searchBox: HTMLInputElement;
  private searchCount: HTMLElement;
  private searchTimer: number | null = null;
  private query = '';
  private found: StepMatch[] = [];
  private foundTotal = 0;
  private cursor: { step: number; hit: number } | null = null;

  constructor(el: HTMLElement, opts: ViewOptions = {}) {
    this.opts = { ...opts };
    ensureStyles(el.ownerDocument);
    // data-lm-suppress-shortcuts: JupyterLab's shortcuts stay out of keys typed in the view (its own Ctrl+F too)
    this.root = h('div', 'rj-trace', null, { 'data-lm-suppress-shortcuts': 'true' });
    this.header = new Header(h('div', 'rj-header'), this);
    const tabs = h('div', 'rj-tabs', null, { role: 'tablist' });
    for (const [key, label] of [['steps', 'Steps'], ['tree', 'Calls'], ['timeline', 'Timeline']] as Array<[Tab, string]>) {
      const b = h('button', 'rj-tab', label, { 'data-tab': key, role: 'tab' });
      b.addEventListener('click', () => this.showTab(key));
      tabs.appendChild(b);
    }
    this.searchBox = h('input', 'rj-search', null, {
      type: 'search', placeholder: 'Search the trace (Ctrl+F)', spellcheck: 'false',
      'aria-label': 'search the trace', title: 'search the steps\' prose, code, outputs, snippets and sub-calls',
    }) as HTMLInputElement;
    this.searchCount = h('span', 'rj-search-count', null, { 'aria-live': 'polite' });
    const prev = h('button', 'rj-btn rj-search-prev', '↑', { title: 'previous match (Shift+Enter, N)' });
    const next = h('button', 'rj-btn rj-search-next', '↓', { title: 'next match (Enter, n)' });
    prev.addEventListener('click', () => this.moveMatch(-1));
    next.addEventListener('click', () => this.moveMatch(1));
    const search = h('div', 'rj-searchbar');
    search.append(this.searchBox, this.searchCount, prev, next);
    tabs.appendChild(search);
    this.searchBox.addEventListener('input', () => this.searchSoon());
    this.searchBox.addEventListener('keydown', ev => this.onSearchKey(ev));
    const stepsPane = h('div', 'rj-steps', null, { tabindex: 0, role: 'list', 'aria-label': 'steps' });
    stepsPane.addEventListener('keydown', ev => this.onStepsKey(ev));
    this.steps = new StepsPane(stepsPane, this);
    this.tree = new CallTree(h('div', 'rj-tree'), this);
    this.timelinePane = h('div', 'rj-timeline');
    // The panes share one body; the panel floats over its lower part, so opening a message does not make the view
    // taller than the notebook can show.
    const body = h('div', 'rj-body');
    this.panel = new Panel(body, this.opts);
    this.panel.onClose = () => {
      this.tree.select(null);
      if (this.tab === 'steps') {
        stepsPane.focus({ preventScroll: true });
      }
    };
    body.append(stepsPane, this.tree.pane, this.timelinePane, this.panel.el);
    this.root.append(this.header.el, tabs, body);
    this.root.addEventListener('keydown', ev => {
      if (ev.key === 'Escape' && this.panel.open) {
        ev.preventDefault();
        ev.stopPropagation();
        this.panel.close();
      } else if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && !ev.shiftKey && ev.key.toLowerCase() === 'f') {
        // Ctrl+F with the focus in the view finds in the trace (the browser's find cannot see unopened steps)
        ev.preventDefault();
        ev.stopPropagation();
        this.focusSearch();
      }
    });
    el.appendChild(this.root);
    this.showTab('steps');
  }

  // -- data in ---------------------------------------------------------------------------------------------------
  reset(events: TraceEvent[] | null | undefined): void {
    this.store.clear();
    this.steps.clear();
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
    for (const t of [this.timer, this.tabTimer, this.searchTimer]) {
      if (t !== null) {
        clearTimeout(t);
      }
    }
    this.header.dispose();
    this.steps.dispose();
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

  // -- the parts' requests -------------------------------------------------------------------------------------
  openMessage(id: string, sn: any, patterns: string[], caseSensitive: boolean): void {
    this.panel.openMessage(id, sn, patterns, caseSensitive);
  }

  openCall(e: TraceEvent): void {
    this.panel.openCall(e, this.store);
  }

  /** The kernel's answer to {"action": "message"}. */
  showMessage(m: MessageReply): void {
    this.panel.showMessage(m);
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
    this.header.render();
    const all = this.dirtyAll;
    this.steps.render(all, this.dirtySteps);
    if (this.tab === 'tree' || this.tab === 'timeline') {
      this.renderTabLive();
    } else {
      this.tree.pane.dataset.stale = '1';
      this.timelinePane.dataset.stale = '1';
    }
    if (this.query && (all || this.dirtySteps.size)) {
      this.runSearch(false);   // new or changed steps may match
    }
    this.dirtyAll = false;
    this.dirtySteps.clear();
    this.root.dataset.steps = String(this.steps.order.length);
    this.root.dataset.status = this.status();
  }

  /** The Calls and Timeline tabs are rebuilt whole: while events stream in, at most every 4x what the last
   *  rebuild cost (and >= 200 ms), so a big live run cannot keep the page busy rebuilding them. */
  private renderTabLive(): void {
    const pane = this.tab === 'tree' ? this.tree.pane : this.timelinePane;
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
      this.tree.render();
    } else if (this.tab === 'timeline') {
      const status = this.status();
      const running = !this.store.kids(this.store.root()?.id ?? '', 'run_end').length && !TERMINAL.has(status) &&
        status !== 'paused';
      renderTimeline(this.timelinePane, this.store, running);
    }
    this.tabCost = performance.now() - t;
    this.tabRendered = Date.now();
  }

  // -- tabs ---------------------------------------------------------------------------------------------------
  showTab(tab: Tab): void {
    this.tab = tab;
    for (const b of Array.from(this.root.querySelectorAll('.rj-tab'))) {
      b.classList.toggle('rj-active', (b as HTMLElement).dataset.tab === tab);
    }
    this.steps.pane.hidden = tab !== 'steps';
    this.tree.pane.hidden = tab !== 'tree';
    this.timelinePane.hidden = tab !== 'timeline';
    if ((tab === 'tree' && this.tree.pane.dataset.stale !== '0') || (tab === 'timeline' && this.timelinePane.dataset.stale !== '0')) {
      this.renderTabNow();
    }
  }

  // -- keyboard -----------------------------------------------------------------------------------------------
  private onStepsKey(ev: KeyboardEvent): void {
    if (ev.target !== this.steps.pane || ev.ctrlKey || ev.metaKey || ev.altKey) {
      return;
    }
    let handled: boolean;
    if (ev.key === 'n' || ev.key === 'N') {
      handled = !!this.query;
      if (handled) {
        this.moveMatch(ev.key === 'n' ? 1 : -1);
      }
    } else if (ev.key === '/') {
      handled = true;
      this.focusSearch();
    } else {
      handled = this.steps.onKey(ev);
    }
    if (handled) {
      ev.preventDefault();
      ev.stopPropagation();
    }
  }

  // -- the search ---------------------------------------------------------------------------------------------
  focusSearch(): void {
    this.searchBox.focus();
    this.searchBox.select();
  }

  private onSearchKey(ev: KeyboardEvent): void {
    ev.stopPropagation();   // typing here is not a notebook shortcut
    if (ev.key === 'Enter') {
      ev.preventDefault();
      if (this.searchTimer !== null) {
        this.runSearch(true);
      } else {
        this.moveMatch(ev.shiftKey ? -1 : 1);
      }
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      if (this.searchBox.value) {
        this.searchBox.value = '';
        this.runSearch(true);
      } else {
        this.steps.pane.focus({ preventScroll: true });
      }
    }
  }

  private searchSoon(): void {
    if (this.searchTimer !== null) {
      clearTimeout(this.searchTimer);
    }
    this.searchTimer = window.setTimeout(() => this.runSearch(true), 150);
  }

  /** Search for what the box holds; `jump`: go to the first match (a new query), else keep the place. */
  private runSearch(jump: boolean): void {
    if (this.searchTimer !== null) {
      clearTimeout(this.searchTimer);
      this.searchTimer = null;
    }
    const q = this.searchBox.value.trim();
    const changed = q !== this.query;
    this.query = q;
    const { steps, total } = searchSteps(this.store, this.store.root(), q);
    this.found = steps;
    this.foundTotal = total;
    this.steps.setSearch(q, steps);
    this.root.dataset.matches = String(total);
    if (!q) {
      this.cursor = null;
      this.searchCount.textContent = '';
      return;
    }
    if (changed || jump) {
      this.cursor = null;
      if (this.tab !== 'steps') {
        this.showTab('steps');
      }
      if (steps.length) {
        this.moveMatch(1);
        return;
      }
    }
    this.showCount();
  }

  /** Go to the next (+1) or previous (-1) match, opening its step; wraps around. The focus stays where it was
   *  (the search box, or the steps for n / N). */
  private moveMatch(dir: number): void {
    if (!this.found.length) {
      this.showCount();
      return;
    }
    const inBox = this.root.ownerDocument.activeElement === this.searchBox;
    const n = this.found.length;
    let step: number;
    let hit: number;
    let hits: HTMLElement[];
    if (!this.cursor) {
      step = dir > 0 ? 0 : n - 1;
      hits = this.steps.revealHits(this.found[step].step);
      hit = dir > 0 ? 0 : hits.length - 1;
    } else {
      step = this.cursor.step;
      hits = this.steps.revealHits(this.found[step].step);
      hit = this.cursor.hit + dir;
    }
    // past this step's hits: on to the next (previous) step that shows one
    for (let guard = 0; guard <= n && (hit < 0 || hit >= hits.length); guard++) {
      step = (step + (dir > 0 ? 1 : -1) + n) % n;
      hits = this.steps.revealHits(this.found[step].step);
      hit = dir > 0 ? 0 : hits.length - 1;
    }
    this.cursor = { step, hit };
    for (const m of Array.from(this.steps.pane.querySelectorAll('mark.rj-hit-current'))) {
      m.classList.remove('rj-hit-current');
    }
    const cur = hits[hit];
    if (cur) {
      const row = cur.closest('.rj-step');
      for (const m of Array.from(row?.querySelectorAll<HTMLElement>(`mark.rj-hit[data-hit="${cur.dataset.hit}"]`) ?? [])) {
        m.classList.add('rj-hit-current');
      }
      this.steps.select(this.steps.order.indexOf(this.found[step].step));
      cur.scrollIntoView({ block: 'center' });
      if (inBox) {
        this.searchBox.focus({ preventScroll: true });
      }
    }
    this.showCount();
  }

  private showCount(): void {
    if (!this.query) {
      this.searchCount.textContent = '';
      return;
    }
    if (!this.foundTotal) {
      this.searchCount.textContent = 'no match';
      return;
    }
    let at = 0;
    if (this.cursor) {
      for (let i = 0; i < this.cursor.step; i++) {
        at += this.found[i].count;
      }
      at += Math.min(this.cursor.hit, this.found[this.cursor.step].count - 1) + 1;
    }
    const steps = this.found.length;
    this.searchCount.textContent = `${at ? at + ' / ' : ''}${this.foundTotal} match${this.foundTotal === 1 ? '' : 'es'} in ` +
      `${steps} step${steps === 1 ? '' : 's'}`;
  }
}
