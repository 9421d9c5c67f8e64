// The sync server's aggregation: adds serialized BFV ciphertexts as raw (a + b) mod q, without SEAL or any key.
//
// A ciphertext of our parameter sets serializes (SEAL 4.1, ComprModeType.none) as a 113-byte header
// that is identical for every ciphertext of a round, then 2 x 4096 u64 coefficients [poly][prime][coeff].
// SEAL's Evaluator.add on such ciphertexts is add_poly_coeffmod on each coefficient and keeps the header,
// so adding the coefficient arrays mod q gives byte-for-byte what Evaluator.add + saveArray(none) gives
// (aggregate.test.ts checks this on random ciphertexts and on long chains of adds).
// Every input is untrusted: each header must equal expectedHeader() exactly and every coefficient must be
// < q, or the input is refused with a CiphertextError naming the ciphertext and the fault. A coefficient
// >= q would make the sum wrong without SEAL ever noticing (the server would hand the officer garbage).
//
// Data flow: block bytes -> header compare (JS, 113 B) -> coefficients copied to an aligned, cache-hot
// scratch region in WASM memory (they start at the unaligned offset 113) -> `add` (aggregate.wat:
// i64x2.add, conditional subtract of q, and an "every addend coefficient < q" test in the same pass)
// writes old sum + addend into a spare region, which replaces the old sum only if the test passed.
// A pure-JS kernel with the same memory layout stands in where WebAssembly SIMD is not available.

import { CiphertextError, describe, expectBytes, expectInteger } from '../errors.ts';
import { fromBase64 } from '../bytes.ts';
import { AGGREGATE_WASM_BASE64 } from './aggregate-wasm.ts';
import { PARAM_SET_ID, getParamSet, type HeParamSet } from './params.ts';

export type AggregationKernelName = 'wasm-simd' | 'js';

const DEFAULT_PARAM_SET = (): HeParamSet => getParamSet({ id: PARAM_SET_ID });

// SEAL's serialization constants (native/src/seal/serialization.h, SEAL 4.1).
const SEAL_MAGIC = 0xa15e;
const SEAL_HEADER_SIZE = 0x10;
const SEAL_VERSION_MAJOR = 4;
const SEAL_VERSION_MINOR = 1;
const COMPR_MODE_NONE = 0;

/** Header fields by offset, for error messages that say what is wrong. */
const HEADER_FIELDS: ReadonlyArray<readonly [end: number, name: string]> = [
  [2, 'SEAL magic'],
  [3, 'SEAL header size'],
  [5, 'SEAL version'],
  [6, 'compression mode'],
  [8, 'reserved'],
  [16, 'serialized size'],
  [48, 'parms id'],
  [49, 'NTT-form flag'],
  [57, 'polynomial count'],
  [65, 'poly modulus degree'],
  [73, 'coeff modulus count'],
  [81, 'scale'],
  [89, 'correction factor'],
  [105, 'coefficient array header'],
  [113, 'coefficient count'],
];

function writeSealHeader(view: DataView, offset: number, size: number): void {
  view.setUint16(offset, SEAL_MAGIC, true);
  view.setUint8(offset + 2, SEAL_HEADER_SIZE);
  view.setUint8(offset + 3, SEAL_VERSION_MAJOR);
  view.setUint8(offset + 4, SEAL_VERSION_MINOR);
  view.setUint8(offset + 5, COMPR_MODE_NONE);
  view.setUint16(offset + 6, 0, true);
  view.setBigUint64(offset + 8, BigInt(size), true);
}

/**
 * The 113 bytes every ciphertext of a round starts with, from SEAL 4.1's Ciphertext::save_members:
 * SEAL header (magic, size 16, version 4.1, compression none, total size), parms id (4 x u64),
 * is_ntt_form (u8, false for BFV), size (u64, 2 polynomials), poly modulus degree (u64),
 * coeff modulus count (u64), scale (f64, 1.0 for BFV), correction factor (u64, 1), then the
 * coefficient DynArray's own SEAL header and element count (u64).
 */
