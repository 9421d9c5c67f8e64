// `tensorguard officer …`: keys, enrollment bundles, rounds, review (verify -> sum -> decrypt) and release.
// Secrets are opened from the sealed file only inside the command that needs them.
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { readFile, cp, rm } from 'node:fs/promises';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { sessionClient } from '../session-client.ts';
import { exists, loadAdapterDir, nativeScrypt, openFromFile, readJson, saveAdapterDir, sealToFile, writeFileAtomic, writeJson } from '../home.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { openSecret, sealSecret } from '../../core/crypto/secretbox.ts';
import { randomBytes } from '../../core/random.ts';
import { fromBase64, toBase64, bytesToHex, equalBytes, hexToBytes } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { decodeOfficerSecrets, encodeOfficerSecrets, type OfficerSecrets } from '../../core/records/officer-secrets.ts';
import { generateKeyPair } from '../../core/he/seal.ts';
import { PARAM_SET_ID } from '../../core/he/params.ts';
import { openKeyRecord, signKeyRecord } from '../../core/records/key-record.ts';
import { deriveAttestKey, encodeEnrollmentBundle } from '../../core/records/enrollment.ts';
import { openRoundConfig, signRoundConfig, type DpMode, type RoundConfig } from '../../core/records/round-config.ts';
import { openRoundRejection, signRoundRejection } from '../../core/records/round-rejection.ts';
import { decodeContributionManifest } from '../../core/records/contribution-manifest.ts';
import type { PeftAdapter } from '../../core/peft/adapter.ts';
import { buildRoundConfig, defaultMaxContributors } from '../../core/round/open.ts';
import { buildCandidate, decryptAggregate, reviewReport, verifyRoundContributions } from '../../core/round/review.ts';
import { buildSignedRelease, nextReleaseVersion } from '../../core/round/release.ts';
import { GateFailedError, describeFailedGate, releaseGateOf, runReferenceGateOnnx, type GateReport, type GateSetCounts } from '../../core/eval/reference-gate.ts';
import type { OrtModuleLike } from '../../core/eval/runners.ts';
import type { RoundStage } from '../../core/records/round-config.ts';
import { REFERENCE_POLICY } from '../../core/policy/reference.ts';
import { MODELS_DIR } from './robot-train.ts';
import { officerReviewStages, reportStageTimings } from '../lib/timings.ts';

interface OfficerIdentity {
  dsaPublicKey: string;
  officerKeyId: string;
  heKeyVersions: number[];
}

const officerDir = (home: string) => join(home, 'officer');
const roundDir = (home: string, roundId: string) => join(home, 'officer', 'rounds', roundId);

/** Contribution packages downloaded at once by `officer review`. */
const DOWNLOADS_IN_FLIGHT = 6;

export async function loadOfficerSecrets(ctx: CommandContext): Promise<OfficerSecrets> {
  const bytes = await openFromFile({ path: join(officerDir(ctx.home), 'secrets.sealed'), passphrase: await ctx.passphrase('the officer keys') });
  return decodeOfficerSecrets({ bytes });
}

async function saveOfficerSecrets(ctx: CommandContext, secrets: OfficerSecrets): Promise<void> {
  await sealToFile({ path: join(officerDir(ctx.home), 'secrets.sealed'), plaintext: encodeOfficerSecrets({ secrets }), passphrase: await ctx.passphrase('the officer keys') });
}

