// A deterministic, seeded random source for the simulator and the trainers: ChaCha20 (RFC 8439) as a
// keystream generator keyed by a 32-byte seed. Same seed, same numbers, on every platform; never
// Math.random. Streams for separate purposes are derived with HKDF-SHA256 so they never overlap.
import { chacha20 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, bytesToHex, utf8ToBytes } from '../bytes.ts';
import { expectBytes, describe } from '../errors.ts';

const CHUNK_BYTES = 4096; // 64 ChaCha20 blocks per refill
const ZERO_NONCE = new Uint8Array(12);

export class SeededRandom {
  readonly seed: Uint8Array;
  private readonly words: Uint32Array;
  private pos: number;
  private counter = 0;
  private spareNormal: number | null = null;

  constructor(seed: Uint8Array) {
    this.seed = expectBytes('seed', seed, 32).slice();
    this.words = new Uint32Array(CHUNK_BYTES / 4);
    this.pos = this.words.length;
  }

  private refill(): void {
    // Keystream = ChaCha20(key = seed, nonce = 0^12) encrypting zeros, block counter advancing per chunk.
    const bytes = chacha20(this.seed, ZERO_NONCE, new Uint8Array(CHUNK_BYTES), undefined, this.counter);
    this.counter += CHUNK_BYTES / 64;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < this.words.length; i++) this.words[i] = view.getUint32(4 * i, true);
    this.pos = 0;
  }

  nextUint32(): number {
    if (this.pos >= this.words.length) this.refill();
    return this.words[this.pos++]!;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n), without modulo bias (rejection sampling). */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`"n" expected integer in [1, 2^32], got ${describe(n)}`);
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const w = this.nextUint32();
      if (w < limit) return w % n;
    }
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spareNormal !== null) {
      const s = this.spareNormal;
      this.spareNormal = null;
      return s;
    }
    const u = 1 - this.next(); // (0, 1]
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A 32-byte seed for an independent child stream: HKDF-SHA256(seed, info = "tensorguard/sim/" + label). */
  deriveSeed(label: string): Uint8Array {
    return deriveSeed({ seed: this.seed, label });
  }

  derive(label: string): SeededRandom {
    return new SeededRandom(this.deriveSeed(label));
  }
}

export function deriveSeed(options: { seed: Uint8Array; label: string }): Uint8Array {
  const seed = expectBytes('seed', options.seed, 32);
  if (typeof options.label !== 'string' || options.label.length === 0 || options.label.length > 256)
    throw new TypeError(`"label" expected non-empty string of at most 256 characters, got ${describe(options.label)}`);
  return hkdf(sha256, seed, undefined, utf8ToBytes(`tensorguard/sim/${options.label}`), 32);
}

/** A 32-byte seed from 64 hex digits, or SHA-256 of a shorter label (for readable fixed seeds in tests and scripts). */
export function seedFrom(options: { hex?: string; label?: string }): Uint8Array {
  if (options.hex !== undefined) {
    if (typeof options.hex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(options.hex))
      throw new TypeError(`"seed" expected 64 hex digits, got ${describe(options.hex)}`);
    return hexToBytes(options.hex.toLowerCase());
  }
  if (typeof options.label !== 'string' || options.label.length === 0) throw new TypeError(`"label" expected non-empty string, got ${describe(options.label)}`);
  return sha256(utf8ToBytes(`tensorguard/seed/${options.label}`));
}

export { bytesToHex as seedToHex };