export function expectedHeader(options: { parmsId: Uint8Array; paramSet?: HeParamSet }): Uint8Array {
  const parmsId = expectBytes('parmsId', options?.parmsId, 32);
  const paramSet = options.paramSet ?? DEFAULT_PARAM_SET();
  const n = paramSet.polyModulusDegree;
  const primes = paramSet.coeffModulusBits.length;
  const coefficientCount = 2 * n * primes;
  const header = new Uint8Array(paramSet.headerBytes);
  const view = new DataView(header.buffer);
  writeSealHeader(view, 0, paramSet.ciphertextBytes);
  header.set(parmsId, 16);
  view.setUint8(48, 0);
  view.setBigUint64(49, 2n, true);
  view.setBigUint64(57, BigInt(n), true);
  view.setBigUint64(65, BigInt(primes), true);
  view.setFloat64(73, 1.0, true);
  view.setBigUint64(81, 1n, true);
  writeSealHeader(view, 89, 16 + 8 + coefficientCount * 8);
  view.setBigUint64(105, BigInt(coefficientCount), true);
  return header;
}

// ---- kernels: the same three operations over one linear memory, in WASM SIMD or plain JS ----

interface AddKernel {
  readonly name: AggregationKernelName;
  /** Makes the memory at least `bytes` long; returns a fresh view of it. */
  ensure(bytes: number): Uint8Array;
  /** dst = (a + b) mod q for a < q; nonzero if some b >= q (dst then holds garbage). dst may be a. */
  add(dst: number, a: number, b: number, len: number): number;
  /** acc = (acc - src) mod q for inputs < q: the exact undo of add. */
  sub(acc: number, src: number, len: number): void;
  /** Nonzero if some src coefficient is >= q. */
  check(src: number, len: number): number;
}

interface WasmExports {
  memory: WebAssembly.Memory;
  add(dst: number, a: number, b: number, len: number, q: bigint): number;
  sub(acc: number, src: number, len: number, q: bigint): void;
  check(src: number, len: number, q: bigint): number;
}

