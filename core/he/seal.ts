// Thin node-seal (SEAL 4.1 in WASM) wrapper for our BFV parameter sets: keygen, slot encryption, decryption.
//
// Data flow: robot  slots (BigUint64Array) -> BatchEncoder.encode -> Encryptor.encrypt -> saveArray(none)
//                   -> concatenated 65,649-byte ciphertexts;
//            officer concatenated ciphertexts -> loadArray (SEAL re-validates parms id and q-range)
//                   -> Decryptor.decrypt -> BatchEncoder.decodeBigInt -> slots.
// The WASM is initialised once per process (module-level promise) and one SEAL context is kept per
// parameter set. SEAL objects live on the WASM heap and are not garbage collected, so every object
// made in a loop is reused or `.delete()`d, and encryptors/decryptors expose `destroy()`.
// Every key and ciphertext header is compared with the exact bytes we expect before SEAL parses it:
// SEAL trusts the size fields of its own format, and a truncated or inflated one makes the WASM abort()
// instead of throwing, so SEAL only ever sees inputs of the right shape.
// node-seal throws whatever Embind throws (Error, number, array); everything is rethrown as a typed
// TensorGuard error with a message saying what we were doing.

import SEAL from 'node-seal';
import type { SEALLibrary } from 'node-seal/implementation/seal';
import type { Context } from 'node-seal/implementation/context';
import { CiphertextError, IntegrityError, describe, expectBytes } from '../errors.ts';
import { PARAM_SET_ID, getParamSet, type HeParamSet } from './params.ts';
import { expectedHeader } from './aggregate.ts';
import { createScaledPlainKernel } from './encrypt-kernel.ts';
import { equalBytes } from '../bytes.ts';

export interface HeKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  /** 32 bytes: the parms id as four little-endian u64, exactly as in a ciphertext header (offset 16). */
  parmsId: Uint8Array;
  paramSetId: string;
}

/**
 * Encryptions of zero made ahead of time (a robot agent between rounds: cli/robot-zero-pool.ts), each
 * handed out once. Whoever holds one can strip it from the ciphertext it becomes, so they are kept like
 * the robot's keys: in memory, wiped after use, never reused or stored.
 */
export interface ZeroEncryptionSource {
  /** The next unused encryption of zero (a serialized ciphertext of this encryptor's key), or undefined when none is left. */
  take(): Uint8Array | undefined;
}

export interface HeEncryptor {
  /**
   * Encrypts slot vectors (each a BigUint64Array of length <= 4096, values < t) into the concatenation of
   * uncompressed ciphertexts. With `zeros`, each ciphertext starts from the next precomputed encryption of
   * zero (the encryption's random part) while any is left, else from a fresh one; every one is wiped.
   */
  encryptSlots(options: { slots: BigUint64Array; zeros?: ZeroEncryptionSource }): Uint8Array;
  /** `count` fresh encryptions of zero under this key, for a ZeroEncryptionSource (empty on the SEAL-only path, which cannot use them). */
  encryptZeros(count: number): Uint8Array[];
  parmsId: Uint8Array;
  path: 'wasm' | 'seal';
  destroy(): void;
}

export interface HeDecryptor {
  /** Decrypts a concatenation of ciphertexts into slots; onProgress(done, total) optional. */
  decryptSlots(options: { ciphertexts: Uint8Array; onProgress?: (done: number, total: number) => void }): BigUint64Array;
  /** Invariant noise budget in bits of each ciphertext (0 means it no longer decrypts correctly). */
  noiseBudgets(options: { ciphertexts: Uint8Array }): number[];
  destroy(): void;
}

/** A SEAL context for one parameter set, plus what we read from it once. */
export interface SealContext {
  seal: SEALLibrary;
  context: Context;
  paramSet: HeParamSet;
  parmsId: Uint8Array;
}

let sealPromise: Promise<SEALLibrary> | null = null;
const contexts = new Map<string, Promise<SealContext>>();

