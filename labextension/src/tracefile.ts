// What the JupyterLab renderer is given, turned into checked trace events: the MIME bundle of a notebook output
// ({header, events, title?, status?, budget?}), the text of a `.rlmtrace.jsonl` file, or an `rlms` log (logger
// JSONL or a completion JSON dump), read the way rlm_jupyter/trace/reader.py reads files. Every line is checked
// against rlm_jupyter/trace/schema.json; lines that fail are left out of the view and listed, never silently.
// rlm_jupyter/trace/reader.py follows the same rule (tests/test_trace_fuzz.py feeds both the same damaged files).

import schemaJson from '../../rlm_jupyter/trace/schema.json';
import { fromRlmsCompletion, fromRlmsLog, isRlmsCompletion, isRlmsLog, TRACE_FORMAT, TRACE_VERSION } from './rlms';
import { SchemaChecker, SchemaError } from './schemacheck';
import type { TraceEvent } from './store';
import { EVENT_TYPES as EVENT_TYPE_LIST, RUN_STATUSES } from './trace-events';

export { TRACE_FORMAT, TRACE_VERSION } from './rlms';

export type TraceSource = 'trace' | 'rlms-log' | 'rlms-completion' | 'bundle';

export interface LoadedTrace {
  header: Record<string, any> | null;
  events: TraceEvent[];
  source: TraceSource;
  /** Non-fatal: lines skipped, events that failed the schema (with where and why). */
  problems: string[];
  title?: string;
  status?: string;
  budget?: Record<string, any> | null;
  /** Where the run's .rlmtrace.jsonl was written, and a note (e.g. which variable a re-run went to): a bundle's. */
  tracePath?: string;
  note?: string;
}

/** A document that cannot be shown as a trace at all; the message says what was expected and what to do. */
export class TraceFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceFormatError';
  }
}

/** JSON nested deeper than this is skipped, as rlm_jupyter/trace/reader.py skips it (orjson's limit). */
export const MAX_NESTING = 1024;

let checker: SchemaChecker | null = null;

export function traceSchema(): SchemaChecker {
  return (checker ??= new SchemaChecker(schemaJson as object));
}

/** The text of a trace file or an rlms log. */
export function loadText(text: string, name = 'This file'): LoadedTrace {
  let whole: unknown;
  try {
    whole = JSON.parse(text); // a single (pretty-printed) JSON document: an rlms RLMChatCompletion dump
    whole = tooDeep(whole, text.length) ? undefined : whole;
  } catch {
    whole = undefined;
  }
  if (isRlmsCompletion(whole)) {
    const imp = fromRlmsCompletion(whole as Record<string, any>, name);
    return untitled(settle(checked(imp.header, imp.events, 'rlms-completion', imp.problems)));
  }
  const records: unknown[] = [];
  const lineNos: number[] = []; // the file line of each record (blank and unreadable lines are not records)
  const problems: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) {
      return;
    }
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      // Only the last line can be cut off by a killed writer (every other line ended with its newline).
      problems.push(e instanceof RangeError ? `line ${i + 1}: nested deeper than ${MAX_NESTING} levels; skipped`
        : i < lines.length - 1 ? `line ${i + 1}: not valid JSON; skipped`
          : `line ${i + 1}: cut-off last line (run interrupted?); ignored`);
      return;
    }
    if (tooDeep(rec, line.length)) {
      problems.push(`line ${i + 1}: nested deeper than ${MAX_NESTING} levels; skipped`);
      return;
    }
    records.push(rec);
    lineNos.push(i + 1);
  });
  if (!records.length && problems.length) {
    throw new TraceFormatError(`${name} is not a trace: no line of it is JSON (a trace file has a header line, ` +
      'then one JSON event per line).');
  }
  if (!records.length) {
    throw new TraceFormatError(`${name} is empty: a trace file has a header line, then one event per line.`);
  }
  const first = records[0] as Record<string, any>;
  if (first && typeof first === 'object' && first.format === TRACE_FORMAT) {
    checkVersion(first);
    return settle(checked(first, records.slice(1), 'trace', problems, lineNos.slice(1)));
  }
  if (isRlmsLog(first)) {
    const imp = fromRlmsLog(records, name);
    return untitled(settle(checked(imp.header, imp.events, 'rlms-log', [...problems, ...imp.problems])));
  }
  if (records.slice(0, 20).some(looksLikeEvent)) { // the header line was damaged: show the events
    problems.unshift(`no trace header on line 1 (damaged or missing); read as an rlm-jupyter trace of version ${TRACE_VERSION}`);
    return settle(checked({ type: 'header', format: TRACE_FORMAT, version: TRACE_VERSION }, records, 'trace', problems,
      lineNos));
  }
  throw new TraceFormatError(
    `${name} is not a trace: expected an rlm-jupyter trace (first line a header with format '${TRACE_FORMAT}') ` +
    `or an rlms log (first line of type 'metadata'); the first line is ${preview(lines.find(l => l.trim()))}.`);
}

