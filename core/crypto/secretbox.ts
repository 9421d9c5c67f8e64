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
  if (params.log2N < MIN_LOG2N || params.log2N > 22) throw new RangeError(`"kdf.log2N" expected 14..22, got ${params.log2N}`);
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
  if (params.log2N < MIN_LOG2N || params.log2N > 22 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16)
    throw new DecryptionError('sealed secret: KDF parameters out of the accepted range');
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
