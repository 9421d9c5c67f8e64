// The round rejection: the officer-signed (ML-DSA-65) statement that a finalized round's aggregate will
// not be released, with the officer's reason. A round is decided once — by a release (kind "release")
// or by this record — so a rejection signed offline and a release signed elsewhere meanwhile conflict
// on the server (409 `round_decided`) instead of both taking effect.
//
// body: "TG" 0x20 0x01 | roundId, orgId, fleetId str64 | roundConfigFingerprint [32] |
//       aggregateSha256 [32] (the aggregate the officer reviewed; zeros if rejected before decrypting) |
//       reason str(2000) | createdAt u64
// Type 0x20 keeps clear of the numbered records (1-9) other record families grow into.
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint } from '../codec/fingerprint.ts';
import { FormatError } from '../errors.ts';
import { openSignedRecord, signRecord } from './signed.ts';

export const ROUND_REJECTION_TYPE = 0x20;
export const ROUND_REJECTION_DOMAIN = 'round-rejection/v1';
export const MAX_REJECTION_REASON = 2000;
const MAX_BODY = 8 * 1024;

export interface RoundRejection {
  roundId: string;
  orgId: string;
  fleetId: string;
  roundConfigFingerprint: Uint8Array;
  aggregateSha256: Uint8Array;
  reason: string;
  createdAt: number;
}

export function encodeRoundRejection(options: { rejection: RoundRejection }): Uint8Array {
  const r = options.rejection;
  if (typeof r.reason !== 'string' || r.reason.trim().length === 0) throw new TypeError('"reason" expected non-empty string, got empty');
  return new ByteWriter()
    .header(ROUND_REJECTION_TYPE, 1)
    .str(r.roundId, 64)
    .str(r.orgId, 64)
    .str(r.fleetId, 64)
    .fixed(r.roundConfigFingerprint, 32)
    .fixed(r.aggregateSha256, 32)
    .str(r.reason, MAX_REJECTION_REASON)
    .u64(r.createdAt)
    .finish();
}

export function decodeRoundRejection(options: { bytes: Uint8Array }): RoundRejection {
  const r = new ByteReader(options.bytes, 'round rejection');
  r.header(ROUND_REJECTION_TYPE, [1]);
  const out: RoundRejection = {
    roundId: r.str(64, 'roundId'),
    orgId: r.str(64, 'orgId'),
    fleetId: r.str(64, 'fleetId'),
    roundConfigFingerprint: r.fixed(32, 'roundConfigFingerprint'),
    aggregateSha256: r.fixed(32, 'aggregateSha256'),
    reason: r.str(MAX_REJECTION_REASON, 'reason'),
    createdAt: r.u64('createdAt'),
  };
  r.end();
  if (out.reason.trim().length === 0) throw new FormatError('round rejection: reason must not be empty');
  return out;
}

export function roundRejectionFingerprint(options: { rejection: RoundRejection }): Uint8Array {
  return fingerprint({ domain: ROUND_REJECTION_DOMAIN, bytes: encodeRoundRejection(options) });
}

export function signRoundRejection(options: { rejection: RoundRejection; secretKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
  return signRecord({
    type: ROUND_REJECTION_TYPE,
    domain: ROUND_REJECTION_DOMAIN,
    body: encodeRoundRejection({ rejection: options.rejection }),
    algorithm: 'ml-dsa-65',
    secretKey: options.secretKey,
    publicKey: options.publicKey,
    maxBody: MAX_BODY,
  });
}

export function openRoundRejection(options: { bytes: Uint8Array; trustedKeys?: readonly Uint8Array[] }): {
  record: RoundRejection;
  fingerprint: Uint8Array;
  signerPublicKey: Uint8Array;
} {
  const { envelope, fingerprint: fp } = openSignedRecord({
    bytes: options.bytes,
    type: ROUND_REJECTION_TYPE,
    domain: ROUND_REJECTION_DOMAIN,
    algorithm: 'ml-dsa-65',
    maxBody: MAX_BODY,
    trustedKeys: options.trustedKeys,
    what: 'round rejection',
  });
  return { record: decodeRoundRejection({ bytes: envelope.body }), fingerprint: fp, signerPublicKey: envelope.signerPublicKey };
}
