// Release payload confidentiality: AES-256-GCM under a fresh content key, the key wrapped per robot
// with ML-KEM-768 (FIPS 203). The server stores only the ciphertext and the wraps, so it cannot read
// a released adapter either (DESIGN.md trust model 3).
//
// wrap:   (kemCiphertext, shared) = ML-KEM-768.Encaps(robotPk)
//         kek = HKDF-SHA256(ikm = shared, salt = none, info = "tensorguard/release-key-wrap/v1" || context)
//         wrappedKey = AES-256-GCM(kek, nonce = 0^12, aad = context).encrypt(contentKey)   (48 bytes)
// A zero nonce is safe because every kek comes from a fresh encapsulation and encrypts exactly one key.
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { gcm } from '@noble/ciphers/aes.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { DecryptionError, expectBytes } from '../errors.ts';
import { randomBytes } from '../random.ts';
import { concatBytes, utf8ToBytes } from '../bytes.ts';

export const KEM_SIZES = { publicKey: 1184, secretKey: 2400, ciphertext: 1088, wrappedKey: 48 } as const;
const WRAP_INFO = utf8ToBytes('tensorguard/release-key-wrap/v1');
const GCM_NONCE = 12;

export interface KemKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export function generateKemKeyPair(options: { seed?: Uint8Array } = {}): KemKeyPair {
  const { publicKey, secretKey } = options.seed ? ml_kem768.keygen(expectBytes('seed', options.seed, 64)) : ml_kem768.keygen();
  return { publicKey, secretKey };
}

export function wrapContentKey(options: { contentKey: Uint8Array; recipientPublicKey: Uint8Array; context: Uint8Array }): {
  kemCiphertext: Uint8Array;
  wrappedKey: Uint8Array;
} {
  expectBytes('contentKey', options.contentKey, 32);
  expectBytes('recipientPublicKey', options.recipientPublicKey, KEM_SIZES.publicKey);
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(options.recipientPublicKey);
  const kek = hkdf(sha256, sharedSecret, undefined, concatBytes(WRAP_INFO, options.context), 32);
  const wrappedKey = gcm(kek, new Uint8Array(GCM_NONCE), options.context).encrypt(options.contentKey);
  return { kemCiphertext: cipherText, wrappedKey };
}

export function unwrapContentKey(options: {
  kemCiphertext: Uint8Array;
  wrappedKey: Uint8Array;
  secretKey: Uint8Array;
  context: Uint8Array;
}): Uint8Array {
  expectBytes('kemCiphertext', options.kemCiphertext, KEM_SIZES.ciphertext);
  expectBytes('wrappedKey', options.wrappedKey, KEM_SIZES.wrappedKey);
  expectBytes('secretKey', options.secretKey, KEM_SIZES.secretKey);
  const shared = ml_kem768.decapsulate(options.kemCiphertext, options.secretKey);
  const kek = hkdf(sha256, shared, undefined, concatBytes(WRAP_INFO, options.context), 32);
  try {
    return gcm(kek, new Uint8Array(GCM_NONCE), options.context).decrypt(options.wrappedKey);
  } catch (cause) {
    throw new DecryptionError('release key is not wrapped for this robot (or was altered)', undefined, cause);
  }
}

/** AES-256-GCM with a random 96-bit nonce; output = nonce || ciphertext || tag. */
export function sealPayload(options: { key: Uint8Array; plaintext: Uint8Array; aad: Uint8Array }): Uint8Array {
  expectBytes('key', options.key, 32);
  const nonce = randomBytes(GCM_NONCE);
  return concatBytes(nonce, gcm(options.key, nonce, options.aad).encrypt(options.plaintext));
}

export function openPayload(options: { key: Uint8Array; sealed: Uint8Array; aad: Uint8Array }): Uint8Array {
  expectBytes('key', options.key, 32);
  if (!(options.sealed instanceof Uint8Array) || options.sealed.length < GCM_NONCE + 16)
    throw new DecryptionError('sealed payload is too short');
  try {
    return gcm(options.key, options.sealed.subarray(0, GCM_NONCE), options.aad).decrypt(options.sealed.subarray(GCM_NONCE));
  } catch (cause) {
    throw new DecryptionError('payload does not decrypt under this key (altered or wrong key)', undefined, cause);
  }
}
