// Test harness for the server suites: a real app over a real libsql file in a temp dir, a settable
// clock, and helpers that act as people, officers and robots (signing with the real core/ records).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Hono } from 'hono';
import { createApp } from '../app.ts';
import { closeDatabase, openDatabase, type Database } from '../db/client.ts';
import { createFsBlobStore, type BlobStore } from '../blobs/fs-store.ts';
import { silentLogger, type Logger } from '../logger.ts';
import type { AppEnv } from '../http/context.ts';
import { serverAuditKeyFromSeed, type ServerAuditKey } from '../audit/server-key.ts';
import { toBase64 } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair, type SigningKeyPair } from '../../core/crypto/sign.ts';
import { generateKemKeyPair } from '../../core/crypto/kem.ts';
import { ROBOT_HEADERS, signRobotRequest } from '../../core/records/request-signature.ts';
import { keyRecordFingerprint, signKeyRecord, type HeKeyRecord } from '../../core/records/key-record.ts';
import { signRoundConfig, type RoundConfig } from '../../core/records/round-config.ts';
import { buildUpdatePackage } from '../../core/records/update-package.ts';
import { expectedHeader } from '../../core/he/aggregate.ts';
import { PARAM_SET_ID, getParamSet } from '../../core/he/params.ts';

export interface TestServer {
  app: Hono<AppEnv>;
  db: Database;
  blobs: BlobStore;
  dir: string;
  clock: { now: number };
  close(): Promise<void>;
}

