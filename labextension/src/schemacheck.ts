// A small JSON Schema (2020-12) checker for the keywords rlm_jupyter/trace/schema.json uses, so the browser checks
// trace events against the very file the Python tests validate with `jsonschema` (tests/test_labext_schema.py
// compares the verdicts of both on the same documents). A keyword it does not know makes `compile` throw: a schema
// that grows a new kind of rule must grow this checker too, rather than be half-enforced without anyone noticing.

type Schema = boolean | { [keyword: string]: any };

const ANNOTATIONS = new Set(['$schema', '$id', '$comment', '$defs', 'title', 'description', 'default', 'examples']);
const KNOWN = new Set([
  'type', 'const', 'enum', 'required', 'properties', 'additionalProperties', 'items', 'minLength', 'maxLength',
  'minimum', 'maximum', 'minItems', 'oneOf', 'anyOf', 'allOf', 'not', 'if', 'then', 'else', '$ref',
]);

export interface SchemaError {
  path: string; // JSON pointer into the instance ('' = the whole document)
  message: string;
}

export class SchemaChecker {
  private root: Schema;

  constructor(schema: Schema) {
    this.root = schema;
    this.walk(schema, '#');
  }

  /** The reasons `value` does not match (empty when it does); at most `limit` of them. */
  check(value: unknown, limit = 5): SchemaError[] {
    const errors: SchemaError[] = [];
    this.match(this.root, value, '', errors);
    return errors.slice(0, limit);
  }

  private walk(s: Schema, at: string): void {
    if (typeof s === 'boolean') {
      return;
    }
    if (s === null || typeof s !== 'object' || Array.isArray(s)) {
      throw new Error(`trace schema: ${at} is not a schema`);
    }
    for (const [k, v] of Object.entries(s)) {
      if (ANNOTATIONS.has(k)) {
        if (k === '$defs') {
          for (const [name, sub] of Object.entries(v as object)) {
            this.walk(sub as Schema, `${at}/$defs/${name}`);
          }
        }
        continue;
      }
      if (!KNOWN.has(k)) {
        throw new Error(`trace schema: keyword '${k}' at ${at} is not supported by the browser checker ` +
          '(labextension/src/schemacheck.ts); add it there');
      }
      if (k === 'properties') {
        for (const [name, sub] of Object.entries(v as object)) {
          this.walk(sub as Schema, `${at}/properties/${name}`);
        }
      } else if (k === 'oneOf' || k === 'anyOf' || k === 'allOf') {
        (v as Schema[]).forEach((sub, i) => this.walk(sub, `${at}/${k}/${i}`));
      } else if (['not', 'if', 'then', 'else', 'items', 'additionalProperties'].includes(k)) {
        this.walk(v as Schema, `${at}/${k}`);
      } else if (k === '$ref') {
        this.resolve(v as string); // throws on a reference it cannot follow
      }
    }
  }

  private resolve(ref: string): Schema {
    if (!ref.startsWith('#')) {
      throw new Error(`trace schema: only local $ref are supported, not '${ref}'`);
    }
    let cur: any = this.root;
    for (const raw of ref.slice(1).split('/').filter(Boolean)) {
      const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      cur = cur?.[part];
    }
    if (cur === undefined) {
      throw new Error(`trace schema: $ref '${ref}' points nowhere`);
    }
    return cur as Schema;
  }