/** The data of an `application/vnd.rlm-jupyter.trace+json` output. */
export function loadBundle(data: unknown): LoadedTrace {
  if (typeof data === 'string') {
    return loadText(data, 'This output');
  }
  if (Array.isArray(data)) {
    return settle(checked(null, data, 'bundle', []));
  }
  if (data && typeof data === 'object' && Array.isArray((data as any).events)) {
    const d = data as Record<string, any>;
    const header = d.header && typeof d.header === 'object' ? d.header : null;
    if (header) {
      checkVersion(header);
    }
    const out = checked(header, d.events, 'bundle', []);
    // TraceView.bundle() (rlm_jupyter/jupyter/widget.py) keeps the view's title, status and budget in the header
    const pick = (k: string) => d[k] ?? header?.[k];
    out.title = typeof pick('title') === 'string' && pick('title') ? pick('title') : undefined;
    out.status = typeof pick('status') === 'string' && pick('status') ? pick('status') : undefined;
    out.budget = pick('budget') && typeof pick('budget') === 'object' ? pick('budget') : null;
    out.tracePath = typeof pick('trace_path') === 'string' && pick('trace_path') ? pick('trace_path') : undefined;
    out.note = typeof pick('note') === 'string' && pick('note') ? pick('note') : undefined;
    return settle(out);
  }
  throw new TraceFormatError(
    'This output is not a trace: application/vnd.rlm-jupyter.trace+json data must be an object with an ' +
    '"events" list (as rlm_jupyter writes it). Re-display the run with a current rlm-jupyter.');
}

function checkVersion(header: Record<string, any>): void {
  if (header.format !== undefined && header.format !== TRACE_FORMAT) {
    throw new TraceFormatError(`Not an rlm-jupyter trace: its header names the format ${preview(header.format)}.`);
  }
  // The version is a major number: every version up to ours is read, a newer one refused (as trace/reader.py).
  const v = header.version;
  if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= TRACE_VERSION)) {
    const newer = typeof v === 'number' && v > TRACE_VERSION;
    throw new TraceFormatError(
      `This trace has format version ${typeof v === "number" ? v : preview(v)}; this viewer reads versions 1 to ${TRACE_VERSION}. ` +
      (newer ? 'It was written by a newer rlm-jupyter: upgrade it (pip install -U rlm-jupyter) and reload the page.'
        : 'A format version is a whole number from 1.'));
  }
}

/** Validate the header and every event; keep the valid events (a later version of an id replaces the earlier). */
function checked(header: Record<string, any> | null, records: unknown[], source: TraceSource, problems: string[],
  lineNos?: number[]): LoadedTrace {
  const schema = traceSchema();
  if (header) {
    const errs = schema.check(header);
    if (errs.length) {
      throw new TraceFormatError(`The trace header is not valid: ${reasons(errs)}.`);
    }
  }
  const events: TraceEvent[] = [];
  const seen = new Map<string, number>();
  records.forEach((rec, i) => {
    const errs = lateType(rec) ? commonFieldErrors(rec as Record<string, unknown>) : schema.check(rec);
    if (!errs.length && (rec as any).type === 'header') {
      return; // a header repeated by a resumed writer
    }
    if (errs.length) {
      const where = lineNos ? `line ${lineNos[i]}` : `event ${i + 1}`;
      const id = rec && typeof rec === 'object' && typeof (rec as any).id === 'string' ? ` (${(rec as any).id})` : '';
      problems.push(`${where}${id}: ${reasons(errs)}; not shown`);
      return;
    }
    const e = rec as TraceEvent;
    const at = seen.get(e.id);
    if (at === undefined) {
      seen.set(e.id, events.length);
      events.push(e);
    } else {
      events[at] = e; // an amended event (same id) replaces the earlier version in place, as the Python reader does
    }
  });
  if (!events.some(e => e.type === 'run' && e.parent == null)) {
    if (!events.length && problems.length) {
      throw new TraceFormatError(`No valid trace event to show. ${problems.slice(0, 3).join('. ')}`);
    }
    problems.push('no top-level run event: the trace is incomplete');
  }
  return { header, events, source, problems };
}

