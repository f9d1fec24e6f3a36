// Logs of the reference implementation (`rlms` on PyPI) turned into trace events in the browser, the same way
// rlm_jupyter/trace/rlms.py does on the Python side (tests/test_labext_schema.py checks both give equal events).
//
// An rlms logger file is a `metadata` line, then one `iteration` line per root turn; the counter restarts at 1 for
// each completion() call, which is how runs are told apart. Sub-calls sit in code_blocks[].result.rlm_calls[]; a
// child RLM's own iterations are nested in the call's `metadata`. The log has no ids and no per-call timestamps, so
// ids are positional and times come from the iteration timestamps.
//
// Every field is untrusted: a value of the wrong type is read as missing (a list where an object belongs is {}), and
// the events built are checked against schema.json like any other (tracefile.ts); rlms.py does the same.

import type { TraceEvent } from './store';

import { EventType, TRACE_FORMAT, TRACE_VERSION } from './trace-events';

export { TRACE_FORMAT, TRACE_VERSION };
/** Child RLMs nest inside their parent's call metadata; deeper than this is not a real log (and would recurse). */
const MAX_DEPTH = 100;

type Rec = Record<string, any>;

export interface Imported {
  header: Rec;
  events: TraceEvent[];
  /** Fields of the wrong type, read as missing: where (the event built from them) and what. */
  problems: string[];
}

export function isRlmsLog(first: unknown): boolean {
  return isObj(first) && first.type === 'metadata' && 'root_model' in first;
}

export function isRlmsCompletion(doc: unknown): boolean {
  return isObj(doc) && 'root_model' in doc && 'metadata' in doc;
}

/** Every record of a logger file, in order (the first is the metadata line). */
export function fromRlmsLog(lines: unknown[], source: string): Imported {
  const meta = lines[0] as Rec;
  const b = new Builder();
  const runs: Rec[][] = [];
  for (const rec of lines.slice(1)) {
    if (!isObj(rec) || rec.type !== 'iteration') {
      continue;
    }
    const last = runs.length ? runs[runs.length - 1] : null;
    if (!last || (num(rec.iteration) || 1) <= (num(last[last.length - 1].iteration) || 0)) {
      runs.push([]);
    }
    runs[runs.length - 1].push(rec);
  }
  for (const its of runs) {
    b.run(meta, its, null, question(its));
  }
  return { header: header(source), events: b.events, problems: b.notes };
}

/** An RLMChatCompletion dumped as JSON (its metadata holds the iterations when a logger was set). */
export function fromRlmsCompletion(doc: Rec, source: string): Imported {
  const meta = obj(maybeJson(doc.metadata));
  const b = new Builder();
  const prompt = maybeJson(doc.prompt);
  const runMeta = meta.run_metadata;
  b.run(isObj(runMeta) && Object.keys(runMeta).length ? runMeta : { root_model: doc.root_model }, list(meta.iterations), null,
    typeof prompt === 'string' ? prompt : null);
  return { header: header(source), events: b.events, problems: b.notes };
}

function header(source: string): Rec {
  return { type: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, imported_from: 'rlms', source };
}

class Builder {
  events: TraceEvent[] = [];
  private n = 0;
  private rootModel: string | null = null;
  private subModel: string | null = null; // of the run being built: the model its first sub-call used
  private depth = 0; // of the run being built: 0 = a top-level run
  notes: string[] = []; // fields of the wrong type, read as missing: where and what

  /** Note `rec[field]` when it is there but not of the JSON type `want` (the caller reads it as missing). */
  odd(where: string, rec: Rec, field: string, want: string): void {
    const value = rec[field];
    if (value !== null && value !== undefined && jsonType(value) !== want) {
      this.notes.push(`${where}: ${field} is ${article(jsonType(value))}, not ${article(want)}; read as missing`);
    }
  }

  emit(type: EventType, parent: string | null, t: number | null, fields: Rec): TraceEvent {
    this.n += 1;
    const e: TraceEvent = { id: `rlms-${type}-${this.n}`, parent, type, t: t || 0.0, ...fields };
    this.events.push(e);
    return e;
  }