  /** True when `v` matches `s`; reasons are appended to `errors` (callers trying alternatives pass a scratch list). */
  private match(s: Schema, v: unknown, path: string, errors: SchemaError[]): boolean {
    if (s === true) {
      return true;
    }
    if (s === false) {
      errors.push({ path, message: 'no value is allowed here' });
      return false;
    }
    const before = errors.length;
    const fail = (message: string) => errors.push({ path, message });
    if (s.$ref !== undefined) {
      this.match(this.resolve(s.$ref), v, path, errors);
    }
    if (s.type !== undefined) {
      const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
      if (!types.some(t => isType(v, t))) {
        fail(`expected ${types.join(' or ')}, got ${describe(v)}`);
        return false; // the other rules would only repeat this
      }
    }
    if ('const' in s && !deepEqual(v, s.const)) {
      fail(`expected ${JSON.stringify(s.const)}, got ${describe(v)}`);
    }
    if (s.enum !== undefined && !(s.enum as unknown[]).some(x => deepEqual(v, x))) {
      fail(`expected one of ${(s.enum as unknown[]).map(x => JSON.stringify(x)).join(', ')}, got ${describe(v)}`);
    }
    if (typeof v === 'string') {
      const n = Array.from(v).length; // JSON Schema counts characters (code points), not UTF-16 units
      if (s.minLength !== undefined && n < s.minLength) {
        fail(`shorter than ${s.minLength} characters`);
      }
      if (s.maxLength !== undefined && n > s.maxLength) {
        fail(`longer than ${s.maxLength} characters`);
      }
    }
    if (typeof v === 'number') {
      if (s.minimum !== undefined && v < s.minimum) {
        fail(`less than ${s.minimum}`);
      }
      if (s.maximum !== undefined && v > s.maximum) {
        fail(`more than ${s.maximum}`);
      }
    }
    if (Array.isArray(v)) {
      if (s.minItems !== undefined && v.length < s.minItems) {
        fail(`fewer than ${s.minItems} items`);
      }
      if (s.items !== undefined) {
        v.forEach((item, i) => this.match(s.items, item, `${path}/${i}`, errors));
      }
    }
    if (isType(v, 'object')) {
      const obj = v as Record<string, unknown>;
      for (const key of (s.required as string[] | undefined) ?? []) {
        if (!(key in obj)) {
          errors.push({ path: `${path}/${key}`, message: 'required field is missing' });
        }
      }
      const props = (s.properties ?? {}) as Record<string, Schema>;
      for (const [key, sub] of Object.entries(props)) {
        if (key in obj) {
          this.match(sub, obj[key], `${path}/${key}`, errors);
        }
      }
      if (s.additionalProperties !== undefined) {
        for (const key of Object.keys(obj)) {
          if (!(key in props)) {
            this.match(s.additionalProperties, obj[key], `${path}/${key}`, errors);
          }
        }
      }
    }
    for (const sub of (s.allOf as Schema[] | undefined) ?? []) {
      this.match(sub, v, path, errors);
    }
    if (s.anyOf !== undefined) {
      const tries = (s.anyOf as Schema[]).map(sub => this.attempt(sub, v, path));
      if (!tries.some(t => t.length === 0)) {
        errors.push(...closest(tries));
      }
    }
    if (s.oneOf !== undefined) {
      const tries = (s.oneOf as Schema[]).map(sub => this.attempt(sub, v, path));
      const ok = tries.filter(t => t.length === 0).length;
      if (ok === 0) {
        errors.push(...closest(tries));
      } else if (ok > 1) {
        fail(`matches ${ok} of the alternatives, exactly one is allowed`);
      }
    }
    if (s.not !== undefined && this.attempt(s.not, v, path).length === 0) {
      fail('matches a schema it must not match');
    }
    if (s.if !== undefined) {
      const branch = this.attempt(s.if, v, path).length === 0 ? s.then : s.else;
      if (branch !== undefined) {
        this.match(branch, v, path, errors);
      }
    }
    return errors.length === before;
  }

  private attempt(s: Schema, v: unknown, path: string): SchemaError[] {
    const scratch: SchemaError[] = [];
    this.match(s, v, path, scratch);
    return scratch;
  }
}

// Of failed alternatives, report the one that got furthest (fewest errors): for a trace line that is "an event
// with a bad field", the event branch says more than "not a header".
function closest(tries: SchemaError[][]): SchemaError[] {
  return tries.reduce((best, t) => (t.length < best.length ? t : best));
}

function isType(v: unknown, t: string): boolean {
  switch (t) {
    case 'null':
      return v === null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    default:
      return false;
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) {
    return true;
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return false;
  }
  if (Array.isArray(a) !== Array.isArray(b)) {
    return false;
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every(k => deepEqual((a as any)[k], (b as any)[k]));
}

function describe(v: unknown): string {
  if (v === null) {
    return 'null';
  }
  if (Array.isArray(v)) {
    return 'an array';
  }
  if (typeof v === 'string') {
    return v.length > 40 ? `a string ("${v.slice(0, 37)}…")` : `"${v}"`;
  }
  if (typeof v === 'object') {
    return 'an object';
  }
  return String(v);
}