/** Generates the officer's ML-DSA-65 key and a BFV key pair, registers both (the HE key as a signed record). */
export async function officerInit(ctx: CommandContext): Promise<{ officerKeyId: string; keyVersion: number; heKeyFingerprint: string; paramSetId: string }> {
  const { session, api } = await sessionClient(ctx);
  let secrets: OfficerSecrets;
  const sealedPath = join(officerDir(ctx.home), 'secrets.sealed');
  if (await exists(sealedPath)) {
    secrets = await loadOfficerSecrets(ctx); // rotate: new HE key version under the same signing key
  } else {
    const dsa = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    secrets = { dsa: { publicKey: dsa.publicKey, secretKey: dsa.secretKey }, attestRoot: randomBytes(32), he: [] };
  }
  const known = await api.json<Array<{ id: string; publicKey: string }>>('GET', '/v1/officer-keys');
  if (!known.some((k) => k.publicKey === toBase64(secrets.dsa.publicKey)))
    await api.json('POST', '/v1/officer-keys', { publicKey: toBase64(secrets.dsa.publicKey) });

  ctx.log('Generating the BFV key pair …');
  const he = await generateKeyPair({ paramSetId: PARAM_SET_ID });
  let current = 0;
  try {
    current = (await api.json<{ version: number }>('GET', '/v1/he-keys/current')).version;
  } catch (err) {
    if ((err as { status?: number }).status !== 404) throw err;
  }
  const keyVersion = current + 1;
  const record = { orgId: session.orgId, keyVersion, paramSetId: PARAM_SET_ID, parmsId: he.parmsId, publicKey: he.publicKey, createdAt: Date.now() };
  const signed = signKeyRecord({ record, secretKey: secrets.dsa.secretKey, publicKey: secrets.dsa.publicKey });
  const { fingerprint } = openKeyRecord({ bytes: signed, trustedKeys: [secrets.dsa.publicKey] });
  secrets.he.push({ keyVersion, paramSetId: PARAM_SET_ID, parmsId: he.parmsId, publicKey: he.publicKey, secretKey: he.secretKey });
  // Seal the new secret key before the server learns of the version, so a registered key is never lost.
  await saveOfficerSecrets(ctx, secrets);
  await api.json('POST', '/v1/he-keys', { record: toBase64(signed) });
  const identity = identityOf(secrets);
  await writeJson(join(officerDir(ctx.home), 'identity.json'), identity);
  return { officerKeyId: identity.officerKeyId, keyVersion, heKeyFingerprint: bytesToHex(fingerprint), paramSetId: PARAM_SET_ID };
}

