// `tensorguard officer …`: keys, enrollment bundles, rounds, review (verify -> sum -> decrypt) and release.
// Secrets are opened from the sealed file only inside the command that needs them.
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { readFile, cp, rm } from 'node:fs/promises';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { ApiClient } from '../api.ts';
import { exists, loadAdapterDir, openFromFile, readJson, readSession, saveAdapterDir, sealToFile, writeFileAtomic, writeJson } from '../home.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { randomBytes } from '../../core/random.ts';
import { fromBase64, toBase64, bytesToHex } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { decodeOfficerSecrets, encodeOfficerSecrets, type OfficerSecrets } from '../../core/records/officer-secrets.ts';
import { generateKeyPair, createDecryptor } from '../../core/he/seal.ts';
import { PARAM_SET_ID } from '../../core/he/params.ts';
import { quantizationBound } from '../../core/he/packing.ts';
import { openKeyRecord, signKeyRecord } from '../../core/records/key-record.ts';
import { deriveAttestKey, encodeEnrollmentBundle, verifyRobotAttestation } from '../../core/records/enrollment.ts';
import { openRoundConfig, signRoundConfig, type DpMode, type RoundConfig } from '../../core/records/round-config.ts';
import { decodeContributionManifest } from '../../core/records/contribution-manifest.ts';
import { signReleaseManifest, releaseContext, encodeReleasePayload, type ReleaseWrap } from '../../core/records/release-manifest.ts';
import { wrapContentKey, sealPayload } from '../../core/crypto/kem.ts';
import { adapterFingerprint, adapterSchema, type PeftAdapter } from '../../core/peft/adapter.ts';
import { planRound } from '../../core/round/plan.ts';
import { roundStartAdapter } from '../../core/round/robot.ts';
import { applyMeanUpdate, meanUpdateFromSlots, updateStatistics, verifyContributions } from '../../core/round/officer.ts';
import { trainableLength } from '../../core/round/mask.ts';
import { roundPrivacyParams } from '../../core/round/privacy.ts';
import { privacySpent, validateRoundPrivacy } from '../../core/dp/round-privacy.ts';

interface OfficerIdentity {
  dsaPublicKey: string;
  officerKeyId: string;
  heKeyVersions: number[];
}

const officerDir = (home: string) => join(home, 'officer');
const roundDir = (home: string, roundId: string) => join(home, 'officer', 'rounds', roundId);

async function sessionClient(ctx: CommandContext) {
  const session = await readSession(ctx.home);
  return { session, api: new ApiClient(session.server, { kind: 'session', token: session.token }) };
}

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
  const identity: OfficerIdentity = {
    dsaPublicKey: toBase64(secrets.dsa.publicKey),
    officerKeyId: bytesToHex(sha256(secrets.dsa.publicKey)).slice(0, 16),
    heKeyVersions: secrets.he.map((k) => k.keyVersion),
  };
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
}

