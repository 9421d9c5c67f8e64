// Secrets at rest under a passphrase: scrypt (N = 2^17, r = 8, p = 1 — OWASP ASVS 5.0 Appendix C) then
// AES-256-GCM. The same sealed format is written by the officer CLI and (later) the PWA's backup, so a
// backup made by either opens in the other.
//
// layout: "TG" 0x09 0x01 | u8 log2N | u8 r | u8 p | salt[16] | bytes(ciphertext = nonce || gcm)
// The header fields are also the GCM associated data, so a downgraded KDF parameter fails to open.
import { gcm } from '@noble/ciphers/aes.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { DecryptionError } from '../errors.ts';
import { randomBytes } from '../random.ts';
import { utf8ToBytes } from '../bytes.ts';

const TYPE_SEALED_SECRET = 9;
export const DEFAULT_KDF = { log2N: 17, r: 8, p: 1 } as const;
const MIN_LOG2N = 14;
/**
 * Bounds on the KDF cost a sealed file may ask for. The parameters come from the file, so without a
 * bound a crafted file makes the opener allocate 128·r·N bytes (up to 16 GiB at log2N 22, r 32) or
 * spin for minutes (N·r·p). Memory <= 1 GiB; work <= 16x the default (2^17 · 8 · 1).
 */
const MAX_KDF_MEMORY = 1024 * 1024 * 1024;
const MAX_KDF_WORK = 2 ** DEFAULT_KDF.log2N * DEFAULT_KDF.r * DEFAULT_KDF.p * 16;

/** Null when the parameters are acceptable, else what is wrong with them. */
function kdfProblem(params: KdfParams): string | null {
  const { log2N, r, p } = params;
  if (!Number.isInteger(log2N) || log2N < MIN_LOG2N || log2N > 22) return `log2N expected 14..22, got ${log2N}`;
  if (!Number.isInteger(r) || r < 1 || r > 32) return `r expected 1..32, got ${r}`;
  if (!Number.isInteger(p) || p < 1 || p > 16) return `p expected 1..16, got ${p}`;
  if (128 * r * 2 ** log2N > MAX_KDF_MEMORY) return `memory 128·r·N = ${128 * r * 2 ** log2N} bytes exceeds ${MAX_KDF_MEMORY}`;
  if (2 ** log2N * r * p > MAX_KDF_WORK) return `work N·r·p = ${2 ** log2N * r * p} exceeds ${MAX_KDF_WORK}`;
  return null;
}

export interface KdfParams {
  log2N: number;
  r: number;
  p: number;
}

/** Derives a 32-byte key. Callers on Node may pass node:crypto's scrypt (same function, native speed). */
export type ScryptFn = (options: { passphrase: Uint8Array; salt: Uint8Array; params: KdfParams }) => Promise<Uint8Array>;

export const nobleScrypt: ScryptFn = ({ passphrase, salt, params }) =>
  scryptAsync(passphrase, salt, { N: 2 ** params.log2N, r: params.r, p: params.p, dkLen: 32, maxmem: 2 ** 31 });

function header(params: KdfParams, salt: Uint8Array): Uint8Array {
  return new ByteWriter().header(TYPE_SEALED_SECRET, 1).u8(params.log2N).u8(params.r).u8(params.p).fixed(salt, 16).finish();
}

export async function sealSecret(options: {
  plaintext: Uint8Array;
  passphrase: string;
  kdf?: KdfParams;
  scrypt?: ScryptFn;
}): Promise<Uint8Array> {
  const params = options.kdf ?? DEFAULT_KDF;
  const problem = kdfProblem(params);
  if (problem) throw new RangeError(`"kdf" ${problem}`);
  if (typeof options.passphrase !== 'string' || options.passphrase.length === 0)
    throw new TypeError('"passphrase" expected non-empty string, got empty');
  const salt = randomBytes(16);
  const key = await (options.scrypt ?? nobleScrypt)({ passphrase: utf8ToBytes(options.passphrase), salt, params });
  const aad = header(params, salt);
  const nonce = randomBytes(12);
  const ct = gcm(key, nonce, aad).encrypt(options.plaintext);
  const body = new Uint8Array(12 + ct.length);
  body.set(nonce);
  body.set(ct, 12);
  const w = new ByteWriter().header(TYPE_SEALED_SECRET, 1).u8(params.log2N).u8(params.r).u8(params.p).fixed(salt, 16);
  return w.bytes(body, 16 * 1024 * 1024).finish();
}

export async function openSecret(options: { sealed: Uint8Array; passphrase: string; scrypt?: ScryptFn }): Promise<Uint8Array> {
  const r = new ByteReader(options.sealed, 'sealed secret');
  r.header(TYPE_SEALED_SECRET, [1]);
  const params = { log2N: r.u8('log2N'), r: r.u8('r'), p: r.u8('p') };
  const problem = kdfProblem(params);
  if (problem) throw new DecryptionError(`sealed secret: KDF parameters out of the accepted range (${problem})`);
  const salt = r.fixed(16, 'salt');
  const body = r.bytes(16 * 1024 * 1024, 'ciphertext');
  r.end();
  if (body.length < 28) throw new DecryptionError('sealed secret: ciphertext too short');
  const key = await (options.scrypt ?? nobleScrypt)({ passphrase: utf8ToBytes(options.passphrase), salt, params });
  try {
    return gcm(key, body.subarray(0, 12), header(params, salt)).decrypt(body.subarray(12));
  } catch (cause) {
    throw new DecryptionError('wrong passphrase, or the sealed secret was altered', undefined, cause);
  }
}