export async function officerEnrollBundle(ctx: CommandContext, opts: { fleet: string; out: string }): Promise<{ bundleId: string; fleetId: string; out: string; expiresAt: number }> {
  const { session, api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const t = await api.json<{ tokenId: string; token: string; expiresAt: number | string }>('POST', `/v1/fleets/${encodeURIComponent(opts.fleet)}/enrollment-tokens`, {});
  const expiresAt = typeof t.expiresAt === 'number' ? t.expiresAt : Date.parse(t.expiresAt);
  const text = encodeEnrollmentBundle({
    bundle: {
      format: 'tensorguard-enrollment-bundle/v1',
      serverUrl: session.server,
      orgId: session.orgId,
      fleetId: opts.fleet,
      bundleId: t.tokenId,
      token: t.token,
      attestKey: deriveAttestKey({ attestRoot: secrets.attestRoot, bundleId: t.tokenId }),
      officerPublicKeys: [secrets.dsa.publicKey],
      expiresAt,
    },
  });
  await writeFileAtomic(opts.out, text, 0o600);
  return { bundleId: t.tokenId, fleetId: opts.fleet, out: opts.out, expiresAt };
}

export interface RoundOpenOptions {
  fleet: string;
  template: string;
  quorum: number;
  maxContributors?: number;
  freezeA?: boolean;
  dpMode?: DpMode;
  clip?: number;
  noiseMultiplier?: number;
  delta?: number;
  epsilonBudget?: number;
  sparsity?: number;
  fieldBits?: number;
  range?: number;
  deadline?: string;
  stage?: RoundStage;
  /** Required with --stage on_policy_rl: the officer's signed approval reason. */
  approveOnPolicy?: string;
}

export async function officerRoundOpen(ctx: CommandContext, opts: RoundOpenOptions): Promise<{ roundId: string; stage: RoundStage; valueCount: number; ciphertextCount: number; scale: number; fieldsPerSlot: number; bytesPerValue: number }> {
  const { session, api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const template = await loadAdapterDir(opts.template);
  const current = await api.json<{ version: number; record: string }>('GET', '/v1/he-keys/current');
  const keyRecord = openKeyRecord({ bytes: fromBase64(current.record), trustedKeys: [secrets.dsa.publicKey] });
  // Default: room for every robot enrolled in the fleet now (the packing's headroom grows with log2 of it).
  const enrolled = opts.maxContributors === undefined ? (await api.json<unknown[]>('GET', `/v1/robots?fleet=${encodeURIComponent(opts.fleet)}`)).length : 0;
  const maxContributors = opts.maxContributors ?? defaultMaxContributors({ quorum: opts.quorum, enrolledRobots: enrolled });
  if (opts.quorum > maxContributors) throw new CliError(`--quorum ${opts.quorum} exceeds --max-contributors ${maxContributors}`, 'bad_option');
  const deadline = opts.deadline ? Date.parse(opts.deadline) : 0;
  if (Number.isNaN(deadline)) throw new CliError(`--deadline expects an ISO date, got ${opts.deadline}`, 'bad_option');
  const built = buildRoundConfig({
    options: {
      fleetId: opts.fleet,
      quorum: opts.quorum,
      maxContributors,
      freezeA: opts.freezeA,
      dpMode: opts.dpMode,
      clip: opts.clip,
      noiseMultiplier: opts.noiseMultiplier,
      delta: opts.delta,
      epsilonBudget: opts.epsilonBudget,
      sparsity: opts.sparsity,
      fieldBits: opts.fieldBits,
      range: opts.range,
      deadline,
      stage: opts.stage,
      onPolicyApproval: opts.approveOnPolicy !== undefined ? { reason: opts.approveOnPolicy } : undefined,
    },
    template,
    orgId: session.orgId,
    keyRecord: { keyVersion: keyRecord.record.keyVersion, fingerprint: keyRecord.fingerprint, paramSetId: keyRecord.record.paramSetId },
    roundId: randomUUID(),
    createdAt: Date.now(),
  });
  const { config, plan } = built;
  if (config.stage === 'on_policy_rl') ctx.log(`on-policy round: the signed config carries your approval ("${config.onPolicyApproval?.reason}")`);
  const signed = signRoundConfig({ config, secretKey: secrets.dsa.secretKey, publicKey: secrets.dsa.publicKey });
  const dir = roundDir(ctx.home, config.roundId);
  await writeFileAtomic(join(dir, 'config.bin'), signed);
  await cp(opts.template, join(dir, 'base'), { recursive: true });
  await api.json('POST', '/v1/rounds', { config: toBase64(signed) });
  return { roundId: config.roundId, stage: config.stage ?? 'imitation_learning', valueCount: plan.valueCount, ciphertextCount: plan.ciphertextCount, scale: plan.scale, fieldsPerSlot: plan.layout.fieldsPerSlot, bytesPerValue: built.bytesPerValue };
}

export async function officerRoundClose(ctx: CommandContext, opts: { round: string }): Promise<{ roundId: string; state: string; contributions: number }> {
  const { api } = await sessionClient(ctx);
  const res = await api.json<{ state: string; contributions?: number; count?: number }>('POST', `/v1/rounds/${encodeURIComponent(opts.round)}/close`, {});
  return { roundId: opts.round, state: res.state, contributions: res.contributions ?? res.count ?? 0 };
}

async function roundFromHome(ctx: CommandContext, roundId: string, trusted: Uint8Array): Promise<{ config: RoundConfig; fingerprint: Uint8Array; base: PeftAdapter }> {
  const dir = roundDir(ctx.home, roundId);
  if (!(await exists(join(dir, 'config.bin')))) throw new CliError(`round ${roundId} was not opened from this officer home (${ctx.home})`, 'unknown_round');
  const { record, fingerprint } = openRoundConfig({ bytes: new Uint8Array(await readFile(join(dir, 'config.bin'))), trustedKeys: [trusted] });
  return { config: record, fingerprint, base: await loadAdapterDir(join(dir, 'base')) };
}

interface RobotListItem {
  id: string;
  name: string;
  fleetId: string;
  enrollmentId: string;
  dsaPublicKey: string;
  kemPublicKey: string;
  attestation: string;
  revokedAt?: number | null;
}

/** onnxruntime-web with its WASM backend on one thread: the runtime the PWA's eval worker uses, in Node. */
async function loadOrt(): Promise<OrtModuleLike> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  return ort as unknown as OrtModuleLike;
}

/**
 * The evaluation gate of a review (core/eval/reference-gate.ts, the same call the PWA's eval worker
 * makes): the deployed policy (the round's base adapter, what robots run) against the candidate.
 */
export async function reviewGate(ctx: CommandContext, opts: { config: RoundConfig; deployed: PeftAdapter; candidate: PeftAdapter; candidateAdapterSha256: string; counts?: Partial<GateSetCounts> }): Promise<GateReport> {
  const model = new Uint8Array(await readFile(join(MODELS_DIR, REFERENCE_POLICY.onnxFile)));
  const bar = ctx.progress('Evaluation gate (sets)', 100);
  try {
    return await runReferenceGateOnnx({
      ort: await loadOrt(),
      model,
      roundId: opts.config.roundId,
      tensors: opts.config.tensors,
      deployed: opts.deployed,
      candidate: opts.candidate,
      candidateAdapterSha256: opts.candidateAdapterSha256,
      runtime: 'onnxruntime-web/wasm (node)',
      counts: opts.counts,
      onProgress: (done, total) => bar.update(Math.round((100 * done) / total)),
    });
  } finally {
    bar.stop();
  }
}

function gateCounts(n: number | undefined): Partial<GateSetCounts> | undefined {
  return n === undefined ? undefined : { nominal: n, site: n, ood: n };
}

export async function officerReview(ctx: CommandContext, opts: { round: string; out: string; gateScenarios?: number; evalModel?: string }): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const { api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const { config, fingerprint, base } = await roundFromHome(ctx, opts.round, secrets.dsa.publicKey);
  if (opts.gateScenarios !== undefined && (!Number.isSafeInteger(opts.gateScenarios) || opts.gateScenarios < 1 || opts.gateScenarios > 10_000))
    throw new CliError(`--gate-scenarios expects 1..10000, got ${opts.gateScenarios}`, 'invalid_argument');
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (k: string) => {
    timings[k] = Math.round(performance.now() - t);
    t = performance.now();
  };
  const agg = await api.json<{ manifest: string; aggregateSha256: string }>('GET', `/v1/rounds/${encodeURIComponent(config.roundId)}/aggregate`);
  const manifest = decodeContributionManifest({ bytes: fromBase64(agg.manifest) });
  const robots = await api.json<RobotListItem[]>('GET', `/v1/robots?fleet=${encodeURIComponent(config.fleetId)}`);
  const robotKeys = new Map(robots.map((r) => [r.id, { kemPublicKey: fromBase64(r.kemPublicKey) }]));
  const contributions = await api.json<Array<{ id: string; robotId: string }>>('GET', `/v1/rounds/${encodeURIComponent(config.roundId)}/contributions`);
  const packages = new Map<string, Uint8Array>();
  const bar = ctx.progress('Downloading contributions', contributions.length);
  // A few downloads in flight at once: the server streams each package from the blob store, and one at a
  // time left the link idle between them (the order of arrival does not matter: keyed by robot).
  let next = 0;
  let done = 0;
  const download = async () => {
    while (next < contributions.length) {
      const c = contributions[next++]!;
      packages.set(c.robotId, await api.binary('GET', `/v1/rounds/${encodeURIComponent(config.roundId)}/contributions/${encodeURIComponent(c.id)}/package`));
      bar.update(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DOWNLOADS_IN_FLIGHT, contributions.length) }, download));
  bar.stop();
  const serverAggregate = await api.binary('GET', `/v1/rounds/${encodeURIComponent(config.roundId)}/aggregate/ciphertext`);
  lap('download');
  const heKey = secrets.he.find((k) => k.keyVersion === config.keyVersion);
  if (!heKey) throw new CliError(`this officer holds no secret key for HE key version ${config.keyVersion}`, 'missing_key');
  const verified = verifyRoundContributions({
    config,
    configFingerprint: fingerprint,
    manifest,
    packages,
    robots: robots.map((r) => ({ id: r.id, kemPublicKey: fromBase64(r.kemPublicKey) })),
    attestRoot: secrets.attestRoot,
    parmsId: heKey.parmsId,
    serverAggregate,
  });
  lap('verify_and_sum');
  const dbar = ctx.progress('Decrypting aggregate', config.ciphertextCount);
  let slots: BigUint64Array;
  try {
    slots = await decryptAggregate({ verified, secretKey: heKey.secretKey, paramSetId: heKey.paramSetId, onProgress: (done) => dbar.update(done) });
  } finally {
    dbar.stop();
  }
  lap('decrypt');
  const candidate = buildCandidate({ config, slots, contributors: verified.contributors, base });
  lap('unpack');
  const candidateAdapterSha256 = bytesToHex(candidate.adapterSha256);
  // The fleet's customer evaluation model when it has one (cli/commands/officer-eval.ts), else the reference task.
  const { reviewGateWithEvalModel } = await import('./officer-eval.ts');
  const gate = await reviewGateWithEvalModel(ctx, {
    config, secrets, evalModel: opts.evalModel, deployed: base, candidate: candidate.adapter, candidateAdapterSha256,
    reference: () => reviewGate(ctx, { config, deployed: base, candidate: candidate.adapter, candidateAdapterSha256, counts: gateCounts(opts.gateScenarios) }),
  });
  lap('gate');
  if (!gate.applicable) ctx.log(`evaluation gate not applicable: ${gate.reason}`);
  else if (gate.verdict!.pass) ctx.log('evaluation gate passed');
  else ctx.log(`evaluation gate FAILED: ${describeFailedGate({ report: gate })}`);
  await saveAdapterDir(opts.out, candidate.adapter);
  const candidateDir = join(roundDir(ctx.home, config.roundId), 'candidate');
  await rm(candidateDir, { recursive: true, force: true });
  await saveAdapterDir(candidateDir, candidate.adapter);
  // The release reads the gate from here (never from --out, which the officer may edit).
  await writeJson(join(roundDir(ctx.home, config.roundId), 'gate.json'), gate);
  const report = { ...reviewReport({ config, verified, candidate }), stage: config.stage ?? 'imitation_learning', gate, timingsMs: { ...timings, total: Math.round(performance.now() - t0) } };
  await writeJson(join(opts.out, 'report.json'), report);
  // decrypt and review of the round's latency breakdown (cli/lib/timings.ts); a failed report never fails the review.
  await reportStageTimings({ home: ctx.home, role: 'officer', api, roundId: config.roundId, stages: officerReviewStages({ laps: timings }), log: (m) => ctx.log(m) });
  return report;
}