  run(rawMeta: unknown, rawIterations: unknown, parent: string | null, q: string | null, depth = 0): TraceEvent {
    const raw: Rec = { metadata: rawMeta, iterations: rawIterations };
    const meta = obj(rawMeta);
    const iterations = list(rawIterations).filter(isObj) as Rec[];
    this.depth = depth;
    const outer = this.rootModel;
    const outerSub = this.subModel;
    this.rootModel = meta.root_model ?? null;
    this.subModel = null;
    const t0 = ts(meta.timestamp) ?? (iterations.length ? ts(iterations[0].timestamp) : null);
    const run = this.emit('run', parent, t0, {
      // the log names the sub-model's backend (other_backends: "openai"), not the model: set from the sub-calls
      question: q || '', model: meta.root_model ?? null, sub_model: null,
      max_depth: meta.max_depth ?? null, max_iterations: meta.max_iterations ?? null,
      environment: meta.environment_type ?? null, imported_from: 'rlms',
    });
    this.odd(run.id, raw, 'metadata', 'object');
    this.odd(run.id, raw, 'iterations', 'array');
    if (iterations.length < list(rawIterations).length) {
      this.notes.push(`${run.id}: ${list(rawIterations).length - iterations.length} iteration(s) not an object; skipped`);
    }
    let final: unknown = null;
    let end = t0;
    for (const it of iterations) {
      final = this.iteration(run.id, it) || final; // as Python's `or`: an empty answer keeps the previous one
      const t = ts(it.timestamp); // the run ends when its last iteration does (the log has no end time)
      if (t !== null) {
        end = Math.max(end || t, t + (toFloat(it.iteration_time) || 0.0));
      }
    }
    if (final !== null) {
      this.emit('final', run.id, end, { answer: final, via: 'rlms' });
    }
    this.emit('run_end', run.id, end, { status: final !== null ? 'done' : 'unfinished' });
    run.sub_model = this.subModel;
    this.rootModel = outer;
    this.subModel = outerSub;
    return run;
  }

  iteration(runId: string, it: Rec): unknown {
    const t = ts(it.timestamp);
    const prompt = it.prompt;
    const step = this.emit('step', runId, t, {
      index: (num(it.iteration) || 1) - 1, response: str(it.response),
      prompt_messages: Array.isArray(prompt) ? prompt.length : null, dur: it.iteration_time ?? null,
      model: this.rootModel, tokens_in: null, tokens_out: null,
    });
    for (const [field, want] of [['iteration', 'number'], ['response', 'string'], ['code_blocks', 'array'],
      ['final_answer', 'string']]) {
      this.odd(step.id, it, field, want);
    }
    list(it.code_blocks).forEach((rawBlock: unknown, k: number) => {
      this.odd(step.id, { [`code_blocks[${k}]`]: rawBlock }, `code_blocks[${k}]`, 'object');
      const block = obj(rawBlock);
      const result = obj(block.result);
      const code = this.emit('code', step.id, t, { index: k, code: str(block.code) });
      this.odd(code.id, block, 'code', 'string');
      this.odd(code.id, block, 'result', 'object');
      for (const [field, want] of [['rlm_calls', 'array'], ['stdout', 'string'], ['stderr', 'string']]) {
        this.odd(code.id, result, field, want);
      }
      list(result.rlm_calls).forEach((call, j) => {
        if (isObj(call)) {
          this.call(code.id, call, t);
        } else {
          this.odd(code.id, { [`rlm_calls[${j}]`]: call }, `rlm_calls[${j}]`, 'object');
        }
      });
      const stderr = str(result.stderr);
      this.emit('output', code.id, t, {
        stdout: str(result.stdout), stderr, status: stderr.trim() ? 'error' : 'ok',
        dur: toFloat(result.execution_time),
      });
    });
    return typeof it.final_answer === 'string' ? it.final_answer : null; // text; anything else is damage
  }

