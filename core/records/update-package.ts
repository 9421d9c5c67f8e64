// The update package a robot posts: metadata signed with the robot's ML-DSA-44 key, plus the BFV
// ciphertexts. The signature covers the fingerprint of the metadata, which includes SHA-256 of the
// ciphertext bytes — never the raw body (ML-DSA cost grows with message length).
//
// layout: signed envelope (type 3, body = metadata) | bytes(ciphertexts)
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint, sha256 } from '../codec/fingerprint.ts';
import { IntegrityError, SignatureInvalidError } from '../errors.ts';
import { equalBytes } from '../bytes.ts';
import { signFingerprint, verifyFingerprint } from '../crypto/sign.ts';
import { RecordType, encodeSignedEnvelope, readSignedEnvelope } from './signed.ts';
import { randomBytes } from '../random.ts';

export const UPDATE_PACKAGE_DOMAIN = 'update-package/v1';
const MAX_META = 4096;
export const MAX_PACKAGE_CIPHERTEXT_BYTES = 512 * 1024 * 1024;

export interface UpdatePackageMeta {
  roundId: string;
  robotId: string;
  fleetId: string;
  keyVersion: number;
  roundConfigFingerprint: Uint8Array;
  valueCount: number;
  ciphertextCount: number;
  ciphertextSha256: Uint8Array;
  createdAt: number;
  nonce: Uint8Array;
}

export function encodeUpdatePackageMeta(options: { meta: UpdatePackageMeta }): Uint8Array {
  const m = options.meta;
  return new ByteWriter()
    .header(RecordType.updatePackage, 1)
    .str(m.roundId, 64)
    .str(m.robotId, 64)
    .str(m.fleetId, 64)
    .u32(m.keyVersion)
    .fixed(m.roundConfigFingerprint, 32)
    .u64(m.valueCount)
    .u32(m.ciphertextCount)
    .fixed(m.ciphertextSha256, 32)
    .u64(m.createdAt)
    .fixed(m.nonce, 16)
    .finish();
}

export function decodeUpdatePackageMeta(options: { bytes: Uint8Array }): UpdatePackageMeta {
  const r = new ByteReader(options.bytes, 'update package');
  r.header(RecordType.updatePackage, [1]);
  const meta: UpdatePackageMeta = {
    roundId: r.str(64, 'roundId'),
    robotId: r.str(64, 'robotId'),
    fleetId: r.str(64, 'fleetId'),
    keyVersion: r.u32('keyVersion'),
    roundConfigFingerprint: r.fixed(32, 'roundConfigFingerprint'),
    valueCount: r.u64('valueCount'),
    ciphertextCount: r.u32('ciphertextCount'),
    ciphertextSha256: r.fixed(32, 'ciphertextSha256'),
    createdAt: r.u64('createdAt'),
    nonce: r.fixed(16, 'nonce'),
  };
  r.end();
  return meta;
}

export function buildUpdatePackage(options: {
  meta: Omit<UpdatePackageMeta, 'ciphertextSha256' | 'nonce'>;
  ciphertexts: Uint8Array;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}): { bytes: Uint8Array; fingerprint: Uint8Array } {
  const meta: UpdatePackageMeta = { ...options.meta, ciphertextSha256: sha256(options.ciphertexts), nonce: randomBytes(16) };
  const body = encodeUpdatePackageMeta({ meta });
  const fp = fingerprint({ domain: UPDATE_PACKAGE_DOMAIN, bytes: body });
  const signature = signFingerprint({ algorithm: 'ml-dsa-44', fingerprint: fp, secretKey: options.secretKey });
  const head = encodeSignedEnvelope({
    type: RecordType.updatePackage,
    maxBody: MAX_META,
    envelope: { body, algorithm: 'ml-dsa-44', signerPublicKey: options.publicKey, signature },
  });
  const tail = new ByteWriter().bytes(options.ciphertexts, MAX_PACKAGE_CIPHERTEXT_BYTES).finish();
  const bytes = new Uint8Array(head.length + tail.length);
  bytes.set(head);
  bytes.set(tail, head.length);
  return { bytes, fingerprint: fp };
}

/**
 * Parses a package and verifies it was signed by `robotPublicKey` and that the ciphertexts are the
 * ones the signature names. Throws FormatError, SignatureInvalidError or IntegrityError.
 */
export function openUpdatePackage(options: { bytes: Uint8Array; robotPublicKey: Uint8Array }): {
  package: UpdatePackageMeta;
  ciphertexts: Uint8Array;
  fingerprint: Uint8Array;
  signature: Uint8Array;
} {
  const r = new ByteReader(options.bytes, 'update package');
  const envelope = readSignedEnvelope({ reader: r, type: RecordType.updatePackage, maxBody: MAX_META });
  const ciphertexts = r.bytes(MAX_PACKAGE_CIPHERTEXT_BYTES, 'ciphertexts');
  r.end();
  if (envelope.algorithm !== 'ml-dsa-44') throw new SignatureInvalidError('update package: robots sign with ML-DSA-44');
  if (!equalBytes(envelope.signerPublicKey, options.robotPublicKey))
    throw new SignatureInvalidError('update package: signed by a key other than this robot\'s registered key');
  const fp = fingerprint({ domain: UPDATE_PACKAGE_DOMAIN, bytes: envelope.body });
  verifyFingerprint({ algorithm: 'ml-dsa-44', fingerprint: fp, signature: envelope.signature, publicKey: options.robotPublicKey, what: 'update package' });
  const meta = decodeUpdatePackageMeta({ bytes: envelope.body });
  if (!equalBytes(sha256(ciphertexts), meta.ciphertextSha256))
    throw new IntegrityError('update package: ciphertext bytes do not match the signed SHA-256');
  return { package: meta, ciphertexts, fingerprint: fp, signature: envelope.signature };
}

/** Officer-side check of a manifest entry: the signature of a package fingerprint by a robot key. */
export function verifyPackageSignature(options: { fingerprint: Uint8Array; signature: Uint8Array; robotPublicKey: Uint8Array }): void {
  verifyFingerprint({ algorithm: 'ml-dsa-44', fingerprint: options.fingerprint, signature: options.signature, publicKey: options.robotPublicKey, what: 'contribution' });
}
