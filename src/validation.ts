import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types';
import addFormats from 'ajv-formats';
import { RE2JS } from 're2js';

/** One invalid field: where it is (a JSON pointer, with its location) and why. */
export interface FieldError {
  /** `body`, `query`, `params`, `env` or `value`. */
  in: string;
  /** JSON pointer inside that location, e.g. `/messages/0/role`; '' for the whole value. */
  path: string;
  message: string;
}

export interface SchemaRegistry {
  /** Every `$id` loaded, for tests and docs. */
  readonly ids: readonly string[];
  /** The compiled validator for a schema `$id`; throws at start for an unknown id. */
  get(id: string): ValidateFunction;
  /** The raw schema document for a `$id`. */
  schema(id: string): Record<string, unknown>;
  /** Validates (and applies schema defaults to) `data`; returns the problems, empty when valid. */
  check(id: string, data: unknown, location: string): FieldError[];
  /**
   * Compiles an ad-hoc schema (a caller's response_format, a client tool's parameters) with the
   * same options, on an Ajv of its own: a caller's `$id` never meets the registry's or another
   * caller's, and Ajv keeps no reference to it (the caller bounds its own cache of validators).
   * Its patterns run on RE2, in linear time. @throws for a schema that does not compile, and
   * for an `$async` one.
   */
  compile(schema: Record<string, unknown>): ValidateFunction;
}

/** The folder holding the JSON Schemas, found from this file whether run from src or dist. */
export function schemasDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i += 1) {
    const candidate = path.join(dir, 'schemas');
    try {
      if (readdirSync(candidate).some((f) => f.endsWith('.schema.json'))) return candidate;
    } catch {
      // not here; go up one level
    }
    dir = path.dirname(dir);
  }
  throw new Error(`schemas/ folder not found above ${__dirname}`);
}

/** Ad-hoc schemas compiled on one Ajv before it is replaced by a fresh one (about 3 ms). */
const ADHOC_PER_AJV = 100;

/** Limits of one caller's schema (see {@link createLinearRegExp} and `compile`). */
export const ADHOC_LIMITS = {
  /** Characters of one pattern. */
  patternLength: 512,
  /** RE2 instructions of one compiled pattern: matching costs about this many steps a character. */
  patternProgram: 512,
  /** RE2 instructions of the whole schema, counted at every place a pattern appears. */
  schemaProgram: 16_384,
  /**
   * Characters of the schema as JSON: what one value can be made to go through (a `$ref` or an
   * `allOf` applied many times) grows with the schema, so the schema is bounded.
   */
  schemaChars: 32 * 1024,
  /**
   * Subschemas of the schema with every `$ref` counted as the schema it names: references that
   * double at each level (`d2: {allOf: [d1, d1]}`) apply one check 2^n times to a value. One
   * with a `pattern` or `patternProperties` counts {@link PATTERN_WEIGHT} (at most 40 of them).
   */
  expandedSubschemas: 20_000,
} as const;

/** What a subschema that matches a pattern counts in the expanded size. */
const PATTERN_WEIGHT = 500;

/** Keywords whose values are data or text, never subschemas. */
const DATA_KEYWORDS = new Set(['enum', 'const', 'default', 'examples', 'description', 'title']);

/**
 * How many subschemas validating against `root` can apply to one value, with every `$ref`
 * counted as the subschema it names (a reference back into its own chain counts once: such a
 * recursion only goes on as deep as the value does). @throws for more than `limit`, and for a
 * `$ref` that is neither a pointer into the schema (`#/…`) nor the `$id` of one of its parts.
 */
