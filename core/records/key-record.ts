// The HE key record: which BFV public key robots must encrypt to, signed by an officer (ML-DSA-65).
// Robots accept a key record only if its signer is an officer key pinned at enrollment, so a key the
// server swapped in is refused (DESIGN.md trust model 2).
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint } from '../codec/fingerprint.ts';
import { RecordType, openSignedRecord, signRecord } from './signed.ts';

export const KEY_RECORD_DOMAIN = 'he-key-record/v1';
const MAX_PUBLIC_KEY = 1 << 20;
const MAX_BODY = MAX_PUBLIC_KEY + 4096;

export interface HeKeyRecord {
  orgId: string;
  keyVersion: number;
  paramSetId: string;
  parmsId: Uint8Array;
  publicKey: Uint8Array;
  createdAt: number;
}

export function encodeKeyRecord(options: { record: HeKeyRecord }): Uint8Array {
  const k = options.record;
  return new ByteWriter()
    .header(RecordType.keyRecord, 1)
    .str(k.orgId, 64)
    .u32(k.keyVersion)
    .str(k.paramSetId, 64)
    .fixed(k.parmsId, 32)
    .bytes(k.publicKey, MAX_PUBLIC_KEY)
    .u64(k.createdAt)
    .finish();
}

export function decodeKeyRecord(options: { bytes: Uint8Array }): HeKeyRecord {
  const r = new ByteReader(options.bytes, 'HE key record');
  r.header(RecordType.keyRecord, [1]);
  const record: HeKeyRecord = {
    orgId: r.str(64, 'orgId'),
    keyVersion: r.u32('keyVersion'),
    paramSetId: r.str(64, 'paramSetId'),
    parmsId: r.fixed(32, 'parmsId'),
    publicKey: r.bytes(MAX_PUBLIC_KEY, 'publicKey'),
    createdAt: r.u64('createdAt'),
  };
  r.end();
  return record;
}

export function keyRecordFingerprint(options: { record: HeKeyRecord }): Uint8Array {
  return fingerprint({ domain: KEY_RECORD_DOMAIN, bytes: encodeKeyRecord(options) });
}

export function signKeyRecord(options: { record: HeKeyRecord; secretKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
  return signRecord({
    type: RecordType.keyRecord,
    domain: KEY_RECORD_DOMAIN,
    body: encodeKeyRecord({ record: options.record }),
    algorithm: 'ml-dsa-65',
    secretKey: options.secretKey,
    publicKey: options.publicKey,
    maxBody: MAX_BODY,
  });
}

export function openKeyRecord(options: { bytes: Uint8Array; trustedKeys?: readonly Uint8Array[] }): {
  record: HeKeyRecord;
  fingerprint: Uint8Array;
  signerPublicKey: Uint8Array;
} {
  const { envelope, fingerprint: fp } = openSignedRecord({
    bytes: options.bytes,
    type: RecordType.keyRecord,
    domain: KEY_RECORD_DOMAIN,
    algorithm: 'ml-dsa-65',
    maxBody: MAX_BODY,
    trustedKeys: options.trustedKeys,
    what: 'HE key record',
  });
  return { record: decodeKeyRecord({ bytes: envelope.body }), fingerprint: fp, signerPublicKey: envelope.signerPublicKey };
}