function loadSeal(): Promise<SEALLibrary> {
  if (sealPromise === null) {
    sealPromise = SEAL().catch((err: unknown) => {
      sealPromise = null; // let a later call retry (e.g. a transient fetch failure in a browser)
      throw new IntegrityError(`node-seal failed to initialise: ${errorText(err)}`, undefined, err);
    });
  }
  return sealPromise;
}

/** Embind throws non-Error values (numbers are pointers to C++ exceptions); make them readable. */
function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (Array.isArray(err)) return err.map((e) => String(e)).join(', ');
  return String(err);
}

function parmsIdBytes(values: BigUint64Array): Uint8Array {
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) view.setBigUint64(i * 8, values[i]!, true);
  return out;
}

/**
 * The SEAL context for a parameter set (created once, then shared). Refuses to run if SEAL picks
 * primes other than the ones the parameter set hard-codes: ciphertexts would not interoperate.
 */
export async function loadSealContext(options: { paramSetId: string }): Promise<SealContext> {
  const paramSet = getParamSet({ id: options.paramSetId });
  let pending = contexts.get(paramSet.id);
  if (pending === undefined) {
    pending = buildContext(paramSet);
    pending.catch(() => contexts.delete(paramSet.id));
    contexts.set(paramSet.id, pending);
  }
  return pending;
}

async function buildContext(paramSet: HeParamSet): Promise<SealContext> {
  const seal = await loadSeal();
  const parms = seal.EncryptionParameters(seal.SchemeType.bfv);
  const coeff = seal.CoeffModulus.Create(paramSet.polyModulusDegree, Int32Array.from(paramSet.coeffModulusBits));
  const plain = seal.PlainModulus.Batching(paramSet.polyModulusDegree, paramSet.plainModulusBits);
  try {
    parms.setPolyModulusDegree(paramSet.polyModulusDegree);
    parms.setCoeffModulus(coeff);
    parms.setPlainModulus(plain);
    const context = seal.Context(parms, true, seal.SecurityLevel.tc128);
    if (!context.parametersSet()) throw new Error('SEAL refused the encryption parameters');
    const q = parms.coeffModulus;
    const plainModulus = parms.plainModulus;
    const t = plainModulus.value;
    plainModulus.delete();
    if (q.length !== 1 || q[0] !== paramSet.coeffModulus || t !== paramSet.plainModulus)
      throw new Error(`SEAL picked q=${Array.from(q).join(',')} t=${t}, parameter set says q=${paramSet.coeffModulus} t=${paramSet.plainModulus}`);
    const first = context.firstParmsId;
    const parmsId = parmsIdBytes(first.values);
    first.delete();
    return { seal, context, paramSet, parmsId };
  } catch (err) {
    throw new IntegrityError(`cannot build the SEAL context for ${paramSet.id}: ${errorText(err)}`, undefined, err);
  } finally {
    coeff.delete();
    plain.delete();
    parms.delete();
  }
}

export async function parmsIdFor(options: { paramSetId: string }): Promise<Uint8Array> {
  const { parmsId } = await loadSealContext({ paramSetId: options.paramSetId });
  return parmsId.slice();
}

export async function generateKeyPair(options: { paramSetId?: string }): Promise<HeKeyPair> {
  const paramSetId = options?.paramSetId ?? PARAM_SET_ID;
  const { seal, context, parmsId } = await loadSealContext({ paramSetId });
  const keygen = seal.KeyGenerator(context);
  const publicKey = keygen.createPublicKey();
  const secretKey = keygen.secretKey();
  try {
    // Uncompressed: zstd gains nothing on uniformly random 60-bit coefficients and the bytes stay
    // independent of the compressor build.
    return {
      publicKey: publicKey.saveArray(seal.ComprModeType.none),
      secretKey: secretKey.saveArray(seal.ComprModeType.none),
      parmsId: parmsId.slice(),
      paramSetId,
    };
  } finally {
    publicKey.delete();
    secretKey.delete();
    keygen.delete();
  }
}

/** A public key serializes as a ciphertext in NTT form under the key parms id (= first parms id here). */
function expectedPublicKeyHeader(paramSet: HeParamSet, parmsId: Uint8Array): Uint8Array {
  const header = expectedHeader({ parmsId, paramSet });
  header[48] = 1; // is_ntt_form
  return header;
}