const WASM_PAGE = 65536;
let wasmModule: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly or its SIMD proposal is missing (also core/he/encrypt-kernel.ts). */
export function simdModule(): WebAssembly.Module | null {
  if (wasmModule === undefined) {
    const bytes = fromBase64(AGGREGATE_WASM_BASE64, 'AGGREGATE_WASM_BASE64') as Uint8Array<ArrayBuffer>;
    // Synchronous compile: the module is ~0.5 KB, far below the main-thread limit browsers impose.
    wasmModule = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return wasmModule;
}

/** Which kernel aggregation uses by default here: 'wasm-simd' unless WebAssembly SIMD is unavailable. */
export function aggregationKernel(): AggregationKernelName {
  return simdModule() === null ? 'js' : 'wasm-simd';
}

function createWasmKernel(q: bigint): AddKernel {
  const module = simdModule();
  if (module === null) throw new TypeError(`"kernel" expected an available kernel, got "wasm-simd" (no WebAssembly SIMD here)`);
  const exports = new WebAssembly.Instance(module, {}).exports as unknown as WasmExports;
  const memory = exports.memory;
  return {
    name: 'wasm-simd',
    ensure(bytes: number): Uint8Array {
      const missing = bytes - memory.buffer.byteLength;
      if (missing > 0) {
        try {
          memory.grow(Math.ceil(missing / WASM_PAGE));
        } catch (err) {
          throw new RangeError(`"ciphertextCount" needs ${bytes} bytes of WebAssembly memory, which this runtime refused`, { cause: err });
        }
      }
      return new Uint8Array(memory.buffer);
    },
    add: (dst, a, b, len) => exports.add(dst, a, b, len, q),
    sub: (acc, src, len) => exports.sub(acc, src, len, q),
    check: (src, len) => exports.check(src, len, q),
  };
}

/**
 * The fallback: u64 coefficients handled as 32-bit halves in doubles (q < 2^60, so the high half of a
 * valid value is < 2^28 and sums never lose precision). Assumes a little-endian host, as WASM does.
 */
function createJsKernel(q: bigint): AddKernel {
  const qLo = Number(q & 0xffffffffn);
  const qHi = Number(q >> 32n);
  let buffer = new ArrayBuffer(2 * WASM_PAGE);
  let words = new Uint32Array(buffer);
  return {
    name: 'js',
    ensure(bytes: number): Uint8Array {
      if (bytes > buffer.byteLength) {
        const next = new ArrayBuffer(Math.ceil(bytes / WASM_PAGE) * WASM_PAGE);
        new Uint8Array(next).set(new Uint8Array(buffer));
        buffer = next;
        words = new Uint32Array(buffer);
      }
      return new Uint8Array(buffer);
    },
    add(dst, a, b, len) {
      const u = words;
      let bad = 0;
      for (let d = dst >>> 2, x = a >>> 2, y = b >>> 2, end = (dst + len) >>> 2; d < end; d += 2, x += 2, y += 2) {
        const aLo = u[x]!;
        const aHi = u[x + 1]!;
        const bLo = u[y]!;
        const bHi = u[y + 1]!;
        if (bHi > qHi || (bHi === qHi && bLo >= qLo)) bad = 1;
        let lo = aLo + bLo;
        let hi = aHi + bHi;
        if (lo >= 4294967296) {
          lo -= 4294967296;
          hi += 1;
        }
        if (hi > qHi || (hi === qHi && lo >= qLo)) {
          lo -= qLo;
          hi -= qHi;
          if (lo < 0) {
            lo += 4294967296;
            hi -= 1;
          }
        }
        u[d] = lo;
        u[d + 1] = hi;
      }
      return bad;
    },
    sub(acc, src, len) {
      const u = words;
      for (let a = acc >>> 2, s = src >>> 2, end = (acc + len) >>> 2; a < end; a += 2, s += 2) {
        let lo = u[a]! - u[s]!;
        let hi = u[a + 1]! - u[s + 1]!;
        if (lo < 0) {
          lo += 4294967296;
          hi -= 1;
        }
        if (hi < 0) {
          lo += qLo;
          hi += qHi;
          if (lo >= 4294967296) {
            lo -= 4294967296;
            hi += 1;
          }
        }
        u[a] = lo;
        u[a + 1] = hi;
      }
    },
    check(src, len) {
      const u = words;
      for (let s = src >>> 2, end = (src + len) >>> 2; s < end; s += 2) {
        const hi = u[s + 1]!;
        if (hi > qHi || (hi === qHi && u[s]! >= qLo)) return 1;
      }
      return 0;
    },
  };
}

function createKernel(name: AggregationKernelName | undefined, paramSet: HeParamSet): AddKernel {
  const chosen = name ?? aggregationKernel();
  if (chosen === 'wasm-simd') return createWasmKernel(paramSet.coeffModulus);
  if (chosen === 'js') return createJsKernel(paramSet.coeffModulus);
  throw new TypeError(`"kernel" expected 'wasm-simd' | 'js', got ${describe(chosen)}`);
}

/** Stateless calls share one kernel per (kernel, parameter set): two scratch regions, never grown. */
const sharedKernels = new Map<string, { kernel: AddKernel; heap: Uint8Array }>();

function sharedKernel(name: AggregationKernelName | undefined, paramSet: HeParamSet): { kernel: AddKernel; heap: Uint8Array } {
  const key = `${name ?? aggregationKernel()}/${paramSet.id}`;
  let entry = sharedKernels.get(key);
  if (entry === undefined) {
    const kernel = createKernel(name, paramSet);
    entry = { kernel, heap: kernel.ensure(2 * dataBytes(paramSet)) };
    sharedKernels.set(key, entry);
  }
  return entry;
}

// ---- validation ----

/** Coefficient bytes of one ciphertext; also the size of a WASM memory region (65,536: aligned regions). */
function dataBytes(paramSet: HeParamSet): number {
  return paramSet.ciphertextBytes - paramSet.headerBytes;
}

function blockCount(bytes: Uint8Array, paramSet: HeParamSet, what: string): number {
  const size = paramSet.ciphertextBytes;
  if (bytes.length === 0 || bytes.length % size !== 0)
    throw new CiphertextError(`${what} of ${bytes.length} bytes is not a positive multiple of the ${size}-byte ciphertext size`, {
      length: bytes.length,
    });
  return bytes.length / size;
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

function checkHeader(bytes: Uint8Array, index: number, count: number, expected: Uint8Array, what: string, paramSet: HeParamSet): void {
  const offset = index * paramSet.ciphertextBytes;
  for (let i = 0; i < expected.length; i++) {
    if (bytes[offset + i] !== expected[i]) {
      const field = HEADER_FIELDS.find(([end]) => i < end)?.[1] ?? 'header';
      throw new CiphertextError(
        `${what} ciphertext ${index} of ${count}: header byte ${i} (${field}) is ${hex(bytes[offset + i]!)}, expected ${hex(expected[i]!)}` +
          (field === 'parms id' ? ' (encrypted under another key or parameter set)' : ''),
        { index, byte: i, field },
      );
    }
  }
}

/** The failure path only: find the first coefficient >= q to name it. */
function coefficientError(bytes: Uint8Array, index: number, count: number, what: string, paramSet: HeParamSet): InstanceType<typeof CiphertextError> {
  const offset = index * paramSet.ciphertextBytes + paramSet.headerBytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, dataBytes(paramSet));
  const n = paramSet.polyModulusDegree;
  const q = paramSet.coeffModulus;
  for (let c = 0; c < view.byteLength / 8; c++) {
    const value = view.getBigUint64(c * 8, true);
    if (value >= q)
      return new CiphertextError(
        `${what} ciphertext ${index} of ${count}: coefficient ${c} (polynomial ${Math.floor(c / n)}, index ${c % n}) is ${value}, not < q = ${q}`,
        { index, coefficient: c },
      );
  }
  return new CiphertextError(`${what} ciphertext ${index} of ${count}: a coefficient is not < q`, { index });
}

function resolveParamSet(paramSet: HeParamSet | undefined): HeParamSet {
  const set = paramSet ?? DEFAULT_PARAM_SET();
  // The WASM add loop takes 64 bytes per iteration (aggregate.wat).
  if (dataBytes(set) % 64 !== 0) throw new RangeError(`"paramSet" expected coefficient data in multiples of 64 bytes, got ${dataBytes(set)}`);
  return set;
}

/**
 * Checks a concatenation of ciphertexts: length a positive multiple of ciphertextBytes, every header
 * equal to expectedHeader({ parmsId }), every coefficient < q. Returns the ciphertext count.
 */
export function validateCiphertextBlock(options: {
  bytes: Uint8Array;
  parmsId: Uint8Array;
  paramSet?: HeParamSet;
  kernel?: AggregationKernelName;
}): number {
  const bytes = expectBytes('bytes', options?.bytes);
  const paramSet = resolveParamSet(options.paramSet);
  const expected = expectedHeader({ parmsId: options.parmsId, paramSet });
  const count = blockCount(bytes, paramSet, 'ciphertext block');
  const { kernel, heap } = sharedKernel(options.kernel, paramSet);
  const size = paramSet.ciphertextBytes;
  const data = dataBytes(paramSet);
  for (let c = 0; c < count; c++) {
    checkHeader(bytes, c, count, expected, 'block', paramSet);
    const start = c * size + paramSet.headerBytes;
    heap.set(bytes.subarray(start, start + data), 0);
    if (kernel.check(0, data) !== 0) throw coefficientError(bytes, c, count, 'block', paramSet);
  }
  return count;
}

/**
 * accumulator + addend, ciphertext by ciphertext, as a fresh block with the same layout. A null
 * accumulator returns a validated copy of the addend (the first contribution of a round).
 */
export function sumCiphertextBlocks(options: {
  accumulator: Uint8Array | null;
  addend: Uint8Array;
  parmsId: Uint8Array;
  paramSet?: HeParamSet;
  kernel?: AggregationKernelName;
}): Uint8Array {
  const addend = expectBytes('addend', options?.addend);
  const paramSet = resolveParamSet(options.paramSet);
  if (options.accumulator === null) {
    validateCiphertextBlock({ bytes: addend, parmsId: options.parmsId, paramSet, kernel: options.kernel });
    return addend.slice();
  }
  const accumulator = expectBytes('accumulator', options.accumulator);
  const expected = expectedHeader({ parmsId: options.parmsId, paramSet });
  const count = blockCount(addend, paramSet, 'addend block');
  if (accumulator.length !== addend.length)
    throw new CiphertextError(`accumulator holds ${accumulator.length} bytes but the addend ${addend.length}: different ciphertext counts`, {
      accumulatorLength: accumulator.length,
      addendLength: addend.length,
    });
  const { kernel, heap } = sharedKernel(options.kernel, paramSet);
  const size = paramSet.ciphertextBytes;
  const data = dataBytes(paramSet);
  const region = dataBytes(paramSet);
  const out = new Uint8Array(addend.length);
  for (let c = 0; c < count; c++) {
    checkHeader(accumulator, c, count, expected, 'accumulator', paramSet);
    checkHeader(addend, c, count, expected, 'addend', paramSet);
    const start = c * size + paramSet.headerBytes;
    heap.set(accumulator.subarray(start, start + data), 0);
    heap.set(addend.subarray(start, start + data), region);
    // The accumulator is untrusted here too (it comes back from storage), so it gets its own check.
    if (kernel.check(0, data) !== 0) throw coefficientError(accumulator, c, count, 'accumulator', paramSet);
    if (kernel.add(0, 0, region, data) !== 0) throw coefficientError(addend, c, count, 'addend', paramSet);
    out.set(expected, c * size);
    out.set(heap.subarray(0, data), start);
  }
  return out;
}

/**
 * A running sum of ciphertext blocks kept in WASM memory. Per ciphertext, an add copies the addend's
 * coefficients once into a cache-hot scratch region and makes one pass that both tests them (< q) and
 * writes old sum + addend into a spare region; on success the spare becomes the sum and the old sum
 * the next spare (no copy back). A block is added whole or not at all: if its ciphertext i is refused,
 * ciphertexts 0..i-1 are subtracted back out (exact, since they were valid).
 */
export class CiphertextAccumulator {
  readonly #paramSet: HeParamSet;
  readonly #expected: Uint8Array;
  readonly #ciphertextCount: number;
  readonly #kernel: AddKernel;
  readonly #heap: Uint8Array;
  readonly #region: number;
  /** Where ciphertext i's running sum lives (a byte offset into the heap). */
  readonly #sums: Int32Array;
  #spare: number;
  #count = 0;

  constructor(options: { parmsId: Uint8Array; ciphertextCount: number; paramSet?: HeParamSet; kernel?: AggregationKernelName }) {
    this.#paramSet = resolveParamSet(options?.paramSet);
    this.#expected = expectedHeader({ parmsId: options.parmsId, paramSet: this.#paramSet });
    this.#region = dataBytes(this.#paramSet);
    const maxCount = Math.floor(2 ** 31 / this.#region) - 2; // offsets stay in Int32 range; 2 GiB of sums
    this.#ciphertextCount = expectInteger('ciphertextCount', options.ciphertextCount, 1, maxCount);
    this.#kernel = createKernel(options.kernel, this.#paramSet);
    // Region 0 is scratch, regions 1..count hold the sums, region count+1 is the spare.
    // Fresh memory is zero: the sum of nothing.
    this.#heap = this.#kernel.ensure((this.#ciphertextCount + 2) * this.#region);
    this.#sums = new Int32Array(this.#ciphertextCount);
    for (let c = 0; c < this.#ciphertextCount; c++) this.#sums[c] = (c + 1) * this.#region;
    this.#spare = (this.#ciphertextCount + 1) * this.#region;
  }

  /** How many blocks have been added. */
  get count(): number {
    return this.#count;
  }

  /** Which kernel this accumulator runs on. */
  get kernel(): AggregationKernelName {
    return this.#kernel.name;
  }

  add(options: { block: Uint8Array }): void {
    const block = expectBytes('block', options?.block);
    const paramSet = this.#paramSet;
    const count = blockCount(block, paramSet, 'block');
    if (count !== this.#ciphertextCount)
      throw new CiphertextError(`block holds ${count} ciphertexts, this aggregate ${this.#ciphertextCount}`, {
        expected: this.#ciphertextCount,
        got: count,
      });
    for (let c = 0; c < count; c++) checkHeader(block, c, count, this.#expected, 'block', paramSet);
    const size = paramSet.ciphertextBytes;
    const data = dataBytes(paramSet);
    const kernel = this.#kernel;
    const heap = this.#heap;
    const sums = this.#sums;
    for (let c = 0; c < count; c++) {
      const start = c * size + paramSet.headerBytes;
      heap.set(block.subarray(start, start + data), 0);
      if (kernel.add(this.#spare, sums[c]!, 0, data) !== 0) {
        this.#rollback(block, c);
        throw coefficientError(block, c, count, 'block', paramSet);
      }
      const old = sums[c]!;
      sums[c] = this.#spare;
      this.#spare = old;
    }
    this.#count++;
  }

  #rollback(block: Uint8Array, upTo: number): void {
    const paramSet = this.#paramSet;
    const data = dataBytes(paramSet);
    for (let c = 0; c < upTo; c++) {
      const start = c * paramSet.ciphertextBytes + paramSet.headerBytes;
      this.#heap.set(block.subarray(start, start + data), 0);
      this.#kernel.sub(this.#sums[c]!, 0, data);
    }
  }

  /** The aggregate as a block of serialized ciphertexts (a fresh copy). */
  bytes(): Uint8Array {
    if (this.#count === 0) throw new CiphertextError('the accumulator is empty: no block has been added');
    const paramSet = this.#paramSet;
    const size = paramSet.ciphertextBytes;
    const data = dataBytes(paramSet);
    const out = new Uint8Array(this.#ciphertextCount * size);
    for (let c = 0; c < this.#ciphertextCount; c++) {
      out.set(this.#expected, c * size);
      const from = this.#sums[c]!;
      out.set(this.#heap.subarray(from, from + data), c * size + paramSet.headerBytes);
    }
    return out;
  }
}
