// Number, duration and text formatters, and regex spans: pure functions (no DOM), shared by the views and
// unit-tested under Node (tests/test_labext_units.py).

// One formatter for all numbers: Number.toLocaleString builds a new one on every call (slow on a 1,000-step trace).
const INT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function fmtInt(n: number): string {
  return INT.format(Math.round(n));
}

export function fmtTokens(n: number): string {
  if (n >= 1e6) {
    return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M';
  }
  if (n >= 1e4) {
    return (n / 1e3).toFixed(0) + 'k';
  }
  return fmtInt(n);
}

export function fmtCost(usd: number | null | undefined, known = true): string {
  if (!known || usd == null) {
    return '$?';
  }
  if (usd === 0) {
    return '$0';
  }
  return usd < 0.01 ? '$' + usd.toFixed(4) : '$' + usd.toFixed(2);
}

export function fmtDur(s: number | null | undefined): string {
  if (s == null || !isFinite(s)) {
    return '–';
  }
  if (s < 1) {
    return Math.round(s * 1000) + ' ms';
  }
  if (s < 60) {
    return s.toFixed(s < 10 ? 2 : 1) + ' s';
  }
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function firstLine(text: string | null | undefined, limit = 140): string {
  const line = (text ?? '').split('\n').find(l => l.trim()) ?? '';
  return line.length > limit ? line.slice(0, limit - 1) + '…' : line;
}

/** Spans of `pattern` (a regex source, as the query used it) in `text`; tolerant of patterns JS cannot read. */
export function findSpans(text: string, patterns: string[], caseSensitive: boolean, max = 50): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const p of patterns) {
    let re: RegExp;
    try {
      re = new RegExp(p, caseSensitive ? 'g' : 'gi');
    } catch {
      continue;
    }
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) && out.length < max) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      out.push([m.index, m.index + m[0].length]);
    }
  }
  return out;
}