export async function officerRoundOpen(ctx: CommandContext, opts: RoundOpenOptions): Promise<{ roundId: string; valueCount: number; ciphertextCount: number; scale: number; fieldsPerSlot: number; bytesPerValue: number }> {
  const { session, api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const template = await loadAdapterDir(opts.template);
  const current = await api.json<{ version: number; record: string }>('GET', '/v1/he-keys/current');
  const keyRecord = openKeyRecord({ bytes: fromBase64(current.record), trustedKeys: [secrets.dsa.publicKey] });
  const mode = opts.dpMode ?? 'off';
  const dp = {
    mode,
    clip: mode === 'off' ? 0 : (opts.clip ?? 1),
    noiseMultiplier: mode === 'off' ? 0 : (opts.noiseMultiplier ?? 1),
    delta: mode === 'off' ? 0 : (opts.delta ?? 1e-5),
    epsilonBudget: mode === 'off' ? 0 : (opts.epsilonBudget ?? 10),
  };
  const tensors = adapterSchema({ adapter: template });
  const maskSeed = randomBytes(32);
  // Default: room for every robot enrolled in the fleet now (the packing's headroom grows with log2 of it).
  const enrolled = opts.maxContributors === undefined ? (await api.json<unknown[]>('GET', `/v1/robots?fleet=${encodeURIComponent(opts.fleet)}`)).length : 0;
  const maxContributors = opts.maxContributors ?? Math.min(1024, Math.max(2, opts.quorum, enrolled));
  if (opts.quorum > maxContributors) throw new CliError(`--quorum ${opts.quorum} exceeds --max-contributors ${maxContributors}`, 'bad_option');
  const plan = planRound({ tensors, freezeA: !!opts.freezeA, maskSeed, sparsity: opts.sparsity ?? 1, maxContributors, fieldBits: opts.fieldBits, range: opts.range, dp });
  const deadline = opts.deadline ? Date.parse(opts.deadline) : 0;
  if (Number.isNaN(deadline)) throw new CliError(`--deadline expects an ISO date, got ${opts.deadline}`, 'bad_option');
  const config: RoundConfig = {
    roundId: randomUUID(),
    orgId: session.orgId,
    fleetId: opts.fleet,
    createdAt: Date.now(),
    deadline,
    quorum: opts.quorum,
    maxContributors,
    keyVersion: keyRecord.record.keyVersion,
    heKeyFingerprint: keyRecord.fingerprint,
    baseAdapterSha256: adapterFingerprint({ adapter: template }),
    tensors,
    freezeA: !!opts.freezeA,
    // FFA-LoRA's frozen A must stay the same across a fleet's rounds, so it is derived from the fleet.
    aSeed: sha256(new TextEncoder().encode(`tensorguard/ffa-lora-A/v1/${opts.fleet}`)),
    maskSeed,
    sparsity: opts.sparsity ?? 1,
    quant: { fieldBits: plan.fieldBits, scale: plan.scale, encoding: plan.encoding },
    dp,
    valueCount: plan.valueCount,
    ciphertextCount: plan.ciphertextCount,
  };
  if (mode !== 'off') {
    const params = roundPrivacyParams({ config });
    validateRoundPrivacy({ params });
    const one = privacySpent({ rounds: [params], delta: dp.delta });
    if (one.epsilon > dp.epsilonBudget)
      throw new CliError(`one round of these DP settings costs epsilon ${one.epsilon.toFixed(3)} > budget ${dp.epsilonBudget}; raise --noise-multiplier or the budget`, 'dp_budget_exhausted');
  }
  const signed = signRoundConfig({ config, secretKey: secrets.dsa.secretKey, publicKey: secrets.dsa.publicKey });
  const dir = roundDir(ctx.home, config.roundId);
  await writeFileAtomic(join(dir, 'config.bin'), signed);
  await cp(opts.template, join(dir, 'base'), { recursive: true });
  await api.json('POST', '/v1/rounds', { config: toBase64(signed) });
  const bytesPerValue = (plan.ciphertextCount * 65649) / plan.valueCount;
  return { roundId: config.roundId, valueCount: plan.valueCount, ciphertextCount: plan.ciphertextCount, scale: plan.scale, fieldsPerSlot: plan.layout.fieldsPerSlot, bytesPerValue };
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
}

export async function officerReview(ctx: CommandContext, opts: { round: string; out: string }): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const { api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const { config, fingerprint, base } = await roundFromHome(ctx, opts.round, secrets.dsa.publicKey);
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
  for (const [i, c] of contributions.entries()) {
    packages.set(c.robotId, await api.binary('GET', `/v1/rounds/${encodeURIComponent(config.roundId)}/contributions/${encodeURIComponent(c.id)}/package`));
    bar.update(i + 1);
  }
  bar.stop();
  const serverAggregate = await api.binary('GET', `/v1/rounds/${encodeURIComponent(config.roundId)}/aggregate/ciphertext`);
  lap('download');
  const heKey = secrets.he.find((k) => k.keyVersion === config.keyVersion);
  if (!heKey) throw new CliError(`this officer holds no secret key for HE key version ${config.keyVersion}`, 'missing_key');
  const verified = verifyContributions({
    config,
    configFingerprint: fingerprint,
    manifest,
    packages,
    robots: robotKeys,
    attestKeyFor: (enrollmentId) => deriveAttestKey({ attestRoot: secrets.attestRoot, bundleId: enrollmentId }),
    parmsId: heKey.parmsId,
    serverAggregate,
  });
  lap('verify_and_sum');
  const decryptor = await createDecryptor({ secretKey: heKey.secretKey, paramSetId: heKey.paramSetId });
  const dbar = ctx.progress('Decrypting aggregate', config.ciphertextCount);
  let slots: BigUint64Array;
  try {
    slots = decryptor.decryptSlots({ ciphertexts: verified.ciphertexts, onProgress: (done) => dbar.update(done) });
  } finally {
    dbar.stop();
    decryptor.destroy();
  }
  lap('decrypt');
  const total = trainableLength({ tensors: config.tensors, freezeA: config.freezeA });
  const mean = meanUpdateFromSlots({ config, slots, contributors: verified.contributors, trainableLength: total });
  const start = roundStartAdapter({ config, base });
  const candidate = applyMeanUpdate({ config, start, mean });
  lap('unpack');
  const files = await saveAdapterDir(opts.out, candidate);
  const candidateDir = join(roundDir(ctx.home, config.roundId), 'candidate');
  await rm(candidateDir, { recursive: true, force: true });
  await saveAdapterDir(candidateDir, candidate);
  const dpReport =
    config.dp.mode === 'off'
      ? { mode: 'off' }
      : { mode: config.dp.mode, perRound: privacySpent({ rounds: [roundPrivacyParams({ config })], delta: config.dp.delta }), delta: config.dp.delta, budget: config.dp.epsilonBudget };
  const report = {
    roundId: config.roundId,
    fleetId: config.fleetId,
    contributors: verified.contributors,
    quorum: config.quorum,
    robotIds: verified.robotIds,
    aggregateSha256: bytesToHex(sha256(verified.ciphertexts)),
    candidateAdapterSha256: bytesToHex(sha256(files.safetensors)),
    quantizationBound: quantizationBound({ scale: config.quant.scale }),
    freezeA: config.freezeA,
    sparsity: config.sparsity,
    dp: dpReport,
    tensors: updateStatistics({ config, mean }),
    timingsMs: { ...timings, total: Math.round(performance.now() - t0) },
  };
  await writeJson(join(opts.out, 'report.json'), report);
  return report;
}

export async function officerRelease(ctx: CommandContext, opts: { round: string; canary?: number }): Promise<{ releaseId: string; releaseVersion: number; robots: number; skipped: string[]; adapterSha256: string }> {
  const { session, api } = await sessionClient(ctx);
  const secrets = await loadOfficerSecrets(ctx);
  const { config } = await roundFromHome(ctx, opts.round, secrets.dsa.publicKey);
  const candidateDir = join(roundDir(ctx.home, config.roundId), 'candidate');
  if (!(await exists(candidateDir))) throw new CliError(`round ${config.roundId} has not been reviewed yet: run tensorguard officer review first`, 'not_reviewed');
  const adapterConfigJson = new Uint8Array(await readFile(join(candidateDir, 'adapter_config.json')));
  const adapterSafetensors = new Uint8Array(await readFile(join(candidateDir, 'adapter_model.safetensors')));
  await loadAdapterDir(candidateDir); // refuse to release anything that is not a valid adapter
  const robots = await api.json<RobotListItem[]>('GET', `/v1/robots?fleet=${encodeURIComponent(config.fleetId)}`);
  const releases = await api.json<Array<{ releaseVersion: number }>>('GET', `/v1/releases?fleet=${encodeURIComponent(config.fleetId)}`);
  const releaseVersion = releases.reduce((m, r) => Math.max(m, r.releaseVersion), 0) + 1;
  const releaseId = randomUUID();
  const context = releaseContext({ releaseId, fleetId: config.fleetId });
  const contentKey = randomBytes(32);
  const wraps: ReleaseWrap[] = [];
  const skipped: string[] = [];
  for (const r of robots) {
    const kemPublicKey = fromBase64(r.kemPublicKey);
    try {
      verifyRobotAttestation({
        attestKey: deriveAttestKey({ attestRoot: secrets.attestRoot, bundleId: r.enrollmentId }),
        fleetId: config.fleetId,
        bundleId: r.enrollmentId,
        dsaPublicKey: fromBase64(r.dsaPublicKey),
        kemPublicKey,
        attestation: fromBase64(r.attestation),
      });
    } catch {
      skipped.push(r.id); // never wrap a release key to a key this officer did not enroll
      continue;
    }
    wraps.push({ robotId: r.id, ...wrapContentKey({ contentKey, recipientPublicKey: kemPublicKey, context }) });
  }
  const payload = sealPayload({ key: contentKey, plaintext: encodeReleasePayload({ adapterConfigJson, adapterSafetensors }), aad: context });
  const manifest = signReleaseManifest({
    manifest: {
      releaseId,
      orgId: session.orgId,
      fleetId: config.fleetId,
      roundId: config.roundId,
      releaseVersion,
      kind: 'release',
      rollbackOf: 0,
      adapterSha256: sha256(adapterSafetensors),
      payloadSha256: sha256(payload),
      canaryFraction: opts.canary ?? 1,
      createdAt: Date.now(),
      wraps,
    },
    secretKey: secrets.dsa.secretKey,
    publicKey: secrets.dsa.publicKey,
  });
  await api.json('POST', '/v1/releases', { manifest: toBase64(manifest), payload: toBase64(payload) });
  return { releaseId, releaseVersion, robots: wraps.length, skipped, adapterSha256: bytesToHex(sha256(adapterSafetensors)) };
}

export async function officerIdentity(ctx: CommandContext): Promise<OfficerIdentity | null> {
  return readJson<OfficerIdentity>(join(officerDir(ctx.home), 'identity.json'));
}
