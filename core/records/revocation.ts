// The HE key revocation: the officer-signed (ML-DSA-65) statement that an HE key version must no longer
// be encrypted to. The server refuses round opens and contributions under a revoked version (409
// `key_revoked`); robots fetch revocations and refuse to encrypt to a revoked key record — but only
// after checking the revocation's signature against the officer keys they pinned at enrollment, so a
// server cannot invent one (nor can it hide one it never received; withholding is the limit of any
// server-distributed revocation list).
//
// body: "TG" 0x30 0x01 | orgId str64 | keyVersion u32 | heKeyFingerprint [32] (the revoked key record's
//       fingerprint, so the revocation names exactly one record) | reason str(1000) | revokedAt u64
// Type 0x30 starts the key-lifecycle records, clear of the numbered records (1-9) and 0x20.
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint } from '../codec/fingerprint.ts';
import { FormatError } from '../errors.ts';
import { equalBytes } from '../bytes.ts';
import { openSignedRecord, signRecord } from './signed.ts';

export const KEY_REVOCATION_TYPE = 0x30;
export const KEY_REVOCATION_DOMAIN = 'he-key-revocation/v1';
export const MAX_REVOCATION_REASON = 1000;
const MAX_BODY = 4 * 1024;

export interface KeyRevocation {
  orgId: string;
  keyVersion: number;
  /** keyRecordFingerprint of the revoked HE key record. */
  heKeyFingerprint: Uint8Array;
  reason: string;
  revokedAt: number;
}

export function encodeKeyRevocation(options: { revocation: KeyRevocation }): Uint8Array {
  const r = options.revocation;
  if (typeof r.reason !== 'string' || r.reason.trim().length === 0) throw new TypeError('"reason" expected non-empty string, got empty');
  if (!Number.isSafeInteger(r.keyVersion) || r.keyVersion < 1) throw new RangeError(`"keyVersion" expected integer >= 1, got ${r.keyVersion}`);
  return new ByteWriter()
    .header(KEY_REVOCATION_TYPE, 1)
    .str(r.orgId, 64)
    .u32(r.keyVersion)
    .fixed(r.heKeyFingerprint, 32)
    .str(r.reason, MAX_REVOCATION_REASON)
    .u64(r.revokedAt)
    .finish();
}

export function decodeKeyRevocation(options: { bytes: Uint8Array }): KeyRevocation {
  const r = new ByteReader(options.bytes, 'key revocation');
  r.header(KEY_REVOCATION_TYPE, [1]);
  const out: KeyRevocation = {
    orgId: r.str(64, 'orgId'),
    keyVersion: r.u32('keyVersion'),
    heKeyFingerprint: r.fixed(32, 'heKeyFingerprint'),
    reason: r.str(MAX_REVOCATION_REASON, 'reason'),
    revokedAt: r.u64('revokedAt'),
  };
  r.end();
  if (out.keyVersion < 1) throw new FormatError('key revocation: keyVersion must be >= 1');
  if (out.reason.trim().length === 0) throw new FormatError('key revocation: reason must not be empty');
  return out;
}

export function keyRevocationFingerprint(options: { revocation: KeyRevocation }): Uint8Array {
  return fingerprint({ domain: KEY_REVOCATION_DOMAIN, bytes: encodeKeyRevocation(options) });
}

export function signKeyRevocation(options: { revocation: KeyRevocation; secretKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
  return signRecord({
    type: KEY_REVOCATION_TYPE,
    domain: KEY_REVOCATION_DOMAIN,
    body: encodeKeyRevocation({ revocation: options.revocation }),
    algorithm: 'ml-dsa-65',
    secretKey: options.secretKey,
    publicKey: options.publicKey,
    maxBody: MAX_BODY,
  });
}

export function openKeyRevocation(options: { bytes: Uint8Array; trustedKeys?: readonly Uint8Array[] }): {
  record: KeyRevocation;
  fingerprint: Uint8Array;
  signerPublicKey: Uint8Array;
} {
  const { envelope, fingerprint: fp } = openSignedRecord({
    bytes: options.bytes,
    type: KEY_REVOCATION_TYPE,
    domain: KEY_REVOCATION_DOMAIN,
    algorithm: 'ml-dsa-65',
    maxBody: MAX_BODY,
    trustedKeys: options.trustedKeys,
    what: 'key revocation',
  });
  return { record: decodeKeyRevocation({ bytes: envelope.body }), fingerprint: fp, signerPublicKey: envelope.signerPublicKey };
}

/**
 * The first revocation among `revocations` (signed envelopes as served) that verifies under one of
 * `trustedKeys` and names exactly this key record (organization, version and fingerprint); null when
 * none does. Revocations that do not verify are ignored, never believed.
 */
export function findKeyRevocation(options: {
  revocations: readonly Uint8Array[];
  trustedKeys: readonly Uint8Array[];
  orgId: string;
  keyVersion: number;
  heKeyFingerprint: Uint8Array;
}): KeyRevocation | null {
  for (const bytes of options.revocations) {
    let record: KeyRevocation;
    try {
      record = openKeyRevocation({ bytes, trustedKeys: options.trustedKeys }).record;
    } catch {
      continue;
    }
    if (record.orgId === options.orgId && record.keyVersion === options.keyVersion && equalBytes(record.heKeyFingerprint, options.heKeyFingerprint)) return record;
  }
  return null;
}
