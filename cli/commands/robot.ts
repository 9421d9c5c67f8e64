// `tensorguard robot …`: enroll from a bundle, push an encrypted update, pull and verify a release.
// The robot trusts only the officer keys pinned from its enrollment bundle: a round config, key record
// or release signed by anyone else is refused before it is used.
import { join } from 'node:path';
import { readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { ApiClient } from '../api.ts';
import type { ZeroEncryptionPool } from '../robot-zero-pool.ts';
import { addToOutbox, deliverOutboxEntry, listOutbox, retryPolicyFromEnv, type DeliveryResult, type OutboxEntry } from '../robot-outbox.ts';
import { exists, loadAdapterDir, openFromFile, readJson, saveAdapterDir, sealToFile, writeFileAtomic, writeJson } from '../home.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { generateKemKeyPair, openPayload, unwrapContentKey } from '../../core/crypto/kem.ts';
import { ByteReader, ByteWriter } from '../../core/codec/binary.ts';
import { fromBase64, toBase64, bytesToHex, equalBytes } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { attestRobotKeys, decodeEnrollmentBundle } from '../../core/records/enrollment.ts';
import { openRoundConfig, roundStage, type RoundConfig } from '../../core/records/round-config.ts';
import { openKeyRecord } from '../../core/records/key-record.ts';
import { findKeyRevocation } from '../../core/records/revocation.ts';
import { buildUpdatePackage } from '../../core/records/update-package.ts';
import { openReleaseManifest, releaseContext, decodeReleasePayload } from '../../core/records/release-manifest.ts';
import { IntegrityError } from '../../core/errors.ts';
import { createEncryptor } from '../../core/he/seal.ts';
import { computeDelta, encodeContribution, roundStartAdapter } from '../../core/round/robot.ts';
import { roundPrivacyParams } from '../../core/round/privacy.ts';
import { checkBudget, type RoundPrivacyParams } from '../../core/dp/round-privacy.ts';
import { adapterFingerprint, loadPeftAdapter } from '../../core/peft/adapter.ts';
import { elapsedMs, recallTrainDuration, reportStageTimings, robotPushStages } from '../lib/timings.ts';

export interface RobotIdentity {
  serverUrl: string;
  orgId: string;
  fleetId: string;
  robotId: string;
  name: string;
  bundleId: string;
  officerPublicKeys: string[];
  dsaPublicKey: string;
  kemPublicKey: string;
}

interface RobotState {
  releaseVersion: number;
  releaseAdapterSha256?: string;
  ledger: Array<{ roundId: string; params: RoundPrivacyParams; epsilonAfter: number }>;
  contributed: string[];
}

const robotDir = (home: string) => join(home, 'robot');
const TYPE_ROBOT_SECRETS = 0x40;

async function loadIdentity(ctx: CommandContext): Promise<RobotIdentity> {
  const id = await readJson<RobotIdentity>(join(robotDir(ctx.home), 'identity.json'));
  if (!id) throw new CliError(`no robot is enrolled in ${ctx.home}; run tensorguard robot enroll --bundle FILE`, 'not_enrolled');
  return id;
}

async function loadState(ctx: CommandContext): Promise<RobotState> {
  return (await readJson<RobotState>(join(robotDir(ctx.home), 'state.json'))) ?? { releaseVersion: 0, ledger: [], contributed: [] };
}

async function loadSecrets(ctx: CommandContext): Promise<{ dsaSecretKey: Uint8Array; kemSecretKey: Uint8Array }> {
  const bytes = await openFromFile({ path: join(robotDir(ctx.home), 'secrets.sealed'), passphrase: await ctx.passphrase('the robot keys') });
  const r = new ByteReader(bytes, 'robot secrets');
  r.header(TYPE_ROBOT_SECRETS, [1]);
  const out = { dsaSecretKey: r.bytes(8192, 'dsa'), kemSecretKey: r.bytes(8192, 'kem') };
  r.end();
  return out;
}

/**
 * A robot's unsealed keys, its identity and an API client signing as it. Each one-shot command opens one
 * (one scrypt unseal, one passphrase) and drops it when it returns; `robot agent` opens one when it
 * starts and passes it to every push and pull it runs, then wipes the keys when it stops.
 */
export interface RobotSession {
  identity: RobotIdentity;
  secrets: { dsaSecretKey: Uint8Array; kemSecretKey: Uint8Array };
  api: ApiClient;
  pinned: Uint8Array[];
}

export async function robotClient(ctx: CommandContext): Promise<RobotSession> {
  const identity = await loadIdentity(ctx);
  const secrets = await loadSecrets(ctx);
  const api = new ApiClient(identity.serverUrl, { kind: 'robot', robotId: identity.robotId, secretKey: secrets.dsaSecretKey });
  return { identity, secrets, api, pinned: identity.officerPublicKeys.map((k) => fromBase64(k)) };
}

/** The HE key revocations the server holds (signed records; only those a pinned officer key signed count, findKeyRevocation). */
export async function servedRevocations(api: ApiClient): Promise<Uint8Array[]> {
  const served = await api.json<Array<{ record: string }>>('GET', '/v1/he-keys/revocations');
  return served.flatMap((r) => (typeof r.record === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(r.record) && r.record.length % 4 === 0 ? [fromBase64(r.record)] : []));
}

/** Overwrites a session's secret keys in memory (the agent's stop; JavaScript gives no stronger guarantee). */
export function wipeRobotSession(session: RobotSession): void {
  session.secrets.dsaSecretKey.fill(0);
  session.secrets.kemSecretKey.fill(0);
}

/** The robot's persisted state (release version, DP ledger, rounds contributed to). */
export async function robotState(ctx: CommandContext): Promise<Readonly<RobotState>> {
  return loadState(ctx);
}

export async function robotEnroll(ctx: CommandContext, opts: { bundle: string; name?: string }): Promise<{ robotId: string; fleetId: string; orgId: string }> {
  if (await exists(join(robotDir(ctx.home), 'identity.json'))) throw new CliError(`${ctx.home} already holds an enrolled robot`, 'already_enrolled');
  const bundle = decodeEnrollmentBundle({ text: await readFile(opts.bundle, 'utf8') });
  if (bundle.expiresAt < Date.now()) throw new CliError('the enrollment bundle has expired; ask the officer for a new one', 'bundle_expired');
  const dsa = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
  const kem = generateKemKeyPair();
  const name = opts.name ?? `${hostname()}-${bytesToHex(dsa.publicKey.subarray(0, 3))}`;
  const attestation = attestRobotKeys({ attestKey: bundle.attestKey, fleetId: bundle.fleetId, bundleId: bundle.bundleId, dsaPublicKey: dsa.publicKey, kemPublicKey: kem.publicKey });
  // Seal the keys before the one-time token is spent, so a crash cannot strand an enrolled robot.
  const sealed = new ByteWriter().header(TYPE_ROBOT_SECRETS, 1).bytes(dsa.secretKey, 8192).bytes(kem.secretKey, 8192).finish();
  await sealToFile({ path: join(robotDir(ctx.home), 'secrets.sealed'), plaintext: sealed, passphrase: await ctx.passphrase('the robot keys') });
  const api = new ApiClient(bundle.serverUrl, { kind: 'none' });
  const res = await api.json<{ robotId: string; fleetId: string; orgId: string }>('POST', '/v1/enroll', {
    token: bundle.token,
    name,
    dsaPublicKey: toBase64(dsa.publicKey),
    kemPublicKey: toBase64(kem.publicKey),
    attestation: toBase64(attestation),
  });
  const identity: RobotIdentity = {
    serverUrl: bundle.serverUrl,
    orgId: res.orgId,
    fleetId: res.fleetId,
    robotId: res.robotId,
    name,
    bundleId: bundle.bundleId,
    officerPublicKeys: bundle.officerPublicKeys.map((k) => toBase64(k)),
    dsaPublicKey: toBase64(dsa.publicKey),
    kemPublicKey: toBase64(kem.publicKey),
  };
  await writeJson(join(robotDir(ctx.home), 'identity.json'), identity);
  return { robotId: res.robotId, fleetId: res.fleetId, orgId: res.orgId };
}

export async function fetchRound(api: ApiClient, identity: RobotIdentity, pinned: Uint8Array[], roundId?: string): Promise<{ config: RoundConfig; fingerprint: Uint8Array }> {
  let id = roundId;
  if (!id) {
    const open = await api.json<Array<{ roundId: string; createdAt?: number }>>('GET', `/v1/rounds?fleet=${encodeURIComponent(identity.fleetId)}&state=open`);
    if (open.length === 0) throw new CliError('no open round for this robot\'s fleet', 'no_open_round');
    id = open[open.length - 1]!.roundId;
  }
  const round = await api.json<{ config: string }>('GET', `/v1/rounds/${encodeURIComponent(id)}`);
  const { record, fingerprint } = openRoundConfig({ bytes: fromBase64(round.config), trustedKeys: pinned });
  if (record.fleetId !== identity.fleetId || record.orgId !== identity.orgId) throw new IntegrityError('the round config names another fleet or organization');
  return { config: record, fingerprint };
}

async function baseAdapter(ctx: CommandContext, base?: string) {
  const dir = base ?? join(robotDir(ctx.home), 'base');
  if (!base && !(await exists(dir))) throw new CliError('this robot has no pulled release to use as base: pass --base DIR (the round\'s template adapter)', 'no_base');
  return loadAdapterDir(dir);
}

export async function robotStart(ctx: CommandContext, opts: { out: string; base?: string; round?: string }, session?: RobotSession): Promise<{ roundId: string; out: string }> {
  const { identity, api, pinned } = session ?? (await robotClient(ctx));
  const { config } = await fetchRound(api, identity, pinned, opts.round);
  const start = roundStartAdapter({ config, base: await baseAdapter(ctx, opts.base) });
  await saveAdapterDir(opts.out, start);
  return { roundId: config.roundId, out: opts.out };
}

/** Applies an acknowledged push to the robot's state: its residual, DP ledger entry and contributed round. */
async function commitPush(ctx: CommandContext, accepted: { entry: OutboxEntry; residual: Uint8Array | null }): Promise<void> {
  if (accepted.residual) await writeFileAtomic(join(robotDir(ctx.home), 'residual.f32'), accepted.residual);
  const state = await loadState(ctx);
  if (accepted.entry.ledger !== null) state.ledger.push(accepted.entry.ledger as RobotState['ledger'][number]);
  if (!state.contributed.includes(accepted.entry.roundId)) state.contributed.push(accepted.entry.roundId);
  await writeJson(join(robotDir(ctx.home), 'state.json'), state);
}

/** Resends every outbox entry, oldest first (cli/robot-outbox.ts); stops at the first that stays unacknowledged. */
async function flushOutbox(ctx: CommandContext, api: ApiClient): Promise<Array<DeliveryResult & Record<string, unknown>>> {
  const delivered: Array<DeliveryResult & Record<string, unknown>> = [];
  for (const entry of await listOutbox({ home: ctx.home })) {
    ctx.log(`resending the push to round ${entry.roundId} from the outbox`);
    const result = await deliverOutboxEntry({ home: ctx.home, api, entry, policy: retryPolicyFromEnv(), onAccepted: (a) => commitPush(ctx, a), log: (m) => ctx.log(m) });
    delivered.push({ ...entry.summary, ...result });
  }
  return delivered;
}

export async function robotPush(
  ctx: CommandContext,
  opts: { adapter?: string; base?: string; round?: string; resume?: boolean },
  session?: RobotSession,
  /** A robot agent's precomputed encryptions of zero (cli/robot-zero-pool.ts); used only for the key the round names. */
  extras: { zeroPool?: ZeroEncryptionPool } = {},
): Promise<Record<string, unknown>> {
  const { identity, secrets, api, pinned } = session ?? (await robotClient(ctx));
  // Pushes an earlier run could not deliver go first (and --resume does only that).
  const resent = await flushOutbox(ctx, api);
  if (opts.resume) return { resumed: resent, pending: (await listOutbox({ home: ctx.home })).length };
  if (!opts.adapter) throw new CliError('robot push needs --adapter DIR (or --resume to resend the outbox)', 'invalid_argument');
  const { config, fingerprint } = await fetchRound(api, identity, pinned, opts.round);
  const previous = resent.find((r) => r.roundId === config.roundId);
  if (previous) return { ...previous, resumed: true };
  const state = await loadState(ctx);
  if (state.contributed.includes(config.roundId)) throw new CliError(`this robot already contributed to round ${config.roundId}`, 'duplicate_contribution');
  // The key the robot encrypts to must be the officer-signed record the round names (trust model 2).
  const keyRes = await api.json<{ record: string }>('GET', `/v1/he-keys/${config.keyVersion}`);
  const key = openKeyRecord({ bytes: fromBase64(keyRes.record), trustedKeys: pinned });
  if (!equalBytes(key.fingerprint, config.heKeyFingerprint) || key.record.keyVersion !== config.keyVersion || key.record.orgId !== identity.orgId)
    throw new IntegrityError('the HE key record the server returned is not the one the round config names');
  // Refuse a key an officer revoked. Only revocations signed by a pinned officer key are believed, so
  // the server can neither invent one nor (short of withholding it) hide one it holds.
  const revocations = await servedRevocations(api);
  const revoked = findKeyRevocation({ revocations, trustedKeys: pinned, orgId: identity.orgId, keyVersion: config.keyVersion, heKeyFingerprint: key.fingerprint });
  if (revoked) throw new CliError(`HE key version ${config.keyVersion} was revoked by an officer (${revoked.reason}); refusing to encrypt to it`, 'key_revoked');
  const start = roundStartAdapter({ config, base: await baseAdapter(ctx, opts.base) });
  const trained = await loadAdapterDir(opts.adapter);
  // The adapter's recorded training stage (robot train writes it) must be the stage the signed round names.
  const trainedStage = (trained.config as Record<string, unknown>).tensorguard_training_stage;
  if (typeof trainedStage === 'string' && trainedStage !== roundStage(config))
    throw new CliError(`the adapter was trained by ${trainedStage}, the round's signed config names ${roundStage(config)}`, 'stage_mismatch');
  const residualPath = join(robotDir(ctx.home), 'residual.f32');
  const residual = (await exists(residualPath)) ? new Float32Array(new Uint8Array(await readFile(residualPath)).buffer) : null;
  const delta = computeDelta({ config, start, trained, residual });
  let epsilonAfter: number | null = null;
  if (config.dp.mode !== 'off') {
    const params = roundPrivacyParams({ config });
    // Hard stop before anything leaves the robot (trust model 6).
    epsilonAfter = checkBudget({ spentRounds: state.ledger.map((l) => l.params), next: params, budget: config.dp.epsilonBudget, delta: config.dp.delta }).epsilonAfter;
  }
  const encryptor = await createEncryptor({ publicKey: key.record.publicKey, paramSetId: key.record.paramSetId });
  let prepared;
  const pooled = extras.zeroPool?.size ?? 0;
  try {
    prepared = encodeContribution({ config, delta, encryptor, zeros: extras.zeroPool?.sourceFor(key.fingerprint) });
  } finally {
    encryptor.destroy();
  }
  const t = performance.now();
  const dsaPublicKey = fromBase64(identity.dsaPublicKey);
  const pkg = buildUpdatePackage({
    meta: {
      roundId: config.roundId,
      robotId: identity.robotId,
      fleetId: identity.fleetId,
      keyVersion: config.keyVersion,
      roundConfigFingerprint: fingerprint,
      valueCount: prepared.valueCount,
      ciphertextCount: prepared.ciphertextCount,
      createdAt: Date.now(),
    },
    ciphertexts: prepared.ciphertexts,
    secretKey: secrets.dsaSecretKey,
    publicKey: dsaPublicKey,
  });
  const signMs = performance.now() - t;
  const summary = {
    roundId: config.roundId,
    packageBytes: pkg.bytes.length,
    valueCount: prepared.valueCount,
    bytesPerValue: pkg.bytes.length / prepared.valueCount,
    updateNorm: prepared.norm,
    clipped: prepared.clipped,
    epsilonSpent: epsilonAfter,
  };
  // The signed package goes to the outbox before it is sent: a push the server does not acknowledge is
  // resent byte for byte (same Idempotency-Key), never rebuilt with fresh noise (cli/robot-outbox.ts).
  const residualBytes = new Uint8Array(prepared.residual.buffer, prepared.residual.byteOffset, prepared.residual.byteLength);
  const entry = await addToOutbox({
    home: ctx.home,
    roundId: config.roundId,
    packageBytes: pkg.bytes,
    residual: residualBytes,
    ledger: epsilonAfter !== null ? { roundId: config.roundId, params: roundPrivacyParams({ config }), epsilonAfter } : null,
    summary,
  });
  const delivered = await deliverOutboxEntry({
    home: ctx.home, api, entry, policy: retryPolicyFromEnv(), onAccepted: (a) => commitPush(ctx, a), log: (m) => ctx.log(m),
    written: { packageBytes: pkg.bytes, residual: residualBytes },
  });
  // Stage timings for the round's latency breakdown (cli/lib/timings.ts): after the acknowledgement, never failing the push.
  const trainMs = await recallTrainDuration({ home: ctx.home, roundId: config.roundId, adapterSha256: bytesToHex(adapterFingerprint({ adapter: trained })) }).catch(() => null);
  const stageReport = await reportStageTimings({ home: ctx.home, role: 'robot', api, roundId: config.roundId, stages: robotPushStages({ encodeTimings: prepared.timings, signMs, uploadMs: delivered.uploadMs, trainMs }), log: (m) => ctx.log(m) });
  return {
    stageTimingsPending: stageReport.pending,
    ...summary,
    contributionId: delivered.contributionId,
    contributions: delivered.contributions,
    ...(delivered.alreadyAccepted ? { alreadyAccepted: true } : {}),
    attempts: delivered.attempts,
    keyVersion: config.keyVersion,
    ciphertextCount: prepared.ciphertextCount,
    ...(extras.zeroPool ? { precomputedZerosUsed: pooled - extras.zeroPool.size } : {}),
    timingsMs: { ...Object.fromEntries(Object.entries(prepared.timings).map(([k, v]) => [k, Math.round(v)])), sign: Math.round(signMs), upload: delivered.uploadMs },
  };
}

/** What GET /v1/releases/latest answers (manifest and sealed payload, base64). */
export interface LatestRelease {
  manifest: string;
  payload: string;
}

export async function robotPull(
  ctx: CommandContext,
  opts: { out: string; /** Already fetched (robot agent); verified exactly like a fresh answer. */ release?: LatestRelease },
  session?: RobotSession,
): Promise<{ releaseId: string; releaseVersion: number; kind: string; adapterSha256: string; out: string; gate: string }> {
  const { identity, secrets, api, pinned } = session ?? (await robotClient(ctx));
  const state = await loadState(ctx);
  const res = opts.release ?? (await api.json<LatestRelease>('GET', '/v1/releases/latest'));
  // Verify before using anything: pinned officer signature, our fleet, newer version (trust model 3).
  const { record } = openReleaseManifest({ bytes: fromBase64(res.manifest), trustedKeys: pinned });
  if (record.fleetId !== identity.fleetId || record.orgId !== identity.orgId) throw new IntegrityError('the release names another fleet or organization');
  // v2 manifests carry the evaluation gate; a failed gate is applied only under the officer's signed
  // override (decoding already refuses one without; checked again here because it is the robot's rule).
  if (record.gate?.status === 'failed' && !record.gate.override?.reason) throw new IntegrityError('the release failed its evaluation gate and carries no officer override');
  if (record.gate?.override) ctx.log(`release ${record.releaseVersion} was released over a failed gate (${record.gate.failed.join(', ')}): "${record.gate.override.reason}"`);
  // Versions only grow: a rollback is a new, officer-signed version that restores older weights, so a
  // replayed old manifest (release or rollback) is always refused.
  if (record.releaseVersion <= state.releaseVersion)
    throw new IntegrityError(`release version ${record.releaseVersion} is not newer than the running version ${state.releaseVersion}`);
  const applyStarted = performance.now(); // the round's `apply` stage: verify payload, unwrap, decrypt, check, install
  const payload = fromBase64(res.payload);
  if (!equalBytes(sha256(payload), record.payloadSha256)) throw new IntegrityError('the release payload is not the one the signed manifest names');
  const wrap = record.wraps.find((w) => w.robotId === identity.robotId);
  if (!wrap) throw new CliError(`release ${record.releaseVersion} carries no key for this robot (not in its rollout yet)`, 'not_in_release');
  const context = releaseContext({ releaseId: record.releaseId, fleetId: record.fleetId });
  const contentKey = unwrapContentKey({ kemCiphertext: wrap.kemCiphertext, wrappedKey: wrap.wrappedKey, secretKey: secrets.kemSecretKey, context });
  const files = decodeReleasePayload({ bytes: openPayload({ key: contentKey, sealed: payload, aad: context }) });
  if (!equalBytes(sha256(files.adapterSafetensors), record.adapterSha256)) throw new IntegrityError('the decrypted adapter does not match the SHA-256 the officer signed');
  const adapter = loadPeftAdapter({ files: { 'adapter_config.json': files.adapterConfigJson, 'adapter_model.safetensors': files.adapterSafetensors } });
  await writeFileAtomic(join(opts.out, 'adapter_config.json'), files.adapterConfigJson, 0o644);
  await writeFileAtomic(join(opts.out, 'adapter_model.safetensors'), files.adapterSafetensors, 0o644);
  const baseDir = join(robotDir(ctx.home), 'base');
  await rm(baseDir, { recursive: true, force: true });
  await saveAdapterDir(baseDir, adapter);
  await rm(join(robotDir(ctx.home), 'residual.f32'), { force: true }); // a new base starts a new error-feedback history
  state.releaseVersion = record.releaseVersion;
  state.releaseAdapterSha256 = bytesToHex(record.adapterSha256);
  await writeJson(join(robotDir(ctx.home), 'state.json'), state);
  const applyMs = elapsedMs(applyStarted);
  await api.json('POST', `/v1/releases/${encodeURIComponent(record.releaseId)}/report`, { status: 'applied', adapterSha256: bytesToHex(record.adapterSha256) }).catch(() => undefined); // best effort: the release is applied either way
  await reportStageTimings({ home: ctx.home, role: 'robot', api, roundId: record.roundId, stages: [{ stage: 'apply', durationMs: applyMs }], log: (m) => ctx.log(m) });
  return { releaseId: record.releaseId, releaseVersion: record.releaseVersion, kind: record.kind, adapterSha256: bytesToHex(record.adapterSha256), out: opts.out, gate: record.gate ? (record.gate.override ? 'failed_overridden' : record.gate.status) : 'v1_manifest' };
}