/**
 * A secret key serializes as a plaintext (SEAL 4.1 Plaintext::save_members): SEAL header, parms id,
 * coeff count (u64), scale (f64), then the coefficient DynArray header and count: 88 bytes.
 */
function expectedSecretKeyHeader(paramSet: HeParamSet, parmsId: Uint8Array): { header: Uint8Array; length: number } {
  const coefficients = paramSet.polyModulusDegree * paramSet.coeffModulusBits.length;
  const length = 88 + coefficients * 8;
  const header = new Uint8Array(88);
  const view = new DataView(header.buffer);
  const sealHeader = (offset: number, size: number): void => {
    view.setUint16(offset, 0xa15e, true); // SEAL magic
    view.setUint8(offset + 2, 0x10); // SEAL header size
    view.setUint8(offset + 3, 4); // SEAL version 4.1, compression none, reserved 0
    view.setUint8(offset + 4, 1);
    view.setBigUint64(offset + 8, BigInt(size), true);
  };
  sealHeader(0, length);
  header.set(parmsId, 16);
  view.setBigUint64(48, BigInt(coefficients), true);
  view.setFloat64(56, 1.0, true);
  sealHeader(64, 16 + 8 + coefficients * 8);
  view.setBigUint64(80, BigInt(coefficients), true);
  return { header, length };
}

/** The first byte where `bytes` differs from `header`, or -1. */
function headerDifference(bytes: Uint8Array, offset: number, header: Uint8Array): number {
  for (let i = 0; i < header.length; i++) if (bytes[offset + i] !== header[i]) return i;
  return -1;
}

function checkKeyShape(what: string, bytes: Uint8Array, header: Uint8Array, length: number, paramSet: HeParamSet): void {
  if (bytes.length !== length)
    throw new IntegrityError(`${what} for ${paramSet.id} must be ${length} bytes, got ${bytes.length}`, { paramSetId: paramSet.id });
  const at = headerDifference(bytes, 0, header);
  if (at >= 16 && at < 48)
    throw new IntegrityError(`${what} belongs to another parameter set than ${paramSet.id} (parms id differs)`, { paramSetId: paramSet.id });
  if (at >= 0) throw new IntegrityError(`${what} header byte ${at} is not what ${paramSet.id} serializes`, { paramSetId: paramSet.id, byte: at });
}

function destroyedError(what: string): TypeError {
  return new TypeError(`"${what}" used after destroy()`);
}