export async function officerRelease(
  ctx: CommandContext,
  opts: { round: string; canary?: number; overrideGate?: string },
): Promise<{ releaseId: string; releaseVersion: number; robots: number; skipped: string[]; adapterSha256: string; gate: { status: string; failed: string[]; override: string | null } }> {
  const { session, api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const { config } = await roundFromHome(ctx, opts.round, secrets.dsa.publicKey);
  const candidateDir = join(roundDir(ctx.home, config.roundId), 'candidate');
  if (!(await exists(candidateDir))) throw new CliError(`round ${config.roundId} has not been reviewed yet: run tensorguard officer review first`, 'not_reviewed');
  const adapterConfigJson = new Uint8Array(await readFile(join(candidateDir, 'adapter_config.json')));
  const adapterSafetensors = new Uint8Array(await readFile(join(candidateDir, 'adapter_model.safetensors')));
  const gateReport = await readJson<GateReport>(join(roundDir(ctx.home, config.roundId), 'gate.json'));
  if (!gateReport) throw new CliError(`round ${config.roundId} has no evaluation gate result: run tensorguard officer review again`, 'not_reviewed');
  if (opts.overrideGate !== undefined && !opts.overrideGate.trim()) throw new CliError('--override-gate needs a reason', 'invalid_argument');
  let gate;
  try {
    gate = releaseGateOf({ report: gateReport, candidateAdapterSha256: bytesToHex(sha256(adapterSafetensors)), override: opts.overrideGate !== undefined ? { reason: opts.overrideGate } : null });
  } catch (err) {
    if (err instanceof GateFailedError)
      throw new CliError(`${err.message}. Failed checks: ${describeFailedGate({ report: gateReport })}. To release anyway: --override-gate "reason" (signed into the manifest and audited)`, 'gate_failed');
    if (err instanceof RangeError) throw new CliError(err.message, 'invalid_argument');
    throw err;
  }
  const robots = await api.json<RobotListItem[]>('GET', `/v1/robots?fleet=${encodeURIComponent(config.fleetId)}`);
  const releases = await api.json<Array<{ releaseVersion: number }>>('GET', `/v1/releases?fleet=${encodeURIComponent(config.fleetId)}`);
  const release = buildSignedRelease({
    orgId: session.orgId,
    fleetId: config.fleetId,
    roundId: config.roundId,
    releaseId: randomUUID(),
    releaseVersion: nextReleaseVersion({ releases }),
    canaryFraction: opts.canary ?? 1,
    createdAt: Date.now(),
    files: { adapterConfigJson, adapterSafetensors },
    robots: robots.map((r) => ({
      id: r.id,
      enrollmentId: r.enrollmentId,
      dsaPublicKey: fromBase64(r.dsaPublicKey),
      kemPublicKey: fromBase64(r.kemPublicKey),
      attestation: fromBase64(r.attestation),
      revokedAt: r.revokedAt,
    })),
    attestRoot: secrets.attestRoot,
    signer: secrets.dsa,
    gate,
  });
  await api.json('POST', '/v1/releases', { manifest: toBase64(release.manifest), payload: toBase64(release.payload) });
  return {
    releaseId: release.releaseId,
    releaseVersion: release.releaseVersion,
    robots: release.wrapped.length,
    skipped: release.skipped,
    adapterSha256: bytesToHex(release.adapterSha256),
    gate: { status: gate.status, failed: gate.failed, override: gate.override?.reason ?? null },
  };
}

/** Signs and posts the rejection of a finalized round: the round's one decision, like a release. */
export async function officerReject(ctx: CommandContext, opts: { round: string; reason: string }): Promise<{ roundId: string; state: string; fingerprint: string }> {
  const { session, api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const { config, fingerprint } = await roundFromHome(ctx, opts.round, secrets.dsa.publicKey);
  const round = await api.json<{ aggregateSha256: string | null }>('GET', `/v1/rounds/${encodeURIComponent(config.roundId)}`);
  const record = signRoundRejection({
    rejection: {
      roundId: config.roundId,
      orgId: session.orgId,
      fleetId: config.fleetId,
      roundConfigFingerprint: fingerprint,
      aggregateSha256: round.aggregateSha256 ? hexToBytes(round.aggregateSha256) : new Uint8Array(32),
      reason: opts.reason,
      createdAt: Date.now(),
    },
    secretKey: secrets.dsa.secretKey,
    publicKey: secrets.dsa.publicKey,
  });
  await api.json('POST', `/v1/rounds/${encodeURIComponent(config.roundId)}/rejection`, { record: toBase64(record) });
  return { roundId: config.roundId, state: 'rejected', fingerprint: bytesToHex(openRoundRejection({ bytes: record }).fingerprint) };
}

export async function officerIdentity(ctx: CommandContext): Promise<OfficerIdentity | null> {
  return readJson<OfficerIdentity>(join(officerDir(ctx.home), 'identity.json'));
}

function identityOf(secrets: OfficerSecrets): OfficerIdentity {
  return {
    dsaPublicKey: toBase64(secrets.dsa.publicKey),
    officerKeyId: bytesToHex(sha256(secrets.dsa.publicKey)).slice(0, 16),
    heKeyVersions: secrets.he.map((k) => k.keyVersion),
  };
}

/** The passphrase a backup file is sealed under: TG_BACKUP_PASSPHRASE, else the officer passphrase. */
async function backupPassphrase(ctx: CommandContext): Promise<string> {
  return process.env.TG_BACKUP_PASSPHRASE || (await ctx.passphrase('the officer keys'));
}

/**
 * Writes the officer's key backup: the `tensorguard-officer-secrets/v1` document sealed under a
 * passphrase (scrypt N=2^17 + AES-256-GCM), the same file the PWA's Settings page exports and imports.
 */
export async function officerExportBackup(ctx: CommandContext, opts: { out: string }): Promise<{ out: string; officerKeyId: string; heKeyVersions: number[] }> {
  const secrets = await loadOfficerSecrets(ctx);
  const sealed = await sealSecret({ plaintext: encodeOfficerSecrets({ secrets }), passphrase: await backupPassphrase(ctx), scrypt: nativeScrypt });
  await writeFileAtomic(opts.out, sealed, 0o600);
  const identity = identityOf(secrets);
  return { out: opts.out, officerKeyId: identity.officerKeyId, heKeyVersions: identity.heKeyVersions };
}

/**
 * Imports a key backup (from the PWA or another officer home). A home that already holds a different
 * signing key is refused unless --force; one with the same signing key gains the backup's HE key
 * versions it lacks (a version held with a different key is a conflict).
 */
export async function officerImportBackup(ctx: CommandContext, opts: { file: string; force?: boolean }): Promise<{ officerKeyId: string; heKeyVersions: number[]; merged: boolean }> {
  let sealed: Uint8Array;
  try {
    sealed = new Uint8Array(await readFile(opts.file));
  } catch {
    throw new CliError(`cannot read the backup file ${opts.file}`, 'not_found');
  }
  const imported = decodeOfficerSecrets({ bytes: await openSecret({ sealed, passphrase: await backupPassphrase(ctx), scrypt: nativeScrypt }) });
  let secrets = imported;
  let merged = false;
  if (await exists(join(officerDir(ctx.home), 'secrets.sealed'))) {
    const existing = await loadOfficerSecrets(ctx);
    if (!equalBytes(existing.dsa.publicKey, imported.dsa.publicKey)) {
      if (!opts.force) throw new CliError(`${ctx.home} already holds another officer's keys; pass --force to replace them`, 'officer_exists');
    } else {
      const he = [...existing.he];
      for (const k of imported.he) {
        const have = he.find((x) => x.keyVersion === k.keyVersion);
        if (!have) he.push(k);
        else if (!equalBytes(have.publicKey, k.publicKey)) throw new CliError(`HE key version ${k.keyVersion} differs between this home and the backup`, 'key_version_conflict');
      }
      he.sort((a, b) => a.keyVersion - b.keyVersion);
      secrets = { dsa: existing.dsa, attestRoot: existing.attestRoot, he };
      merged = true;
    }
  }
  await saveOfficerSecrets(ctx, secrets);
  const identity = identityOf(secrets);
  await writeJson(join(officerDir(ctx.home), 'identity.json'), identity);
  return { officerKeyId: identity.officerKeyId, heKeyVersions: identity.heKeyVersions, merged };
}
