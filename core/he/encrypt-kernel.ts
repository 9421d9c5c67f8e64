// The robot's BFV encryption, split where SEAL's own encrypt() splits it:
//
//   SEAL encrypt(m) = encrypt_zero (sample u, e1, e2; pk * u + e: the randomness and the NTTs)
//                   + multiply_add_plain_with_scaling_variant (c0 += round(q * m / t), per coefficient)
//
// SEAL's second half divides a 128-bit numerator bit by bit; in node-seal's WebAssembly build that costs
// more than the first half (measured here: encrypt 2.1 ms, encryptZero 0.7 ms, addPlain 1.3 ms per
// N = 4096 ciphertext). So core/he/seal.ts calls SEAL for everything that involves randomness or keys
// (BatchEncoder.encode, Encryptor.encryptZero) and does the deterministic scaling itself with
// `add_scaled_plain` (aggregate.wat): the same integer formula, byte for byte what SEAL's
// Evaluator.addPlain gives (encrypt-kernel.test.ts), i.e. the same ciphertext SEAL's encrypt() would have
// built from the same randomness. Each call uses a fresh encryption of zero: never one twice (the
// difference of two ciphertexts sharing one would be the difference of the plaintexts).
//
// Layouts (SEAL 4.1, ComprModeType.none): a ciphertext is a 113-byte header then u64 coefficients
// [poly][prime][coeff], so c0 of the single prime is bytes 113 .. 113 + 8N; a plaintext is a 88-byte
// header (SEAL header 16, parms_id 32, coeff_count u64 at 48, scale f64 at 56, the data array's SEAL
// header 16 at 64 and its u64 length at 80) then its coefficients (< t).
import { CiphertextError } from '../errors.ts';
import { simdModule } from './aggregate.ts';
import type { HeParamSet } from './params.ts';

export const PLAINTEXT_HEADER_BYTES = 88;

interface KernelExports {
  memory: WebAssembly.Memory;
  add_scaled_plain(c0: number, m: number, n: number, q: bigint, t: bigint, qModT: bigint, delta: bigint): number;
}

export interface ScaledPlainKernel {
  /** Adds round(q * m / t) to c0 of `ciphertext` (a serialized ciphertext, changed in place), m the serialized `plaintext`. */
  addScaledPlain(ciphertext: Uint8Array, plaintext: Uint8Array): void;
}

const readU64 = (bytes: Uint8Array, at: number): number => {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, 8);
  return view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
};

/** The kernel for a one-prime parameter set, or null where the WebAssembly module is unavailable (SEAL's own path then). */
export function createScaledPlainKernel(paramSet: HeParamSet): ScaledPlainKernel | null {
  const module = simdModule();
  if (module === null || paramSet.coeffModulusBits.length !== 1) return null;
  const q = paramSet.coeffModulus;
  const t = paramSet.plainModulus;
  // The bounds the kernel's exactness argument needs (aggregate.wat).
  if (q >= 1n << 61n || t >= 1n << 36n || t >= q) return null;
  const n = paramSet.polyModulusDegree;
  const exports = new WebAssembly.Instance(module, {}).exports as unknown as KernelExports;
  const coeffBytes = 8 * n;
  const C0 = 0;
  const M = coeffBytes;
  if (exports.memory.buffer.byteLength < 2 * coeffBytes) exports.memory.grow(Math.ceil((2 * coeffBytes - exports.memory.buffer.byteLength) / 65536));
  const qModT = q % t;
  const delta = q / t;
  return {
    addScaledPlain(ciphertext, plaintext) {
      if (ciphertext.length !== paramSet.ciphertextBytes) throw new CiphertextError(`ciphertext expected ${paramSet.ciphertextBytes} bytes, got ${ciphertext.length}`);
      const count = plaintext.length >= PLAINTEXT_HEADER_BYTES ? readU64(plaintext, 80) : -1;
      if (count < 0 || count > n || readU64(plaintext, 48) !== count || plaintext.length !== PLAINTEXT_HEADER_BYTES + 8 * count)
        throw new CiphertextError(`plaintext serialization expected ${PLAINTEXT_HEADER_BYTES} + 8 x (<= ${n}) bytes with matching counts, got ${plaintext.length} bytes`);
      const memory = new Uint8Array(exports.memory.buffer);
      memory.set(ciphertext.subarray(paramSet.headerBytes, paramSet.headerBytes + coeffBytes), C0);
      memory.set(plaintext.subarray(PLAINTEXT_HEADER_BYTES), M);
      // SEAL scales only the plaintext's coefficients; the missing high ones are zero, whose scaled value is 0.
      memory.fill(0, M + 8 * count, M + coeffBytes);
      if (exports.add_scaled_plain(C0, M, n, q, t, qModT, delta) !== 0)
        throw new CiphertextError('plaintext scaling refused its input (a coefficient >= t, or a ciphertext coefficient >= q)');
      ciphertext.set(memory.subarray(C0, C0 + coeffBytes), paramSet.headerBytes);
    },
  };
}
