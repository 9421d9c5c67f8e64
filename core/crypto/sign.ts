// Post-quantum signatures over 32-byte fingerprints: ML-DSA-44 for robots, ML-DSA-65 for officers (FIPS 204).
// We always sign a domain-separated SHA-256 fingerprint, never a raw body: ML-DSA cost grows with
// message length (~30 ms/MiB) and the fingerprint already binds the record type and version.
import { ml_dsa44, ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { SignatureInvalidError, expectBytes } from '../errors.ts';

export type SignatureAlgorithm = 'ml-dsa-44' | 'ml-dsa-65';

export const SIGNATURE_SIZES = {
  'ml-dsa-44': { publicKey: 1312, secretKey: 2560, signature: 2420 },
  'ml-dsa-65': { publicKey: 1952, secretKey: 4032, signature: 3309 },
} as const;

const IMPL = { 'ml-dsa-44': ml_dsa44, 'ml-dsa-65': ml_dsa65 } as const;

export interface SigningKeyPair {
  algorithm: SignatureAlgorithm;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export function generateSigningKeyPair(options: { algorithm: SignatureAlgorithm; seed?: Uint8Array }): SigningKeyPair {
  const impl = implFor(options.algorithm);
  const { publicKey, secretKey } = options.seed ? impl.keygen(expectBytes('seed', options.seed, 32)) : impl.keygen();
  return { algorithm: options.algorithm, publicKey, secretKey };
}

export function signFingerprint(options: { algorithm: SignatureAlgorithm; fingerprint: Uint8Array; secretKey: Uint8Array }): Uint8Array {
  const impl = implFor(options.algorithm);
  expectBytes('fingerprint', options.fingerprint, 32);
  expectBytes('secretKey', options.secretKey, SIGNATURE_SIZES[options.algorithm].secretKey);
  return impl.sign(options.fingerprint, options.secretKey);
}

/** Throws SignatureInvalidError unless `signature` is a valid signature of `fingerprint` under `publicKey`. */
export function verifyFingerprint(options: {
  algorithm: SignatureAlgorithm;
  fingerprint: Uint8Array;
  signature: Uint8Array;
  publicKey: Uint8Array;
  what?: string;
}): void {
  const impl = implFor(options.algorithm);
  const sizes = SIGNATURE_SIZES[options.algorithm];
  const what = options.what ?? 'record';
  expectBytes('fingerprint', options.fingerprint, 32);
  if (!(options.publicKey instanceof Uint8Array) || options.publicKey.length !== sizes.publicKey)
    throw new SignatureInvalidError(`${what}: ${options.algorithm} public key must be ${sizes.publicKey} bytes`);
  if (!(options.signature instanceof Uint8Array) || options.signature.length !== sizes.signature)
    throw new SignatureInvalidError(`${what}: ${options.algorithm} signature must be ${sizes.signature} bytes`);
  let ok = false;
  try {
    ok = impl.verify(options.signature, options.fingerprint, options.publicKey);
  } catch {
    ok = false;
  }
  if (!ok) throw new SignatureInvalidError(`${what}: signature does not verify`);
}

function implFor(algorithm: SignatureAlgorithm) {
  const impl = IMPL[algorithm];
  if (!impl) throw new TypeError(`"algorithm" expected ml-dsa-44 or ml-dsa-65, got ${String(algorithm)}`);
  return impl;
}