function expandedSize(root: unknown, limit: number): number {
  const ids = new Map<string, unknown>();
  const collect = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(collect);
    for (const [key, value] of Object.entries(node)) {
      if (key === '$id' && typeof value === 'string') ids.set(value, node);
      else if (!DATA_KEYWORDS.has(key)) collect(value);
    }
  };
  collect(root);
  const resolve = (ref: string): unknown => {
    if (ids.has(ref)) return ids.get(ref);
    if (!ref.startsWith('#')) throw new Error(`the $ref "${ref}" names nothing in the schema`);
    let node: unknown = root;
    for (const part of ref.slice(1).split('/').slice(1)) {
      const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
      node =
        node !== null && typeof node === 'object'
          ? (node as Record<string, unknown>)[key]
          : undefined;
    }
    if (node === undefined) throw new Error(`the $ref "${ref}" names nothing in the schema`);
    return node;
  };
  const sizes = new Map<unknown, number>();
  const chain = new Set<unknown>();
  const size = (node: unknown): number => {
    if (node === null || typeof node !== 'object') return 0;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    if (chain.has(node)) return 1;
    chain.add(node);
    const record = node as Record<string, unknown>;
    const patterned =
      !Array.isArray(node) &&
      (typeof record.pattern === 'string' || typeof record.patternProperties === 'object');
    let total = Array.isArray(node) ? 0 : patterned ? PATTERN_WEIGHT : 1;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') total += size(resolve(value));
      else if (!DATA_KEYWORDS.has(key)) total += size(value);
      if (total > limit) throw new Error(`the schema expands to more than ${limit} subschemas`);
    }
    chain.delete(node);
    sizes.set(node, total);
    return total;
  };
  return size(root);
}

/**
 * ECMAScript's `\uXXXX` and `\u{X…}` escapes in RE2's spelling (`\x{X…}`); every other
 * character and escape is left as it is, for RE2 to accept or refuse.
 */
function toRe2Syntax(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const c = pattern[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const rest = pattern.slice(i + 1);
    const escape = /^u([0-9A-Fa-f]{4})/.exec(rest) ?? /^u\{([0-9A-Fa-f]{1,6})\}/.exec(rest);
    if (escape) {
      out += `\\x{${escape[1]!}}`;
      i += escape[0].length;
    } else {
      out += c + (pattern[i + 1] ?? '');
      i += 1;
    }
  }
  return out;
}

/**
 * The `pattern` and `patternProperties` engine of callers' schemas: RE2 (the `re2js` package),
 * which matches in time linear in the input. A caller writes both the pattern and the prompt
 * whose answer is checked against it, so a backtracking engine would let one request hold the
 * event loop for hours (`^(a+)+$` against 40 a's and a `!`). RE2's cost is the input's length
 * times the compiled program's size, which the caller also chooses (`[a-z]{1000}` is a thousand
 * instructions), so patterns are held to {@link ADHOC_LIMITS}. RE2 has no lookaround and no
 * backreferences. A pattern it refuses makes the schema fail to compile, and the caller gets a
 * 400. `reset()` starts a schema's budget.
 */
function createLinearRegExp(): { engine: RegExpEngine; reset(): void } {
  let spent = 0;
  const engine = (pattern: string): ReturnType<RegExpEngine> => {
    if (pattern.length > ADHOC_LIMITS.patternLength) {
      throw new Error(`a pattern is longer than ${ADHOC_LIMITS.patternLength} characters`);
    }
    const re = RE2JS.compile(toRe2Syntax(pattern));
    const size = re.programSize();
    if (size > ADHOC_LIMITS.patternProgram) {
      throw new Error(`the pattern "${pattern.slice(0, 40)}" is too complex (${size} RE2 steps)`);
    }
    spent += size;
    if (spent > ADHOC_LIMITS.schemaProgram) {
      throw new Error("the schema's patterns are too complex together");
    }
    return re;
  };
  return {
    engine: Object.assign(engine, { code: 'RE2JS.compile' }),
    reset: () => (spent = 0),
  };
}

/**
 * Builds the registry's Ajv and compiles every schema in `schemas/` once.
 * Ajv runs with `allErrors` (report every bad field at once), `useDefaults` (schema defaults
 * fill missing fields) and no type coercion: input is rejected, never clamped or converted.
 * Strings from the environment and the query string are converted explicitly by
 * {@link coerceStrings} before validation, guided by the schema's declared types.
 */