export async function createEncryptor(options: {
  publicKey: Uint8Array;
  paramSetId: string;
  /** 'seal': SEAL's encrypt() alone (the reference the tests and the he bench compare with); default: the faster split path where available. */
  kernel?: 'seal';
}): Promise<HeEncryptor> {
  const publicKeyBytes = expectBytes('publicKey', options?.publicKey);
  const { seal, context, paramSet, parmsId } = await loadSealContext({ paramSetId: options.paramSetId });
  checkKeyShape('public key', publicKeyBytes, expectedPublicKeyHeader(paramSet, parmsId), paramSet.ciphertextBytes, paramSet);
  const publicKey = seal.PublicKey();
  try {
    // loadArray checks the header, that the key's parms id belongs to this context and that every
    // coefficient is < q; a key for another parameter set or garbage fails here.
    publicKey.loadArray(context, publicKeyBytes);
  } catch (err) {
    publicKey.delete();
    throw new IntegrityError(`public key does not load for ${paramSet.id}: ${errorText(err)}`, { paramSetId: paramSet.id }, err);
  }
  const encryptor = seal.Encryptor(context, publicKey);
  const encoder = seal.BatchEncoder(context);
  const plaintext = seal.PlainText();
  const ciphertext = seal.CipherText();
  const slotCount = paramSet.slotCount;
  const ctBytes = paramSet.ciphertextBytes;
  const t = paramSet.plainModulus;
  // Slot range check on 32-bit halves: a BigInt compare per slot would cost more than the packing.
  const tHi = Number(t >> 32n);
  const tLo = Number(t & 0xffffffffn);
  const hiIndex = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
  const padded = new BigUint64Array(slotCount);
  const kernel = options.kernel === 'seal' ? null : createScaledPlainKernel(paramSet);
  const header = expectedHeader({ parmsId, paramSet });
  let destroyed = false;

  return {
    parmsId: parmsId.slice(),
    /** 'wasm' when the plaintext scaling runs in core/he/encrypt-kernel.ts, 'seal' when SEAL's encrypt() does all. */
    path: kernel ? 'wasm' : 'seal',
    encryptZeros(n: number): Uint8Array[] {
      if (destroyed) throw destroyedError('HeEncryptor');
      if (!Number.isSafeInteger(n) || n < 0 || n > 1_000_000) throw new RangeError(`"count" expected 0..1000000, got ${describe(n)}`);
      if (!kernel) return [];
      const out: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        encryptor.encryptZero(ciphertext);
        out.push(ciphertext.saveArray(seal.ComprModeType.none));
      }
      return out;
    },
    encryptSlots(opts: { slots: BigUint64Array; zeros?: ZeroEncryptionSource }): Uint8Array {
      if (destroyed) throw destroyedError('HeEncryptor');
      const slots = opts?.slots;
      if (!(slots instanceof BigUint64Array)) throw new TypeError(`"slots" expected BigUint64Array, got ${describe(slots)}`);
      if (slots.length === 0) throw new RangeError(`"slots" expected at least 1 slot, got 0`);
      const words = new Uint32Array(slots.buffer, slots.byteOffset, slots.length * 2);
      for (let i = 0; i < slots.length; i++) {
        const hi = words[2 * i + hiIndex]!;
        if (hi > tHi || (hi === tHi && words[2 * i + 1 - hiIndex]! >= tLo))
          throw new RangeError(`"slots[${i}]" expected value < ${t}, got ${slots[i]}`);
      }
      const count = Math.ceil(slots.length / slotCount);
      const out = new Uint8Array(count * ctBytes);
      for (let c = 0; c < count; c++) {
        let chunk = slots.subarray(c * slotCount, (c + 1) * slotCount);
        if (chunk.length < slotCount) {
          padded.fill(0n);
          padded.set(chunk);
          chunk = padded;
        }
        let bytes: Uint8Array;
        try {
          encoder.encode(chunk, plaintext);
          if (kernel) {
            // SEAL's encrypt() in two halves (core/he/encrypt-kernel.ts): an encryption of zero from SEAL
            // (precomputed, or fresh), then the plaintext scaling, the same formula without SEAL's
            // bit-serial division.
            const zero = opts.zeros?.take();
            if (zero !== undefined && (zero.length !== ctBytes || !equalBytes(zero.subarray(0, header.length), header)))
              throw new CiphertextError(`a precomputed encryption of zero is not a ciphertext of this key's parameters (${zero.length} bytes)`);
            if (zero !== undefined) {
              bytes = zero; // out of the pool for good: it becomes this ciphertext, then is overwritten below
            } else {
              encryptor.encryptZero(ciphertext);
              bytes = ciphertext.saveArray(seal.ComprModeType.none);
            }
            if (bytes.length === ctBytes) kernel.addScaledPlain(bytes, plaintext.saveArray(seal.ComprModeType.none));
          } else {
            encryptor.encrypt(plaintext, ciphertext);
            bytes = ciphertext.saveArray(seal.ComprModeType.none);
          }
        } catch (err) {
          throw new CiphertextError(`encrypting ciphertext ${c} of ${count} failed: ${errorText(err)}`, undefined, err);
        }
        if (bytes.length !== ctBytes)
          throw new CiphertextError(`ciphertext ${c} serialized to ${bytes.length} bytes, expected ${ctBytes}`);
        out.set(bytes, c * ctBytes);
        bytes.fill(0); // a taken encryption of zero (or SEAL's copy): used once, not left in memory
      }
      return out;
    },
    destroy(): void {
      if (destroyed) return;
      destroyed = true;
      ciphertext.delete();
      plaintext.delete();
      encoder.delete();
      encryptor.delete();
      publicKey.delete();
    },
  };
}

