// Safetensors reader (F32/F16/BF16 in, decoded to f32) and writer (F32 out), validating the whole format.
//
// Format (huggingface/safetensors, README "Format" and safetensors/src/tensor.rs):
//   [8 bytes: N, u64 little-endian][N bytes: UTF-8 JSON header][data buffer]
// The header is a JSON object mapping tensor names to {"dtype", "shape", "data_offsets": [begin, end)} with
// offsets relative to the start of the data buffer, plus an optional "__metadata__" map of string to string.
// It starts with '{' and may be padded at the end with spaces (writers pad N to a multiple of 8).
// Tensors are row-major and little-endian; their byte ranges must cover the data buffer exactly, with no hole
// and no overlap, and the file ends where the buffer ends (tensor.rs `Metadata::validate`,
// `MetadataIncompleteBuffer`).
//
// Stricter than the Rust reader on purpose, because adapters come from other machines: duplicate JSON keys
// (which serde and JSON.parse both resolve silently, last one wins) and unknown fields in a tensor entry are
// refused, so one byte string has one meaning.

import { FormatError, OversizeError, expectBytes, expectInteger, describe } from '../errors.ts';
import { bytesToUtf8, utf8ToBytes } from '../bytes.ts';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Decoded to f32 (F16 and BF16 widen exactly). */
  data: Float32Array;
}

export interface SafetensorsFile {
  /** In data-offset order (the file's layout order). */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** tensor.rs MAX_HEADER_SIZE: headers over 100 MB are refused. */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

const DTYPE_SIZE: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
/** Dtypes the format defines (tensor.rs `Dtype`) that TensorGuard does not read. */
const OTHER_DTYPES = new Set([
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0',
  'I16', 'U16', 'I32', 'U32', 'C64', 'F64', 'I64', 'U64',
]);
const ENTRY_KEYS = new Set(['dtype', 'shape', 'data_offsets']);
const METADATA_KEY = '__metadata__';

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Compares names by their UTF-8 bytes, the order Rust's `String::cmp` gives (tensor.rs `prepare` sorts
 * tensors by name). Differs from JS `<` only for astral characters versus U+E000..U+FFFF.
 */
export function compareTensorNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * Returns the first key that appears twice in one JSON object (any depth) of already-valid JSON text, or
 * undefined. JSON.parse keeps the last duplicate silently (ECMA-262 InternalizeJSONProperty), so two
 * readers could disagree on what a file says; we refuse such files instead.
 */
