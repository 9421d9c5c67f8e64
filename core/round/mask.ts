// The round's shared sparsification mask and trainable-tensor selection.
//
// Every robot of a round must send the same coordinates, or the ciphertexts would not line up for
// addition. So the mask is a pure function of the round's maskSeed: index i is kept iff the i-th
// 32-bit word of a ChaCha20 keystream (key = HKDF-SHA256(maskSeed, "tensorguard/mask/v1")) is below
// sparsity * 2^32. Values a robot does not send stay in its error-feedback residual for later rounds.
import { chacha20 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { expectBytes, expectFinite, expectInteger } from '../errors.ts';
import { utf8ToBytes } from '../bytes.ts';

const MASK_INFO = utf8ToBytes('tensorguard/mask/v1');
const BLOCK_WORDS = 16384;

/** Indices of kept values, ascending. sparsity 1 keeps everything. */
export function sparsificationMask(options: { seed: Uint8Array; length: number; sparsity: number }): Uint32Array {
  expectBytes('seed', options.seed, 32);
  const length = expectInteger('length', options.length, 1, 2 ** 31);
  const sparsity = expectFinite('sparsity', options.sparsity, Number.MIN_VALUE, 1);
  if (sparsity === 1) {
    const all = new Uint32Array(length);
    for (let i = 0; i < length; i++) all[i] = i;
    return all;
  }
  const key = hkdf(sha256, options.seed, undefined, MASK_INFO, 32);
  const threshold = Math.floor(sparsity * 2 ** 32);
  const kept: number[] = [];
  const zeros = new Uint8Array(BLOCK_WORDS * 4);
  for (let start = 0, counter = 0; start < length; start += BLOCK_WORDS, counter += (BLOCK_WORDS * 4) / 64) {
    const stream = chacha20(key, new Uint8Array(12), zeros, undefined, counter);
    const words = new Uint32Array(stream.buffer, stream.byteOffset, BLOCK_WORDS);
    const n = Math.min(BLOCK_WORDS, length - start);
    for (let j = 0; j < n; j++) if (words[j]! < threshold) kept.push(start + j);
  }
  return Uint32Array.from(kept);
}

/** Tensors a round trains: every LoRA tensor, or only lora_B when A is frozen (FFA-LoRA). Sorted by name. */
export function trainableTensorNames(options: { tensors: { name: string }[]; freezeA: boolean }): string[] {
  return options.tensors
    .map((t) => t.name)
    .filter((n) => !options.freezeA || n.endsWith('.lora_B.weight'))
    .sort();
}

export function trainableLength(options: { tensors: { name: string; shape: number[] }[]; freezeA: boolean }): number {
  const names = new Set(trainableTensorNames(options));
  return options.tensors.filter((t) => names.has(t.name)).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
}

export function gather(options: { values: Float32Array; mask: Uint32Array }): Float32Array {
  const out = new Float32Array(options.mask.length);
  for (let i = 0; i < out.length; i++) out[i] = options.values[options.mask[i]!]!;
  return out;
}

export function scatter(options: { values: Float32Array; mask: Uint32Array; length: number }): Float32Array {
  const out = new Float32Array(options.length);
  for (let i = 0; i < options.mask.length; i++) out[options.mask[i]!] = options.values[i]!;
  return out;
}