export async function createDecryptor(options: { secretKey: Uint8Array; paramSetId: string }): Promise<HeDecryptor> {
  const secretKeyBytes = expectBytes('secretKey', options?.secretKey);
  const { seal, context, paramSet, parmsId } = await loadSealContext({ paramSetId: options.paramSetId });
  const skShape = expectedSecretKeyHeader(paramSet, parmsId);
  checkKeyShape('secret key', secretKeyBytes, skShape.header, skShape.length, paramSet);
  const secretKey = seal.SecretKey();
  try {
    secretKey.loadArray(context, secretKeyBytes);
  } catch (err) {
    secretKey.delete();
    throw new IntegrityError(`secret key does not load for ${paramSet.id}: ${errorText(err)}`, { paramSetId: paramSet.id }, err);
  }
  const decryptor = seal.Decryptor(context, secretKey);
  const encoder = seal.BatchEncoder(context);
  const plaintext = seal.PlainText();
  const ciphertext = seal.CipherText();
  const slotCount = paramSet.slotCount;
  const ctBytes = paramSet.ciphertextBytes;
  const ctHeader = expectedHeader({ parmsId, paramSet });
  let destroyed = false;

  function splitCount(bytes: unknown): number {
    const block = expectBytes('ciphertexts', bytes);
    if (block.length === 0 || block.length % ctBytes !== 0)
      throw new CiphertextError(`ciphertext block of ${block.length} bytes is not a positive multiple of ${ctBytes}`, {
        length: block.length,
      });
    return block.length / ctBytes;
  }

  function load(block: Uint8Array, c: number, count: number): void {
    const at = headerDifference(block, c * ctBytes, ctHeader);
    if (at >= 0)
      throw new CiphertextError(
        `ciphertext ${c} of ${count}: header byte ${at} differs from what ${paramSet.id} under this key serializes` +
          (at >= 16 && at < 48 ? ' (parms id: another key or parameter set)' : ''),
        { index: c, byte: at },
      );
    try {
      // SEAL re-checks the header, the parms id and that every coefficient is < q.
      ciphertext.loadArray(context, block.subarray(c * ctBytes, (c + 1) * ctBytes));
    } catch (err) {
      throw new CiphertextError(`ciphertext ${c} of ${count} does not load: ${errorText(err)}`, { index: c }, err);
    }
  }

  return {
    decryptSlots(opts: { ciphertexts: Uint8Array; onProgress?: (done: number, total: number) => void }): BigUint64Array {
      if (destroyed) throw destroyedError('HeDecryptor');
      const count = splitCount(opts?.ciphertexts);
      const block = opts.ciphertexts;
      const onProgress = opts.onProgress;
      const out = new BigUint64Array(count * slotCount);
      for (let c = 0; c < count; c++) {
        load(block, c, count);
        let slots: BigUint64Array | BigInt64Array;
        try {
          decryptor.decrypt(ciphertext, plaintext);
          slots = encoder.decodeBigInt(plaintext, false);
        } catch (err) {
          throw new CiphertextError(`decrypting ciphertext ${c} of ${count} failed: ${errorText(err)}`, { index: c }, err);
        }
        out.set(slots as BigUint64Array, c * slotCount);
        onProgress?.(c + 1, count);
      }
      return out;
    },
    noiseBudgets(opts: { ciphertexts: Uint8Array }): number[] {
      if (destroyed) throw destroyedError('HeDecryptor');
      const count = splitCount(opts?.ciphertexts);
      const budgets: number[] = [];
      for (let c = 0; c < count; c++) {
        load(opts.ciphertexts, c, count);
        try {
          budgets.push(decryptor.invariantNoiseBudget(ciphertext));
        } catch (err) {
          throw new CiphertextError(`noise budget of ciphertext ${c} failed: ${errorText(err)}`, { index: c }, err);
        }
      }
      return budgets;
    },
    destroy(): void {
      if (destroyed) return;
      destroyed = true;
      ciphertext.delete();
      plaintext.delete();
      encoder.delete();
      decryptor.delete();
      secretKey.delete();
    },
  };
}