export function findDuplicateJsonKey(text: string): string | undefined {
  // Stack of containers: a Set of keys seen for an object, null for an array.
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

let f16Table: Float32Array | undefined;
/** All 65,536 binary16 values widened to f32 (IEEE 754-2008 §3.6: 1 sign, 5 exponent, 10 fraction bits). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24; // zero and subnormals: frac * 2^-14 * 2^-10
    else if (exp === 31) t[h] = frac === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1024 + frac) * 2 ** (exp - 25); // (1 + frac/1024) * 2^(exp-15)
  }
  f16Table = t;
  return t;
}

function decode(dtype: SafetensorsDtype, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(bytes);
    else for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (dtype === 'F16') {
    const table = halfTable();
    for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)]!;
  } else {
    // bfloat16 is the top half of a binary32 (same sign and exponent, 7 fraction bits): widen by shifting.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  }
  return out;
}

function elementCount(name: string, shape: number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new FormatError(`safetensors: tensor "${name}" shape [${shape}] overflows`);
  }
  return n;
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, value: unknown): Entry {
  const where = `safetensors: tensor "${name}"`;
  if (!isPlainObject(value)) throw new FormatError(`${where}: entry is not an object`);
  for (const key of Object.keys(value))
    if (!ENTRY_KEYS.has(key)) throw new FormatError(`${where}: unknown field "${key}"`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw new FormatError(`${where}: dtype missing or not a string`);
  if (!(dtype in DTYPE_SIZE)) {
    if (OTHER_DTYPES.has(dtype))
      throw new FormatError(`${where}: unsupported dtype ${dtype} (TensorGuard reads F32, F16 and BF16)`, { dtype });
    throw new FormatError(`${where}: unknown dtype ${JSON.stringify(dtype).slice(0, 40)}`, { dtype });
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new FormatError(`${where}: shape must be an array of non-negative integers, got ${describe(shape)}`);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  )
    throw new FormatError(`${where}: data_offsets must be [begin, end] integers with 0 <= begin <= end`);
  const d = dtype as SafetensorsDtype;
  const [begin, end] = offsets as [number, number];
  const expected = elementCount(name, shape as number[]) * DTYPE_SIZE[d];
  if (end - begin !== expected)
    throw new FormatError(
      `${where}: data_offsets [${begin}, ${end}) hold ${end - begin} bytes but shape [${shape}] of ${d} needs ${expected}`,
    );
  return { name, dtype: d, shape: [...(shape as number[])], begin, end };
}

export function readSafetensors(options: { bytes: Uint8Array; maxHeaderBytes?: number }): SafetensorsFile {
  const bytes = expectBytes('bytes', options.bytes);
  const maxHeaderBytes = expectInteger('maxHeaderBytes', options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES, 2, 2 ** 32);
  if (bytes.length < 8) throw new FormatError(`safetensors: truncated: ${bytes.length} bytes, the header length alone is 8`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // N is a u64; a high word above zero can never fit in a JS byte array.
  const high = view.getUint32(4, true);
  const headerLength = high * 2 ** 32 + view.getUint32(0, true);
  if (high !== 0 || headerLength > bytes.length - 8)
    throw new FormatError(
      `safetensors: header length ${high !== 0 ? `>= 2^32` : headerLength} exceeds the ${bytes.length - 8} bytes after it`,
    );
  if (headerLength > maxHeaderBytes)
    throw new OversizeError(`safetensors: header of ${headerLength} bytes exceeds the ${maxHeaderBytes}-byte limit`);
  const headerBytes = bytes.subarray(8, 8 + headerLength);
  if (headerBytes[0] !== 0x7b) throw new FormatError(`safetensors: header does not start with '{'`);
  let text: string;
  try {
    text = bytesToUtf8(headerBytes);
  } catch (cause) {
    throw new FormatError('safetensors: header is not valid UTF-8', undefined, cause);
  }
  let header: unknown;
  try {
    header = JSON.parse(text); // trailing padding spaces are JSON whitespace
  } catch (cause) {
    throw new FormatError('safetensors: header is not valid JSON', undefined, cause);
  }
  if (!isPlainObject(header)) throw new FormatError('safetensors: header is not a JSON object');
  const duplicate = findDuplicateJsonKey(text);
  if (duplicate !== undefined) throw new FormatError(`safetensors: duplicate key "${duplicate}" in header`);

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(value)) throw new FormatError('safetensors: __metadata__ is not an object');
      for (const [k, v] of Object.entries(value))
        if (typeof v !== 'string') throw new FormatError(`safetensors: __metadata__ value "${k}" is not a string`);
      // fromEntries defines own properties, so a key such as "__proto__" stays data.
      metadata = Object.fromEntries(Object.entries(value)) as Record<string, string>;
    } else entries.push(parseEntry(name, value));
  }

  // Contiguity (tensor.rs Metadata::validate): sorted by offsets, each tensor starts where the last ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of entries) {
    if (e.begin > cursor) throw new FormatError(`safetensors: hole in the data buffer at [${cursor}, ${e.begin}) before "${e.name}"`);
    if (e.begin < cursor) throw new FormatError(`safetensors: tensor "${e.name}" overlaps the previous tensor at byte ${e.begin}`);
    cursor = e.end;
  }
  const dataLength = bytes.length - 8 - headerLength;
  if (cursor > dataLength)
    throw new FormatError(`safetensors: truncated: tensors need ${cursor} data bytes, file has ${dataLength}`);
  if (cursor < dataLength) throw new FormatError(`safetensors: ${dataLength - cursor} trailing bytes after the last tensor`);

  const dataStart = 8 + headerLength;
  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, {
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      data: decode(e.dtype, raw, (e.end - e.begin) / DTYPE_SIZE[e.dtype]),
    });
  }
  return { tensors, metadata };
}

/**
 * Writes an F32 safetensors file laid out as the reference writer does for one dtype (tensor.rs `prepare`):
 * tensors sorted by name, contiguous from offset 0; compact JSON header with `__metadata__` first (when
 * given) and each entry's fields in the order dtype, shape, data_offsets; header padded with spaces so N
 * is a multiple of 8, which keeps the data buffer 8-byte aligned.
 */
export function writeSafetensors(options: {
  tensors: Array<{ name: string; shape: number[]; data: Float32Array }>;
  metadata?: Record<string, string>;
}): Uint8Array {
  const { tensors, metadata } = options;
  if (!Array.isArray(tensors)) throw new TypeError(`"tensors" expected array, got ${describe(tensors)}`);
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new TypeError(`"metadata" expected object, got ${describe(metadata)}`);
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new TypeError(`"metadata.${k}" expected string, got ${describe(v)}`);
  }
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t?.name !== 'string' || t.name === '' || t.name === METADATA_KEY)
      throw new TypeError(`"tensors[].name" expected non-empty tensor name, got ${describe(t?.name)}`);
    if (seen.has(t.name)) throw new RangeError(`"tensors" expected unique names, got "${t.name}" twice`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new TypeError(`"tensors.${t.name}.shape" expected array of non-negative integers, got ${describe(t.shape)}`);
    if (!(t.data instanceof Float32Array))
      throw new TypeError(`"tensors.${t.name}.data" expected Float32Array, got ${describe(t.data)}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count)
      throw new RangeError(`"tensors.${t.name}.data" expected ${count} elements for shape [${t.shape}], got ${t.data.length}`);
  }
  const sorted = [...tensors].sort((a, b) => compareTensorNames(a.name, b.name));

  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const t of sorted) {
    const end = offset + 4 * t.data.length;
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"F32","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = utf8ToBytes(`{${parts.join(',')}}`);
  const headerLength = json.length + ((8 - (json.length % 8)) % 8);

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength, true); // u64 LE; the high word stays 0
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let pos = 8 + headerLength;
  for (const t of sorted) {
    if (LITTLE_ENDIAN_HOST) out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    else for (let i = 0; i < t.data.length; i++) view.setFloat32(pos + 4 * i, t.data[i]!, true);
    pos += 4 * t.data.length;
  }
  return out;
}