  call(parent: string, call: Rec, t: number | null): void {
    const [tin, tout, cost] = usage(call.usage_summary);
    if (!this.subModel && typeof call.root_model === 'string') {
      this.subModel = call.root_model;
    }
    const sub = this.emit('sub_call', parent, t, {
      model: call.root_model ?? null, prompt: text(call.prompt), response: text(call.response), tokens_in: tin,
      tokens_out: tout, cost_usd: cost, dur: toFloat(call.execution_time), status: call.error ? 'error' : 'ok',
      error: call.error ?? null,
    });
    const meta = maybeJson(call.metadata);
    if (isObj(meta) && list(meta.iterations).length && this.depth >= MAX_DEPTH) {
      this.notes.push(`${sub.id}: child runs nested deeper than ${MAX_DEPTH}; not imported`);
    } else if (isObj(meta) && list(meta.iterations).length) {
      const depth = this.depth;
      const child = this.run(meta.run_metadata, meta.iterations, sub.id, text(call.prompt), depth + 1);
      this.depth = depth;
      sub.child_run = child.id;
    }
  }
}

function usage(summary: unknown): [number, number, number | null] {
  const s = maybeJson(summary);
  if (!isObj(s)) {
    return [0, 0, null];
  }
  let tin = 0;
  let tout = 0;
  for (const m of Object.values(obj(s.model_usage_summaries))) {
    tin += num(obj(m).total_input_tokens) || 0;
    tout += num(obj(m).total_output_tokens) || 0;
  }
  return [tin, tout, s.total_cost ?? null];
}

// Naive ISO times are local time, as Python's datetime.fromisoformat(...).timestamp() reads them; microseconds
// are kept (Date.parse would round them to milliseconds).
const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})?$/;

export function ts(value: unknown): number | null {
  if (typeof value !== 'string') {
    return null;
  }
  const m = ISO.exec(value.trim());
  if (!m) {
    return null;
  }
  const [y, mo, d, hh, mi, ss] = [1, 2, 3, 4, 5, 6].map(i => Number(m[i] ?? 0));
  const micro = m[7] ? Number(m[7].padEnd(6, '0')) : 0;
  let secs: number;
  if (m[8]) {
    const off = m[8] === 'Z' ? 0 : (m[8][0] === '-' ? -1 : 1) *
      (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(-2)));
    secs = Date.UTC(y, mo - 1, d, hh, mi, ss) / 1000 - off * 60;
  } else {
    secs = new Date(y, mo - 1, d, hh, mi, ss).getTime() / 1000;
  }
  return isFinite(secs) ? secs + micro / 1e6 : null;
}

// Some dumps store nested dicts as strings; JSON ones are read, Python reprs stay text (the Python importer can
// also read those: `rlm-jupyter` / `rj.Trace.load` then `save` gives a trace file this viewer opens).
function maybeJson(value: unknown): any {
  if (typeof value === 'string' && (value.startsWith('{') || value.startsWith('['))) {
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }
  return value;
}

function toFloat(v: unknown): number | null {
  if (v === null || v === undefined || typeof v === 'boolean') {
    return null;
  }
  const n = Number(v);
  return typeof v !== 'object' && isFinite(n) && !(typeof v === 'string' && !v.trim()) ? n : null;
}

/** Text fields: another type is damage, read as missing (rlms.py's _str). */
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : v == null ? '' : JSON.stringify(v);
}

function question(its: Rec[]): string | null {
  const prompt = its.length ? its[0].prompt : null;
  if (Array.isArray(prompt)) {
    for (const m of prompt) {
      if (isObj(m) && m.role === 'user' && typeof m.content === 'string') {
        return m.content;
      }
    }
  }
  return null;
}

function isObj(v: unknown): v is Rec {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v;
}

function article(t: string): string {
  return t === 'null' ? t : /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function obj(v: unknown): Rec {
  return isObj(v) ? v : {};
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** A finite number (not a boolean, not a numeric string), else null: as rlms.py's _num. */
function num(v: unknown): number | null {
  return typeof v === 'number' && isFinite(v) ? v : null;
}