export async function createTestServer(options: { logger?: Logger; auditKey?: ServerAuditKey } = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tg-server-'));
  const db = await openDatabase({ url: `file:${join(dir, 'tensorguard.db')}` });
  const blobs = createFsBlobStore({ dir: join(dir, 'blobs') });
  const clock = { now: Date.now() };
  // A per-test audit key (tests only; a real server loads its persistent key, server/audit/server-key.ts).
  const auditKey = options.auditKey ?? serverAuditKeyFromSeed({ seed: randomBytes(32) });
  const app = createApp({ db, blobs, now: () => clock.now, logger: options.logger ?? silentLogger, auditKey });
  return {
    app,
    db,
    blobs,
    dir,
    clock,
    async close() {
      closeDatabase({ db });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ApiResponse {
  status: number;
  body: any;
  headers: Headers;
}

export async function api(options: {
  server: TestServer;
  method: string;
  path: string;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  const res = await options.server.app.request(options.path, { method: options.method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export interface TestRobot {
  id: string;
  fleetId: string;
  orgId: string;
  keys: SigningKeyPair;
}

/** A robot-signed request (core/records/request-signature.ts), with overrides for tampering tests. */
export async function robotRequest(options: {
  server: TestServer;
  robot: TestRobot;
  method: string;
  path: string;
  body?: Uint8Array;
  contentType?: string;
  tamper?: { body?: Uint8Array; timestamp?: number; nonce?: string };
  timestamp?: number;
  nonce?: string;
}): Promise<ApiResponse> {
  const body = options.body ?? new Uint8Array(0);
  const signed = signRobotRequest({
    method: options.method,
    path: options.path,
    body,
    secretKey: options.robot.keys.secretKey,
    timestamp: options.timestamp ?? options.server.clock.now,
    nonce: options.nonce,
  });
  const headers: Record<string, string> = {
    [ROBOT_HEADERS.robot]: options.robot.id,
    [ROBOT_HEADERS.timestamp]: String(options.tamper?.timestamp ?? signed.timestamp),
    [ROBOT_HEADERS.nonce]: options.tamper?.nonce ?? signed.nonce,
    [ROBOT_HEADERS.signature]: toBase64(signed.signature),
  };
  const sent = options.tamper?.body ?? body;
  if (sent.length > 0) headers['content-type'] = options.contentType ?? 'application/octet-stream';
  const res = await options.server.app.request(options.path, {
    method: options.method,
    headers,
    body: sent.length > 0 || !['GET', 'HEAD'].includes(options.method) ? (sent as Uint8Array<ArrayBuffer>) : undefined,
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  let parsed: unknown = bytes;
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('json')) parsed = JSON.parse(new TextDecoder().decode(bytes));
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Bootstraps the server (org + admin/officer) and returns the session token. */
export async function bootstrap(options: { server: TestServer; org?: string; user?: string; password?: string }) {
  const res = await api({
    server: options.server,
    method: 'POST',
    path: '/v1/bootstrap',
    body: { org: options.org ?? 'Acme Robotics', user: options.user ?? 'alice', password: options.password ?? 'correct horse battery' },
  });
  if (res.status !== 201) throw new Error(`bootstrap failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { token: string; user: { id: string; roles: string[] }; org: { id: string; name: string } };
}

export async function createFleet(options: { server: TestServer; token: string; name?: string; envelope?: unknown; dpEpsilonBudget?: number }) {
  const res = await api({
    server: options.server,
    method: 'POST',
    path: '/v1/fleets',
    token: options.token,
    body: { name: options.name ?? 'arms', envelope: options.envelope, dpEpsilonBudget: options.dpEpsilonBudget },
  });
  if (res.status !== 201) throw new Error(`fleet failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; name: string };
}

export async function enrollRobot(options: { server: TestServer; token: string; fleetId: string; name?: string }): Promise<TestRobot> {
  const t = await api({ server: options.server, method: 'POST', path: `/v1/fleets/${options.fleetId}/enrollment-tokens`, token: options.token });
  if (t.status !== 201) throw new Error(`enrollment token failed: ${t.status} ${JSON.stringify(t.body)}`);
  const keys = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
  const kem = generateKemKeyPair();
  const res = await api({
    server: options.server,
    method: 'POST',
    path: '/v1/enroll',
    body: {
      token: t.body.token,
      name: options.name ?? `robot-${randomUUID().slice(0, 8)}`,
      dsaPublicKey: toBase64(keys.publicKey),
      kemPublicKey: toBase64(kem.publicKey),
      attestation: toBase64(randomBytes(32)),
    },
  });
  if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.robotId, fleetId: res.body.fleetId, orgId: res.body.orgId, keys };
}

/** An officer key registered with the server and an HE key record (version 1) signed by it. */
export async function setupOfficer(options: { server: TestServer; token: string; orgId: string }) {
  const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
  const k = await api({ server: options.server, method: 'POST', path: '/v1/officer-keys', token: options.token, body: { publicKey: toBase64(officer.publicKey) } });
  if (k.status !== 201) throw new Error(`officer key failed: ${k.status} ${JSON.stringify(k.body)}`);
  const record: HeKeyRecord = { orgId: options.orgId, keyVersion: 1, paramSetId: PARAM_SET_ID, parmsId: randomBytes(32), publicKey: randomBytes(1024), createdAt: options.server.clock.now };
  const signed = signKeyRecord({ record, secretKey: officer.secretKey, publicKey: officer.publicKey });
  const h = await api({ server: options.server, method: 'POST', path: '/v1/he-keys', token: options.token, body: { record: toBase64(signed) } });
  if (h.status !== 201) throw new Error(`he key failed: ${h.status} ${JSON.stringify(h.body)}`);
  return { officer, record, keyFingerprint: keyRecordFingerprint({ record }) };
}

/** A signed round config: 1,000 values, 8-bit fields, one ciphertext per contribution. */
export function makeRoundConfig(options: {
  officer: SigningKeyPair;
  orgId: string;
  fleetId: string;
  keyFingerprint: Uint8Array;
  roundId?: string;
  quorum?: number;
  maxContributors?: number;
  deadline?: number;
  now: number;
  dp?: RoundConfig['dp'];
}): { config: RoundConfig; bytes: Uint8Array } {
  const dp = options.dp ?? { mode: 'off', clip: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 };
  const config: RoundConfig = {
    roundId: options.roundId ?? `round-${randomUUID()}`,
    orgId: options.orgId,
    fleetId: options.fleetId,
    createdAt: options.now,
    deadline: options.deadline ?? 0,
    quorum: options.quorum ?? 2,
    maxContributors: options.maxContributors ?? 4,
    keyVersion: 1,
    heKeyFingerprint: options.keyFingerprint,
    baseAdapterSha256: randomBytes(32),
    tensors: [{ name: 'base_model.model.layer.lora_B.weight', shape: [10, 100] }],
    freezeA: true,
    aSeed: randomBytes(32),
    maskSeed: randomBytes(32),
    sparsity: 1,
    quant: { fieldBits: 8, scale: 64, encoding: dp.mode === 'distributed' ? 'modular' : 'offset' },
    dp,
    valueCount: 1000,
    ciphertextCount: 1,
  };
  return { config, bytes: signRoundConfig({ config, secretKey: options.officer.secretKey, publicKey: options.officer.publicKey }) };
}

/** Ciphertext-shaped bytes: the round's exact SEAL header, then random coefficients below q. */
export function fakeCiphertexts(options: { parmsId: Uint8Array; count: number }): Uint8Array {
  const paramSet = getParamSet({ id: PARAM_SET_ID });
  const header = expectedHeader({ parmsId: options.parmsId, paramSet });
  const out = new Uint8Array(options.count * paramSet.ciphertextBytes);
  for (let c = 0; c < options.count; c++) {
    const base = c * paramSet.ciphertextBytes;
    out.set(header, base);
    const coeffs = randomBytes(paramSet.ciphertextBytes - paramSet.headerBytes);
    // Clear the top 5 bits of each little-endian u64 so every coefficient is < 2^59 < q.
    for (let i = 7; i < coeffs.length; i += 8) coeffs[i]! &= 0x07;
    out.set(coeffs, base + paramSet.headerBytes);
  }
  return out;
}

export function makePackage(options: { robot: TestRobot; config: RoundConfig; configFingerprint: Uint8Array; ciphertexts: Uint8Array; overrides?: Partial<{ robotId: string; keyVersion: number; valueCount: number }> }) {
  return buildUpdatePackage({
    meta: {
      roundId: options.config.roundId,
      robotId: options.overrides?.robotId ?? options.robot.id,
      fleetId: options.config.fleetId,
      keyVersion: options.overrides?.keyVersion ?? options.config.keyVersion,
      roundConfigFingerprint: options.configFingerprint,
      valueCount: options.overrides?.valueCount ?? options.config.valueCount,
      ciphertextCount: options.config.ciphertextCount,
      createdAt: Date.now(),
    },
    ciphertexts: options.ciphertexts,
    secretKey: options.robot.keys.secretKey,
    publicKey: options.robot.keys.publicKey,
  });
}
