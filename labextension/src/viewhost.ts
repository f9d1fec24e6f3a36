// What the parts of the trace view (header.ts, steps.ts, calltree.ts, timeline.ts, panel.ts) share: the options a
// host passes to TraceView and the view itself as the parts see it.

import type { TraceEvent, TraceStore } from './store';

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

/** The view as its parts see it. */
export interface ViewHost {
  readonly store: TraceStore;
  readonly opts: ViewOptions;
  status(): string;
  /** Open a snippet's full message in the panel. */
  openMessage(id: string, snippet: any, patterns: string[], caseSensitive: boolean): void;
  /** Open a sub-call's detail pane (prompt, response, usage, error). */
  openCall(e: TraceEvent): void;
}
