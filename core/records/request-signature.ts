// Robot request authentication: every robot request is signed (ML-DSA-44) over the fingerprint of
// method, path, timestamp, nonce and SHA-256 of the body. The server adds freshness (timestamp window)
// and single use (nonce store); this module is the pure part both sides share.
import { ByteWriter } from '../codec/binary.ts';
import { fingerprint, sha256 } from '../codec/fingerprint.ts';
import { signFingerprint, verifyFingerprint } from '../crypto/sign.ts';
import { bytesToHex } from '../bytes.ts';
import { randomBytes } from '../random.ts';
import { RecordType } from './signed.ts';

export const ROBOT_HEADERS = {
  robot: 'x-tg-robot',
  timestamp: 'x-tg-timestamp',
  nonce: 'x-tg-nonce',
  signature: 'x-tg-signature',
} as const;

export function robotRequestFingerprint(options: { method: string; path: string; timestamp: number; nonce: string; body: Uint8Array }): Uint8Array {
  const bytes = new ByteWriter()
    .header(RecordType.robotRequest, 1)
    .str(options.method.toUpperCase(), 16)
    .str(options.path, 4096)
    .u64(options.timestamp)
    .str(options.nonce, 64)
    .fixed(sha256(options.body), 32)
    .finish();
  return fingerprint({ domain: 'robot-request/v1', bytes });
}

export function signRobotRequest(options: { method: string; path: string; body: Uint8Array; secretKey: Uint8Array; timestamp?: number; nonce?: string }): {
  timestamp: number;
  nonce: string;
  signature: Uint8Array;
} {
  const timestamp = options.timestamp ?? Date.now();
  const nonce = options.nonce ?? bytesToHex(randomBytes(16));
  const fp = robotRequestFingerprint({ method: options.method, path: options.path, timestamp, nonce, body: options.body });
  return { timestamp, nonce, signature: signFingerprint({ algorithm: 'ml-dsa-44', fingerprint: fp, secretKey: options.secretKey }) };
}

export function verifyRobotRequest(options: {
  method: string;
  path: string;
  timestamp: number;
  nonce: string;
  body: Uint8Array;
  signature: Uint8Array;
  publicKey: Uint8Array;
}): void {
  const fp = robotRequestFingerprint(options);
  verifyFingerprint({ algorithm: 'ml-dsa-44', fingerprint: fp, signature: options.signature, publicKey: options.publicKey, what: 'robot request' });
}
