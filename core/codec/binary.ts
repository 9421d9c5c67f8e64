// Canonical binary encoding for TensorGuard records: little-endian fixed-width integers,
// length-prefixed byte strings and UTF-8 strings, every variable field bounded.
// One encoding per value (no optional padding, no alternative forms) so a record's bytes — and
// therefore its fingerprint and signature — are unique. The reader refuses anything non-canonical,
// anything past a bound and any trailing byte.

import { FormatError, OversizeError, UnsupportedVersionError } from '../errors.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export const RECORD_MAGIC = [0x54, 0x47] as const; // "TG"

export class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  header(type: number, version: number): this {
    return this.u8(RECORD_MAGIC[0]).u8(RECORD_MAGIC[1]).u8(type).u8(version);
  }
  u8(v: number): this {
    checkUint('u8', v, 0xff);
    this.ensure(1);
    this.buf[this.len++] = v;
    return this;
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  u16(v: number): this {
    checkUint('u16', v, 0xffff);
    this.ensure(2);
    this.view.setUint16(this.len, v, true);
    this.len += 2;
    return this;
  }
  u32(v: number): this {
    checkUint('u32', v, 0xffffffff);
    this.ensure(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
    return this;
  }
  /** Unsigned integer up to 2^53-1 stored in 8 bytes (timestamps, counts, sizes). */
  u64(v: number): this {
    checkUint('u64', v, Number.MAX_SAFE_INTEGER);
    this.ensure(8);
    this.view.setBigUint64(this.len, BigInt(v), true);
    this.len += 8;
    return this;
  }
  f64(v: number): this {
    if (!Number.isFinite(v)) throw new RangeError(`"f64" expected finite number, got ${v}`);
    this.ensure(8);
    this.view.setFloat64(this.len, Object.is(v, -0) ? 0 : v, true);
    this.len += 8;
    return this;
  }
  /** Exactly `length` bytes, no prefix. */
  fixed(bytes: Uint8Array, length: number): this {
    if (!(bytes instanceof Uint8Array) || bytes.length !== length)
      throw new RangeError(`"fixed" expected Uint8Array(${length}), got ${bytes instanceof Uint8Array ? `Uint8Array(${bytes.length})` : typeof bytes}`);
    this.ensure(length);
    this.buf.set(bytes, this.len);
    this.len += length;
    return this;
  }
  /** u32 length prefix then the bytes; `max` is the bound the reader will enforce. */
  bytes(bytes: Uint8Array, max: number): this {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`"bytes" expected Uint8Array, got ${typeof bytes}`);
    if (bytes.length > max) throw new OversizeError(`field of ${bytes.length} bytes exceeds its bound of ${max}`);
    this.u32(bytes.length);
    this.ensure(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
    return this;
  }
  /** UTF-8 string with a u32 byte-length prefix, at most `max` bytes. */
  str(s: string, max: number): this {
    if (typeof s !== 'string') throw new TypeError(`"str" expected string, got ${typeof s}`);
    return this.bytes(encoder.encode(s), max);
  }
  /** u32 count then each item; `max` bounds the count. */
  list<T>(items: readonly T[], max: number, write: (w: this, item: T) => void): this {
    if (items.length > max) throw new OversizeError(`list of ${items.length} items exceeds its bound of ${max}`);
    this.u32(items.length);
    for (const item of items) write(this, item);
    return this;
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function checkUint(name: string, v: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw new RangeError(`"${name}" expected integer in [0, ${max}], got ${String(v)}`);
}

export class ByteReader {
  private off = 0;
  private readonly view: DataView;
  constructor(private readonly data: Uint8Array, private readonly what = 'record') {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private need(n: number, field: string): void {
    if (this.off + n > this.data.length)
      throw new FormatError(`${this.what}: truncated at ${field} (need ${n} bytes at offset ${this.off}, have ${this.data.length - this.off})`);
  }

  /** Checks magic, type and version; returns the version. */
  header(type: number, versions: readonly number[]): number {
    this.need(4, 'header');
    if (this.data[0] !== RECORD_MAGIC[0] || this.data[1] !== RECORD_MAGIC[1])
      throw new FormatError(`${this.what}: not a TensorGuard record (bad magic)`);
    if (this.data[2] !== type)
      throw new FormatError(`${this.what}: record type ${this.data[2]} where ${type} was expected`);
    const version = this.data[3]!;
    if (!versions.includes(version))
      throw new UnsupportedVersionError(`${this.what}: version ${version} is not supported (known: ${versions.join(', ')})`);
    this.off = 4;
    return version;
  }
  u8(field = 'u8'): number {
    this.need(1, field);
    return this.data[this.off++]!;
  }
  bool(field = 'bool'): boolean {
    const v = this.u8(field);
    if (v > 1) throw new FormatError(`${this.what}: ${field} must be 0 or 1, got ${v}`);
    return v === 1;
  }
  u16(field = 'u16'): number {
    this.need(2, field);
    const v = this.view.getUint16(this.off, true);
    this.off += 2;
    return v;
  }
  u32(field = 'u32'): number {
    this.need(4, field);
    const v = this.view.getUint32(this.off, true);
    this.off += 4;
    return v;
  }
  u64(field = 'u64'): number {
    this.need(8, field);
    const v = this.view.getBigUint64(this.off, true);
    this.off += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`${this.what}: ${field} exceeds 2^53-1`);
    return Number(v);
  }
  f64(field = 'f64'): number {
    this.need(8, field);
    const v = this.view.getFloat64(this.off, true);
    this.off += 8;
    if (!Number.isFinite(v) || Object.is(v, -0)) throw new FormatError(`${this.what}: ${field} is not a canonical finite number`);
    return v;
  }
  fixed(length: number, field = 'fixed'): Uint8Array {
    this.need(length, field);
    const out = this.data.slice(this.off, this.off + length);
    this.off += length;
    return out;
  }
  bytes(max: number, field = 'bytes'): Uint8Array {
    const len = this.u32(`${field} length`);
    if (len > max) throw new OversizeError(`${this.what}: ${field} of ${len} bytes exceeds its bound of ${max}`);
    return this.fixed(len, field);
  }
  str(max: number, field = 'string'): string {
    const raw = this.bytes(max, field);
    try {
      return decoder.decode(raw);
    } catch {
      throw new FormatError(`${this.what}: ${field} is not valid UTF-8`);
    }
  }
  list<T>(max: number, read: (r: this, index: number) => T, field = 'list'): T[] {
    const n = this.u32(`${field} count`);
    if (n > max) throw new OversizeError(`${this.what}: ${field} has ${n} items, bound is ${max}`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(read(this, i));
    return out;
  }
  get remaining(): number {
    return this.data.length - this.off;
  }
  /** Refuses trailing bytes. */
  end(): void {
    if (this.off !== this.data.length)
      throw new FormatError(`${this.what}: ${this.data.length - this.off} trailing bytes`);
  }
}
