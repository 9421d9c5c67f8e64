// Fixtures for the suites that drive a real server process over HTTP: an organization with a fleet, an
// officer key, an HE key record (real BFV keys, or a stand-in public key when the test only needs
// well-formed ciphertexts), enrolled robots, signed round configs, and robot-signed uploads.
import { toBase64 } from '../../core/bytes.ts';
import { generateSigningKeyPair, type SigningKeyPair } from '../../core/crypto/sign.ts';
import { generateKemKeyPair } from '../../core/crypto/kem.ts';
import { randomBytes } from '../../core/random.ts';
import { ROBOT_HEADERS, signRobotRequest } from '../../core/records/request-signature.ts';
import { keyRecordFingerprint, signKeyRecord } from '../../core/records/key-record.ts';
import { generateKeyPair, type HeKeyPair } from '../../core/he/seal.ts';
import { PARAM_SET_ID } from '../../core/he/params.ts';
import { makeRoundConfig } from '../../server/testing/harness.ts';

export interface HttpAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** A person's request (session token) against a base URL that may change across restarts. */
export type PersonRequest = (method: string, path: string, body?: unknown) => Promise<HttpAnswer>;

export async function request(options: { url: string; method: string; path: string; token?: string; body?: unknown; headers?: Record<string, string>; raw?: Uint8Array }): Promise<HttpAnswer> {
  const res = await fetch(options.url + options.path, {
    method: options.method,
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body: options.raw ? (options.raw as Uint8Array<ArrayBuffer>) : options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(30_000),
  });
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('json') ? await res.json() : new Uint8Array(await res.arrayBuffer());
  return { status: res.status, body, headers: res.headers };
}

export interface FleetRobot {
  id: string;
  keys: SigningKeyPair;
}

export interface FleetSetup {
  token: string;
  orgId: string;
  fleetId: string;
  officer: SigningKeyPair;
  he: HeKeyPair;
  keyFingerprint: Uint8Array;
  robots: FleetRobot[];
}

function check(answer: HttpAnswer, status: number, what: string): HttpAnswer {
  if (answer.status !== status) throw new Error(`${what}: expected ${status}, got ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer;
}

/**
 * Bootstraps the server, creates a fleet, registers an officer key and HE key version 1, and enrolls
 * `robotCount` robots. `realHeKey: false` registers a random stand-in public key (fast) with the real
 * parms id, for tests that only need ciphertexts the server accepts.
 */
export async function setupFleet(options: { person: (token: string | undefined) => PersonRequest; robotCount: number; realHeKey: boolean }): Promise<FleetSetup> {
  const anonymous = options.person(undefined);
  const boot = check(await anonymous('POST', '/v1/bootstrap', { org: 'Fixture Robotics', user: 'olivia', password: 'fixture password 1' }), 201, 'bootstrap');
  const token = boot.body.token as string;
  const orgId = boot.body.org.id as string;
  const as = options.person(token);
  const fleetId = check(await as('POST', '/v1/fleets', { name: 'arms' }), 201, 'fleet').body.id as string;
  const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
  check(await as('POST', '/v1/officer-keys', { publicKey: toBase64(officer.publicKey) }), 201, 'officer key');
  let he: HeKeyPair = await generateKeyPair({ paramSetId: PARAM_SET_ID });
  if (!options.realHeKey) he = { ...he, publicKey: randomBytes(1024), secretKey: new Uint8Array(0) };
  const record = { orgId, keyVersion: 1, paramSetId: PARAM_SET_ID, parmsId: he.parmsId, publicKey: he.publicKey, createdAt: Date.now() };
  const signed = signKeyRecord({ record, secretKey: officer.secretKey, publicKey: officer.publicKey });
  check(await as('POST', '/v1/he-keys', { record: toBase64(signed) }), 201, 'he key');
  const robots: FleetRobot[] = [];
  for (let i = 0; i < options.robotCount; i++) {
    const t = check(await as('POST', `/v1/fleets/${fleetId}/enrollment-tokens`), 201, 'enrollment token');
    const keys = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
    const res = check(
      await anonymous('POST', '/v1/enroll', {
        token: t.body.token,
        name: `arm-${i}`,
        dsaPublicKey: toBase64(keys.publicKey),
        kemPublicKey: toBase64(generateKemKeyPair().publicKey),
        attestation: toBase64(randomBytes(32)),
      }),
      201,
      'enroll',
    );
    robots.push({ id: res.body.robotId, keys });
  }
  return { token, orgId, fleetId, officer, he, keyFingerprint: keyRecordFingerprint({ record }), robots };
}

/** Opens a round (1 ciphertext per contribution) and returns its config and fingerprint. */
export async function openRound(options: { setup: FleetSetup; person: PersonRequest; roundId: string; quorum: number; maxContributors: number }) {
  const { setup } = options;
  const made = makeRoundConfig({
    officer: setup.officer,
    orgId: setup.orgId,
    fleetId: setup.fleetId,
    keyFingerprint: setup.keyFingerprint,
    now: Date.now(),
    roundId: options.roundId,
    quorum: options.quorum,
    maxContributors: options.maxContributors,
  });
  const opened = check(await options.person('POST', '/v1/rounds', { config: toBase64(made.bytes) }), 201, 'open round');
  return { config: made.config, fingerprint: Uint8Array.from(Buffer.from(opened.body.configFingerprint as string, 'hex')) };
}

/** The robot request signature headers for one attempt (fresh timestamp and nonce). */
export function robotSignedHeaders(options: { robot: FleetRobot; method: string; path: string; body: Uint8Array }): Record<string, string> {
  const signed = signRobotRequest({ method: options.method, path: options.path, body: options.body, secretKey: options.robot.keys.secretKey });
  return {
    [ROBOT_HEADERS.robot]: options.robot.id,
    [ROBOT_HEADERS.timestamp]: String(signed.timestamp),
    [ROBOT_HEADERS.nonce]: signed.nonce,
    [ROBOT_HEADERS.signature]: toBase64(signed.signature),
  };
}
