// Enrollment: the bundle an officer hands a robot out of band, and the robot's key attestation.
//
// The bundle carries the server URL, the fleet, a one-time token (for the server) and the officer
// public keys the robot pins. It also carries `attestKey` = HKDF(officer attestRoot, bundle id), which
// never goes to the server: the robot MACs its public keys with it at enrollment, and the officer
// checks that MAC before trusting a robot key in a contribution manifest or wrapping a release key to
// it. A server that invents robots or swaps a robot's KEM key cannot produce the MAC.
import { hmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { ByteWriter } from '../codec/binary.ts';
import { fingerprint } from '../codec/fingerprint.ts';
import { FormatError, SignatureInvalidError } from '../errors.ts';
import { equalBytes, fromBase64, toBase64, utf8ToBytes } from '../bytes.ts';
import { RecordType } from './signed.ts';

export const BUNDLE_FORMAT = 'tensorguard-enrollment-bundle/v1';

export interface EnrollmentBundle {
  format: typeof BUNDLE_FORMAT;
  serverUrl: string;
  orgId: string;
  fleetId: string;
  bundleId: string;
  token: string;
  attestKey: Uint8Array;
  officerPublicKeys: Uint8Array[];
  expiresAt: number;
}

const b64 = z.string().max(1 << 16);
const BundleJson = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    serverUrl: z.string().url().max(2048),
    orgId: z.string().min(1).max(64),
    fleetId: z.string().min(1).max(64),
    bundleId: z.string().min(1).max(64),
    token: z.string().min(16).max(256),
    attestKey: b64,
    officerPublicKeys: z.array(b64).min(1).max(16),
    expiresAt: z.number().int().nonnegative(),
  })
  .strict();

export function encodeEnrollmentBundle(options: { bundle: EnrollmentBundle }): string {
  const b = options.bundle;
  return JSON.stringify(
    { ...b, attestKey: toBase64(b.attestKey), officerPublicKeys: b.officerPublicKeys.map((k) => toBase64(k)) },
    null,
    2,
  );
}

export function decodeEnrollmentBundle(options: { text: string }): EnrollmentBundle {
  let json: unknown;
  try {
    json = JSON.parse(options.text);
  } catch {
    throw new FormatError('enrollment bundle: not JSON');
  }
  const parsed = BundleJson.safeParse(json);
  if (!parsed.success) throw new FormatError(`enrollment bundle: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const attestKey = fromBase64(parsed.data.attestKey, 'attestKey');
  if (attestKey.length !== 32) throw new FormatError('enrollment bundle: attestKey must be 32 bytes');
  const officerPublicKeys = parsed.data.officerPublicKeys.map((k) => fromBase64(k, 'officerPublicKeys'));
  if (officerPublicKeys.some((k) => k.length !== 1952)) throw new FormatError('enrollment bundle: officer keys must be ML-DSA-65 public keys (1952 bytes)');
  return { ...parsed.data, attestKey, officerPublicKeys };
}

/** The per-bundle attestation key, derived by the officer from its secret attestation root. */
export function deriveAttestKey(options: { attestRoot: Uint8Array; bundleId: string }): Uint8Array {
  return hkdf(sha256, options.attestRoot, undefined, utf8ToBytes(`tensorguard/enroll-attest/v1/${options.bundleId}`), 32);
}

function robotKeysFingerprint(options: { fleetId: string; bundleId: string; dsaPublicKey: Uint8Array; kemPublicKey: Uint8Array }): Uint8Array {
  const bytes = new ByteWriter()
    .header(RecordType.robotEnrollment, 1)
    .str(options.fleetId, 64)
    .str(options.bundleId, 64)
    .bytes(options.dsaPublicKey, 4096)
    .bytes(options.kemPublicKey, 4096)
    .finish();
  return fingerprint({ domain: 'robot-enrollment/v1', bytes });
}

export function attestRobotKeys(options: {
  attestKey: Uint8Array;
  fleetId: string;
  bundleId: string;
  dsaPublicKey: Uint8Array;
  kemPublicKey: Uint8Array;
}): Uint8Array {
  return hmac(sha256, options.attestKey, robotKeysFingerprint(options));
}

/** Throws SignatureInvalidError unless the attestation was made with this bundle's key over these keys. */
export function verifyRobotAttestation(options: {
  attestKey: Uint8Array;
  fleetId: string;
  bundleId: string;
  dsaPublicKey: Uint8Array;
  kemPublicKey: Uint8Array;
  attestation: Uint8Array;
}): void {
  const expected = attestRobotKeys(options);
  if (!(options.attestation instanceof Uint8Array) || !equalBytes(expected, options.attestation))
    throw new SignatureInvalidError('robot keys are not attested by an enrollment bundle of this officer');
}
