// fast-check arbitraries for fuzzing parsers: random bytes, and valid inputs mutated the ways real
// corruption and attacks mutate them (bit flips, truncation, splices, length fields set to extremes).
import fc from 'fast-check';
import { TensorGuardError } from '../../core/errors.ts';

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'append'; bytes: Uint8Array };

/** Positions are fractions of the input length, so one mutation list applies to any input. */
const position = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const extremeU32 = fc.constantFrom(0, 1, 0x7f, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff);

const mutation: fc.Arbitrary<{ kind: Mutation['kind']; p: number; n: number; bytes: Uint8Array; value: number }> = fc.record({
  kind: fc.constantFrom<Mutation['kind']>('flip', 'set', 'truncate', 'delete', 'insert', 'u32', 'append'),
  p: position,
  n: fc.integer({ min: 0, max: 64 }),
  bytes: fc.uint8Array({ maxLength: 32 }),
  value: fc.oneof(extremeU32, fc.integer({ min: 0, max: 0xffffffff })),
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function applyMutation(input: Uint8Array, m: { kind: Mutation['kind']; p: number; n: number; bytes: Uint8Array; value: number }): Uint8Array {
  const at = Math.floor(m.p * input.length);
  switch (m.kind) {
    case 'flip': {
      if (input.length === 0) return input;
      const out = input.slice();
      out[at] = out[at]! ^ (1 << (m.n % 8));
      return out;
    }
    case 'set': {
      if (input.length === 0) return input;
      const out = input.slice();
      out[at] = m.value & 0xff;
      return out;
    }
    case 'truncate':
      return input.slice(0, at);
    case 'delete':
      return concat(input.subarray(0, at), input.subarray(Math.min(input.length, at + 1 + m.n)));
    case 'insert':
      return concat(input.subarray(0, at), m.bytes, input.subarray(at));
    case 'u32': {
      if (input.length < 4) return input;
      const out = input.slice();
      new DataView(out.buffer).setUint32(Math.min(at, out.length - 4), m.value >>> 0, true);
      return out;
    }
    case 'append':
      return concat(input, m.bytes);
  }
}

/** A valid input (one of `seeds`) with 1-4 mutations applied, or random bytes, or a seed unchanged. */
export function fuzzBytes(seeds: readonly Uint8Array[], maxRandomLength = 2048): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([seed, ms]) => ms.reduce(applyMutation, seed)) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: maxRandomLength }) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
  );
}

/** A JSON text that is a seed's text mutated at the character level, or random JSON, or random text. */
export function fuzzText(seeds: readonly string[]): fc.Arbitrary<string> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return fc.oneof(
    { weight: 5, arbitrary: fuzzBytes(seeds.map((s) => encoder.encode(s)), 256).map((b) => decoder.decode(b)) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  );
}

/** The errors a parser may throw on bad input: typed domain errors and argument errors, nothing else. */
export function isTypedError(error: unknown): boolean {
  return error instanceof TensorGuardError || error instanceof TypeError || error instanceof RangeError;
}

/** Runs a parser on one input: returns normally, or throws only a typed error, within `maxMs`. */
export async function expectTypedOutcome(run: () => unknown, what: string, maxMs = 2000): Promise<void> {
  const start = performance.now();
  try {
    await run();
  } catch (error) {
    if (!isTypedError(error)) {
      const e = error as Error;
      throw new Error(`${what}: untyped ${e?.constructor?.name ?? typeof error}: ${e?.message ?? String(error)}`, { cause: error });
    }
  }
  const ms = performance.now() - start;
  if (ms > maxMs) throw new Error(`${what}: took ${Math.round(ms)} ms (limit ${maxMs})`);
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path (list of keys) inside a JSON value, the root included. */
function jsonPaths(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...jsonPaths(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...jsonPaths(v, [...prefix, k]));
  return out;
}

const jsonEdit = fc.record({
  op: fc.constantFrom('replace', 'delete', 'add', 'retype'),
  at: position,
  key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'format', 'token', 'roles')),
  value: fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(null, '', 0, -1, 1e308, -0, 2 ** 53, 'A'.repeat(70_000), [], {}, 'not base64 !!', '0'.repeat(64)),
  ),
});

function applyJsonEdit(doc: Json, edit: { op: string; at: number; key: string; value: unknown }): Json {
  const copy = structuredClone(doc);
  const paths = jsonPaths(copy);
  const path = paths[Math.floor(edit.at * paths.length)]!;
  if (path.length === 0) return edit.op === 'replace' ? (edit.value as Json) : copy;
  let parent: any = copy;
  for (const k of path.slice(0, -1)) parent = parent[k];
  const last = path[path.length - 1]!;
  switch (edit.op) {
    case 'replace':
      parent[last] = edit.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
      break;
    case 'add':
      if (parent[last] !== null && typeof parent[last] === 'object' && !Array.isArray(parent[last])) Object.defineProperty(parent[last], edit.key, { value: edit.value, enumerable: true, configurable: true, writable: true });
      else if (Array.isArray(parent[last])) parent[last].push(edit.value);
      break;
    case 'retype': {
      const v = parent[last];
      parent[last] = typeof v === 'string' ? Number(v) || [v] : typeof v === 'number' ? String(v) : Array.isArray(v) ? v[0] ?? null : v === null ? {} : typeof v === 'object' ? [v] : !v;
      break;
    }
  }
  return copy;
}

/** A JSON value: one of the seeds with 1-3 structural edits (replace, delete, add a key, change a type). */
export function fuzzJsonValue(seeds: readonly unknown[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...seeds), fc.array(jsonEdit, { minLength: 1, maxLength: 3 })).map(([seed, edits]) => edits.reduce((d, e) => applyJsonEdit(d, e), seed as Json)) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
  );
}

/** JSON text of fuzzJsonValue, plus byte-level mutations of the seeds' text (fuzzText). */
export function fuzzJsonText(seeds: readonly unknown[]): fc.Arbitrary<string> {
  return fc.oneof({ weight: 3, arbitrary: fuzzJsonValue(seeds).map((v) => JSON.stringify(v) ?? 'null') }, { weight: 1, arbitrary: fuzzText(seeds.map((s) => JSON.stringify(s))) });
}
