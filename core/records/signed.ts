// The signed envelope every officer- or robot-signed record travels in, and the trust check around it.
//
// layout: "TG" (0x80 | type) 0x01 | bytes(body) | u8 algorithm | bytes(signerPublicKey) | bytes(signature)
// The signature covers fingerprint(domain, body), where body is the record's own canonical encoding
// (which starts with "TG" type version). Verifiers then check the signer against keys they pinned.
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint } from '../codec/fingerprint.ts';
import { FormatError, UntrustedSignerError } from '../errors.ts';
import { equalBytes } from '../bytes.ts';
import { signFingerprint, verifyFingerprint, type SignatureAlgorithm } from '../crypto/sign.ts';

export const RecordType = {
  keyRecord: 1,
  roundConfig: 2,
  updatePackage: 3,
  contributionManifest: 4,
  releaseManifest: 5,
  robotEnrollment: 6,
  robotRequest: 7,
  releasePayload: 8,
} as const;

const ALG_CODE: Record<SignatureAlgorithm, number> = { 'ml-dsa-44': 1, 'ml-dsa-65': 2 };
const ALG_NAME: Record<number, SignatureAlgorithm> = { 1: 'ml-dsa-44', 2: 'ml-dsa-65' };

export interface SignedEnvelope {
  body: Uint8Array;
  algorithm: SignatureAlgorithm;
  signerPublicKey: Uint8Array;
  signature: Uint8Array;
}

export function encodeSignedEnvelope(options: { type: number; envelope: SignedEnvelope; maxBody: number }): Uint8Array {
  const { envelope } = options;
  return new ByteWriter()
    .header(0x80 | options.type, 1)
    .bytes(envelope.body, options.maxBody)
    .u8(ALG_CODE[envelope.algorithm])
    .bytes(envelope.signerPublicKey, 4096)
    .bytes(envelope.signature, 8192)
    .finish();
}

/** Reads the envelope and leaves the reader positioned after it (callers may read trailing fields). */
export function readSignedEnvelope(options: { reader: ByteReader; type: number; maxBody: number }): SignedEnvelope {
  const r = options.reader;
  r.header(0x80 | options.type, [1]);
  const body = r.bytes(options.maxBody, 'body');
  const code = r.u8('algorithm');
  const algorithm = ALG_NAME[code];
  if (!algorithm) throw new FormatError(`signed record: unknown signature algorithm ${code}`);
  const signerPublicKey = r.bytes(4096, 'signer public key');
  const signature = r.bytes(8192, 'signature');
  return { body, algorithm, signerPublicKey, signature };
}

export function signRecord(options: {
  type: number;
  domain: string;
  body: Uint8Array;
  algorithm: SignatureAlgorithm;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  maxBody: number;
}): Uint8Array {
  const fp = fingerprint({ domain: options.domain, bytes: options.body });
  const signature = signFingerprint({ algorithm: options.algorithm, fingerprint: fp, secretKey: options.secretKey });
  return encodeSignedEnvelope({
    type: options.type,
    maxBody: options.maxBody,
    envelope: { body: options.body, algorithm: options.algorithm, signerPublicKey: options.publicKey, signature },
  });
}

/**
 * Parses and verifies a signed record: exact bytes (no trailing data), the expected algorithm, a valid
 * signature, and — when `trustedKeys` is given — a signer among them.
 */
export function openSignedRecord(options: {
  bytes: Uint8Array;
  type: number;
  /** The fingerprint domain, or a function of the body for records whose domain names their version. */
  domain: string | ((body: Uint8Array) => string);
  algorithm: SignatureAlgorithm;
  maxBody: number;
  trustedKeys?: readonly Uint8Array[];
  what: string;
}): { envelope: SignedEnvelope; fingerprint: Uint8Array } {
  if (!(options.bytes instanceof Uint8Array)) throw new FormatError(`${options.what}: expected bytes`);
  const r = new ByteReader(options.bytes, options.what);
  const envelope = readSignedEnvelope({ reader: r, type: options.type, maxBody: options.maxBody });
  r.end();
  if (envelope.algorithm !== options.algorithm)
    throw new FormatError(`${options.what}: signed with ${envelope.algorithm}, ${options.algorithm} required`);
  const domain = typeof options.domain === 'function' ? options.domain(envelope.body) : options.domain;
  const fp = fingerprint({ domain, bytes: envelope.body });
  verifyFingerprint({
    algorithm: envelope.algorithm,
    fingerprint: fp,
    signature: envelope.signature,
    publicKey: envelope.signerPublicKey,
    what: options.what,
  });
  if (options.trustedKeys && !options.trustedKeys.some((k) => equalBytes(k, envelope.signerPublicKey)))
    throw new UntrustedSignerError(`${options.what}: signed by a key that is not a pinned officer key`);
  return { envelope, fingerprint: fp };
}