export function createSchemaRegistry(dir: string = schemasDir()): SchemaRegistry {
  const linearRegExp = createLinearRegExp();
  const newAjv = (adhocSchemas = false): Ajv => {
    const made = new Ajv({
      allErrors: true,
      useDefaults: true,
      strict: true,
      coerceTypes: false,
      ...(adhocSchemas
        ? {
            addUsedSchema: false,
            code: { regExp: linearRegExp.engine },
            // Strict mode would test the schema's own property names against each pattern
            // with a backtracking RegExp while compiling.
            allowMatchingProperties: true,
          }
        : {}),
    });
    addFormats(made);
    return made;
  };
  const ajv = newAjv();
  // Ad-hoc schemas: their Ajv registers no `$id`, forgets each schema once compiled, and is
  // replaced every ADHOC_PER_AJV schemas (what a nested `$id` leaves in it goes with it).
  let adhoc = newAjv(true);
  let adhocCompiled = 0;
  const docs = new Map<string, Record<string, unknown>>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.schema.json'))
    .sort()) {
    const doc = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;
    if (typeof doc.$id !== 'string') throw new Error(`schema ${file} has no $id`);
    docs.set(doc.$id, doc);
    ajv.addSchema(doc);
  }
  const compiled = new Map<string, ValidateFunction>();
  for (const id of docs.keys()) {
    const fn = ajv.getSchema(id);
    if (!fn) throw new Error(`schema ${id} did not compile`);
    compiled.set(id, fn);
  }
  const get = (id: string): ValidateFunction => {
    const fn = compiled.get(id);
    if (!fn) throw new Error(`unknown schema $id "${id}"`);
    return fn;
  };
  return {
    ids: [...docs.keys()],
    get,
    schema(id) {
      const doc = docs.get(id);
      if (!doc) throw new Error(`unknown schema $id "${id}"`);
      return doc;
    },
    check(id, data, location) {
      const fn = get(id);
      return fn(data) ? [] : toFieldErrors(fn.errors ?? [], location);
    },
    compile(schema) {
      if (adhocCompiled >= ADHOC_PER_AJV) {
        adhoc = newAjv(true);
        adhocCompiled = 0;
      }
      adhocCompiled += 1;
      const chars = JSON.stringify(schema).length;
      if (chars > ADHOC_LIMITS.schemaChars) {
        throw new Error(
          `the schema is ${chars} characters as JSON, more than ${ADHOC_LIMITS.schemaChars}`,
        );
      }
      expandedSize(schema, ADHOC_LIMITS.expandedSubschemas);
      linearRegExp.reset();
      let fn: ValidateFunction;
      try {
        fn = adhoc.compile(schema);
      } finally {
        adhoc.removeSchema(schema);
      }
      // An `$async` schema compiles to a validator that answers with a promise, which every
      // caller would take for "valid" (and whose rejection nobody would handle).
      if ((fn as { $async?: unknown }).$async === true) {
        throw new Error('"$async" schemas are not supported');
      }
      return fn;
    },
  };
}

/** Ajv's errors in our shape: one entry per bad field, with a reason a person can act on. */
export function toFieldErrors(errors: readonly ErrorObject[], location: string): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    let pointer = e.instancePath;
    let message = e.message ?? 'is invalid';
    const p = e.params as Record<string, unknown>;
    if (e.keyword === 'additionalProperties' && typeof p.additionalProperty === 'string') {
      pointer = `${pointer}/${escapePointer(p.additionalProperty)}`;
      message = 'is not an allowed property';
    } else if (e.keyword === 'required' && typeof p.missingProperty === 'string') {
      pointer = `${pointer}/${escapePointer(p.missingProperty)}`;
      message = 'is required';
    } else if (e.keyword === 'enum' && Array.isArray(p.allowedValues)) {
      message = `must be one of: ${p.allowedValues.map(String).join(', ')}`;
    }
    const key = `${pointer}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ in: location, path: pointer, message });
  }
  return out;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

type JsonType = 'integer' | 'number' | 'boolean' | 'string' | 'array' | 'object' | 'null';

/**
 * Converts the string values of a flat object (environment, query string) to the types its
 * schema declares for each property. A string that does not parse cleanly is left as is so
 * that validation reports it ("must be integer"), instead of being silently changed.
 * Returns a new object; the input is not modified.
 */
export function coerceStrings(
  values: Readonly<Record<string, unknown>>,
  schema: Record<string, unknown>,
): Record<string, unknown> {
  const props = (schema.properties ?? {}) as Record<string, { type?: JsonType | JsonType[] }>;
  const out: Record<string, unknown> = { ...values };
  for (const [key, value] of Object.entries(values)) {
    const declared = props[key]?.type;
    if (typeof value !== 'string' || declared === undefined) continue;
    const types = Array.isArray(declared) ? declared : [declared];
    const text = value.trim();
    if (types.includes('integer') && /^-?\d+$/.test(text)) out[key] = Number(text);
    else if (types.includes('number') && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text)) {
      out[key] = Number(text);
    } else if (types.includes('boolean') && /^(true|false)$/i.test(text)) {
      out[key] = text.toLowerCase() === 'true';
    }
  }
  return out;
}