// The statuses after which a run does not go on (view.ts shows a still clock for them).
const TERMINAL = new Set<string>(RUN_STATUSES);

/** A file or a saved output is a snapshot: a run in it that never ended is not "running" (its clock would tick on
 * in the view); it is shown as interrupted, and the notice says why. */
function settle(trace: LoadedTrace): LoadedTrace {
  const root = trace.events.find(e => e.type === 'run' && e.parent == null);
  if (!root || trace.events.some(e => e.type === 'run_end' && e.parent === root.id)) {
    return trace;
  }
  if (!trace.status || !TERMINAL.has(trace.status)) {
    trace.problems.push(`the run has no end${trace.status ? ` (it was ${trace.status} when saved)` : ''}: ` +
      'it was interrupted, or is still being written (reopen the file to see more)');
    trace.status = 'interrupted';
  }
  return trace;
}

/** rlms keeps the question only in the prompt messages, and a completion dump may not have it at all: say so in the
 * title rather than show an empty one. */
function untitled(trace: LoadedTrace): LoadedTrace {
  const root = trace.events.find(e => e.type === 'run' && e.parent == null);
  if (root && !String(root.question ?? '').trim()) {
    trace.title = `${root.model ?? 'rlms'} run (the question is not in this rlms log)`;
  }
  return trace;
}

/** Event types the view draws that schema.json may not list yet (a writer newer than the schema this build was made
 *  with): `worker_start` (docs/trace-format.md). Checked for the fields every event has; their own fields are read
 *  defensively by the view. */
const LATE_TYPES = new Set(['worker_start']);

function lateType(rec: unknown): boolean {
  const t = rec && typeof rec === 'object' ? (rec as any).type : undefined;
  return typeof t === 'string' && LATE_TYPES.has(t) && !EVENT_TYPES.has(t);
}

function commonFieldErrors(r: Record<string, unknown>): SchemaError[] {
  const errs: SchemaError[] = [];
  if (typeof r.id !== 'string' || !r.id) {
    errs.push({ path: '/id', message: 'expected a non-empty string' });
  }
  if (r.parent !== null && typeof r.parent !== 'string') {
    errs.push({ path: '/parent', message: 'expected a string or null' });
  }
  if (typeof r.t !== 'number' || !isFinite(r.t)) {
    errs.push({ path: '/t', message: 'expected a number' });
  }
  return errs;
}

function reasons(errs: SchemaError[]): string {
  return errs.slice(0, 3).map(e => (e.path ? `${e.path.slice(1)}: ` : '') + e.message).join('; ');
}

const EVENT_TYPES = new Set<string>(EVENT_TYPE_LIST);

function looksLikeEvent(rec: unknown): boolean {
  const r = rec as Record<string, unknown>;
  return r !== null && typeof r === 'object' && !Array.isArray(r) && typeof r.id === 'string' &&
    EVENT_TYPES.has(r.type as string);
}

/** True when arrays / objects nest more than MAX_NESTING deep (counted without recursion). */
function tooDeep(value: unknown, textLength: number): boolean {
  if (textLength <= 2 * MAX_NESTING) {
    return false; // too short to nest that deep: the common case costs nothing
  }
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') {
      continue;
    }
    if (depth + 1 > MAX_NESTING) {
      return true;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      stack.push([child, depth + 1]);
    }
  }
  return false;
}

function preview(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? 'an array' : typeof v; // too deep to print
  }
  return `'${s.length > 80 ? s.slice(0, 79) + '…' : s}'`;
}
