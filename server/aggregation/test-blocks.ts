// Structurally valid ciphertext blocks for tests and benches: the round's header, coefficients uniform
// below q (SEAL accepts exactly those; addition does not depend on what they encrypt).
import { expectedHeader } from '../../core/he/aggregate.ts';
import { PARAM_SET_ID, getParamSet } from '../../core/he/params.ts';
import { randomBytes } from '../../core/random.ts';

export function randomCiphertextBlock(options: { ciphertexts: number; parmsId: Uint8Array; paramSetId?: string }): Uint8Array {
  const set = getParamSet({ id: options.paramSetId ?? PARAM_SET_ID });
  const header = expectedHeader({ parmsId: options.parmsId, paramSet: set });
  const block = new Uint8Array(options.ciphertexts * set.ciphertextBytes);
  const coefficients = (set.ciphertextBytes - set.headerBytes) / 8;
  const qHi = Number(set.coeffModulus >> 32n);
  for (let c = 0; c < options.ciphertexts; c++) {
    const off = c * set.ciphertextBytes;
    block.set(header, off);
    const raw = randomBytes(coefficients * 8);
    const words = new Uint32Array(raw.buffer, raw.byteOffset, raw.length / 4);
    for (let i = 1; i < words.length; i += 2) words[i] = words[i]! % qHi; // high word below q's: every value < q
    block.set(raw, off + set.headerBytes);
  }
  return block;
}
