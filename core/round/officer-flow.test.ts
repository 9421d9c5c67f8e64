// The shared officer flow (core/round/open.ts, review.ts, release.ts) in memory: a config built from a
// template, robots' packages, the review refusing what it must and decrypting the proven sum, a release
// that only attested robots can open, and the signed rejection record.
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, createEncryptor, type HeKeyPair } from '../he/seal.ts';
import { PARAM_SET_ID } from '../he/params.ts';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { generateKemKeyPair, openPayload, unwrapContentKey } from '../crypto/kem.ts';
import { randomBytes, UniformSource } from '../random.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { bytesToHex, equalBytes } from '../bytes.ts';
import { flattenTensors, type PeftAdapter } from '../peft/adapter.ts';
import { openRoundConfig, signRoundConfig } from '../records/round-config.ts';
import { buildUpdatePackage, openUpdatePackage } from '../records/update-package.ts';
import type { ContributionManifest } from '../records/contribution-manifest.ts';
import { attestRobotKeys, deriveAttestKey } from '../records/enrollment.ts';
import { decodeReleasePayload, openReleaseManifest, releaseContext } from '../records/release-manifest.ts';
import { openRoundRejection, signRoundRejection } from '../records/round-rejection.ts';
import { sumCiphertextBlocks } from '../he/aggregate.ts';
import { BudgetExhaustedError, IntegrityError, QuorumNotMetError, SignatureInvalidError, UntrustedSignerError } from '../errors.ts';
import { buildRoundConfig, defaultMaxContributors, fleetASeed, resolveDp } from './open.ts';
import { buildCandidate, decryptAggregate, histogram, reviewReport, tensorHistograms, verifyRoundContributions, verifyRoundContributionsAsync } from './review.ts';
import { attestedRobots, buildSignedRelease, nextReleaseVersion, type ReleaseRobot } from './release.ts';
import { computeDelta, encodeContribution, roundStartAdapter } from './robot.ts';
import { trainableTensorNames } from './mask.ts';

function template(layers = 2, r = 4, d = 32): PeftAdapter {
  const random = new UniformSource();
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (let l = 0; l < layers; l++) {
    const p = `base_model.model.model.layers.${l}.self_attn.q_proj`;
    tensors.set(`${p}.lora_A.weight`, Float32Array.from({ length: r * d }, () => (random.next() - 0.5) * 0.2));
    shapes.set(`${p}.lora_A.weight`, [r, d]);
    tensors.set(`${p}.lora_B.weight`, Float32Array.from({ length: r * d }, () => (random.next() - 0.5) * 0.02));
    shapes.set(`${p}.lora_B.weight`, [d, r]);
  }
  return { config: { peft_type: 'LORA', r, lora_alpha: 2 * r, target_modules: ['q_proj'] }, tensors, shapes };
}

const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const attestRoot = randomBytes(32);
let he: HeKeyPair;
beforeAll(async () => {
  he = await generateKeyPair({ paramSetId: PARAM_SET_ID });
});

describe('buildRoundConfig', () => {
  it('fills the CLI defaults and plans the packing', () => {
    const built = buildRoundConfig({
      options: { fleetId: 'flt_1', quorum: 2 },
      template: template(),
      orgId: 'org_1',
      keyRecord: { keyVersion: 3, fingerprint: randomBytes(32) },
      roundId: 'r1',
      createdAt: 5,
      enrolledRobots: 5,
    });
    expect(built.config.maxContributors).toBe(5);
    expect(built.config.keyVersion).toBe(3);
    expect(built.config.dp).toEqual({ mode: 'off', clip: 0, noiseMultiplier: 0, delta: 0, epsilonBudget: 0 });
    expect(equalBytes(built.config.aSeed, fleetASeed({ fleetId: 'flt_1' }))).toBe(true);
    expect(built.bytesPerValue).toBeCloseTo((built.plan.ciphertextCount * 65649) / built.plan.valueCount, 9);
    expect(built.epsilonPerRound).toBeNull();
    expect(defaultMaxContributors({ quorum: 1, enrolledRobots: 0 })).toBe(2);
    expect(resolveDp({ dpMode: 'local' })).toEqual({ mode: 'local', clip: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 });
  });

  it('refuses a quorum above maxContributors and a DP round that alone exceeds its budget', () => {
    const base = { template: template(), orgId: 'o', keyRecord: { keyVersion: 1, fingerprint: randomBytes(32) }, roundId: 'r', createdAt: 1 };
    expect(() => buildRoundConfig({ ...base, options: { fleetId: 'f', quorum: 5, maxContributors: 4 } })).toThrow(RangeError);
    expect(() => buildRoundConfig({ ...base, options: { fleetId: 'f', quorum: 2, dpMode: 'local', noiseMultiplier: 0.05, epsilonBudget: 0.1 } })).toThrow(BudgetExhaustedError);
    const dp = buildRoundConfig({ ...base, options: { fleetId: 'f', quorum: 2, dpMode: 'local', noiseMultiplier: 2, epsilonBudget: 50 } });
    expect(dp.epsilonPerRound).toBeGreaterThan(0);
  });
});

describe('review and release', () => {
  async function round(options: { robots: number; quorum: number }) {
    const base = template();
    const { config } = buildRoundConfig({
      options: { fleetId: 'flt_1', quorum: options.quorum, maxContributors: 4 },
      template: base,
      orgId: 'org_1',
      keyRecord: { keyVersion: 1, fingerprint: randomBytes(32) },
      roundId: 'round-1',
      createdAt: 1,
    });
    const signed = signRoundConfig({ config, secretKey: officer.secretKey, publicKey: officer.publicKey });
    const { fingerprint } = openRoundConfig({ bytes: signed, trustedKeys: [officer.publicKey] });
    const start = roundStartAdapter({ config, base });
    const names = trainableTensorNames({ tensors: config.tensors, freezeA: false });
    const encryptor = await createEncryptor({ publicKey: he.publicKey, paramSetId: PARAM_SET_ID });
    const manifest: ContributionManifest = { roundId: config.roundId, roundConfigFingerprint: fingerprint, aggregateSha256: new Uint8Array(32), entries: [] };
    const packages = new Map<string, Uint8Array>();
    const robots: ReleaseRobot[] = [];
    const kemSecrets = new Map<string, Uint8Array>();
    const trainedVectors: Float32Array[] = [];
    let sum: Uint8Array | null = null;
    for (let i = 0; i < options.robots; i++) {
      const random = new UniformSource();
      const trained: PeftAdapter = { ...start, tensors: new Map([...start.tensors].map(([n, v]) => [n, v.map((x) => x + (random.next() - 0.5) * 0.02)])) };
      trainedVectors.push(flattenTensors({ adapter: trained, names }));
      const prepared = encodeContribution({ config, delta: computeDelta({ config, start, trained }), encryptor });
      const dsa = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
      const kem = generateKemKeyPair();
      const robotId = `rbt_${i}`;
      const bundleId = `enr_${i}`;
      const attestation = attestRobotKeys({ attestKey: deriveAttestKey({ attestRoot, bundleId }), fleetId: config.fleetId, bundleId, dsaPublicKey: dsa.publicKey, kemPublicKey: kem.publicKey });
      const pkg = buildUpdatePackage({
        meta: { roundId: config.roundId, robotId, fleetId: config.fleetId, keyVersion: 1, roundConfigFingerprint: fingerprint, valueCount: prepared.valueCount, ciphertextCount: prepared.ciphertextCount, createdAt: 1 },
        ciphertexts: prepared.ciphertexts,
        secretKey: dsa.secretKey,
        publicKey: dsa.publicKey,
      });
      const opened = openUpdatePackage({ bytes: pkg.bytes, robotPublicKey: dsa.publicKey });
      packages.set(robotId, pkg.bytes);
      robots.push({ id: robotId, enrollmentId: bundleId, dsaPublicKey: dsa.publicKey, kemPublicKey: kem.publicKey, attestation });
      kemSecrets.set(robotId, kem.secretKey);
      manifest.entries.push({ robotId, enrollmentId: bundleId, dsaPublicKey: dsa.publicKey, attestation, packageFingerprint: opened.fingerprint, packageSignature: opened.signature, ciphertextSha256: sha256(prepared.ciphertexts) });
      sum = sumCiphertextBlocks({ accumulator: sum, addend: prepared.ciphertexts, parmsId: he.parmsId });
    }
    encryptor.destroy();
    manifest.aggregateSha256 = sha256(sum!);
    return { base, config, fingerprint, manifest, packages, robots, kemSecrets, trainedVectors, names, serverAggregate: sum! };
  }

  it('verifies, decrypts, builds the candidate and signs a release only attested robots can open', async () => {
    const r = await round({ robots: 3, quorum: 2 });
    const verified = verifyRoundContributions({ ...r, configFingerprint: r.fingerprint, attestRoot, parmsId: he.parmsId });
    expect(verified.contributors).toBe(3);
    expect(verified.entries.map((e) => e.counted)).toEqual([true, true, true]);
    let progress = 0;
    const slots = await decryptAggregate({ verified, secretKey: he.secretKey, paramSetId: PARAM_SET_ID, onProgress: (d) => (progress = d) });
    expect(progress).toBe(r.config.ciphertextCount);
    const candidate = buildCandidate({ config: r.config, slots, contributors: verified.contributors, base: r.base });
    const got = flattenTensors({ adapter: candidate.adapter, names: r.names });
    const report = reviewReport({ config: r.config, verified, candidate });
    for (let k = 0; k < got.length; k++) {
      const mean = (r.trainedVectors[0]![k]! + r.trainedVectors[1]![k]! + r.trainedVectors[2]![k]!) / 3;
      expect(Math.abs(got[k]! - mean)).toBeLessThanOrEqual(report.quantizationBound + 1e-6);
    }
    expect(report.aggregateSha256).toBe(bytesToHex(sha256(r.serverAggregate)));
    expect(report.candidateAdapterSha256).toBe(bytesToHex(sha256(candidate.files['adapter_model.safetensors'])));
    expect(report.tensors).toHaveLength(r.names.length);
    const hists = tensorHistograms({ config: r.config, mean: candidate.mean, bins: 16 });
    expect(hists.map((h) => h.counts.reduce((a, b) => a + b, 0))).toEqual(report.tensors.map((t) => t.count));
    expect(histogram({ values: new Float32Array([1, 1, 1]), bins: 4 }).counts).toEqual([3, 0, 0, 0]);

    // A robot whose keys the officer never attested gets no key; a revoked one neither.
    const stranger = { ...r.robots[0]!, id: 'rbt_x', attestation: randomBytes(32) };
    const revoked = { ...r.robots[1]!, revokedAt: 5 };
    expect(attestedRobots({ robots: [stranger, revoked, r.robots[2]!], fleetId: 'flt_1', attestRoot }).skipped).toEqual(['rbt_x', 'rbt_1']);
    const release = buildSignedRelease({
      orgId: 'org_1',
      fleetId: 'flt_1',
      roundId: r.config.roundId,
      releaseId: 'rel-1',
      releaseVersion: nextReleaseVersion({ releases: [{ releaseVersion: 1 }, { releaseVersion: 2 }] }),
      canaryFraction: 1, // the whole fleet at once (a canary fraction wraps only the canary: core/registry/rollout.test.ts)
      createdAt: 9,
      files: { adapterConfigJson: candidate.files['adapter_config.json'], adapterSafetensors: candidate.files['adapter_model.safetensors'] },
      robots: [...r.robots, stranger],
      attestRoot,
      signer: officer,
    });
    expect(release.releaseVersion).toBe(3);
    expect(release.wrapped).toEqual(['rbt_0', 'rbt_1', 'rbt_2']);
    expect(release.skipped).toEqual(['rbt_x']);
    const { record } = openReleaseManifest({ bytes: release.manifest, trustedKeys: [officer.publicKey] });
    expect(record.canaryFraction).toBe(1);
    const wrap = record.wraps.find((w) => w.robotId === 'rbt_1')!;
    const context = releaseContext({ releaseId: 'rel-1', fleetId: 'flt_1' });
    const key = unwrapContentKey({ kemCiphertext: wrap.kemCiphertext, wrappedKey: wrap.wrappedKey, secretKey: r.kemSecrets.get('rbt_1')!, context });
    const files = decodeReleasePayload({ bytes: openPayload({ key, sealed: release.payload, aad: context }) });
    expect(equalBytes(sha256(files.adapterSafetensors), record.adapterSha256)).toBe(true);
    expect(() => buildSignedRelease({ ...{ orgId: 'o', fleetId: 'f', roundId: 'r', releaseId: 'x', releaseVersion: 1, canaryFraction: 1, createdAt: 1, robots: [], attestRoot, signer: officer }, files: { adapterConfigJson: new Uint8Array(2), adapterSafetensors: new Uint8Array(8) } })).toThrow();
  });

  it('refuses before decrypting, sync and async digests alike: stranger, duplicates, tampering, a lying server', async () => {
    const r = await round({ robots: 2, quorum: 2 });
    const digest = async (b: Uint8Array) => sha256(b);
    const base = { ...r, configFingerprint: r.fingerprint, attestRoot, parmsId: he.parmsId };
    const both = async (over: Partial<typeof base>) => {
      let syncError: unknown = null;
      let asyncError: unknown = null;
      let syncResult: unknown = null;
      let asyncResult: unknown = null;
      try {
        syncResult = verifyRoundContributions({ ...base, ...over });
      } catch (e) {
        syncError = e;
      }
      try {
        asyncResult = await verifyRoundContributionsAsync({ ...base, ...over, digest });
      } catch (e) {
        asyncError = e;
      }
      expect((asyncError as Error | null)?.constructor).toBe((syncError as Error | null)?.constructor);
      expect((asyncError as Error | null)?.message).toBe((syncError as Error | null)?.message);
      if (!syncError) expect(asyncResult).toEqual(syncResult);
      return syncError;
    };
    expect(await both({})).toBeNull();
    expect(await both({ attestRoot: randomBytes(32) })).toBeInstanceOf(SignatureInvalidError);
    expect(await both({ manifest: { ...r.manifest, entries: [r.manifest.entries[0]!, r.manifest.entries[0]!] } })).toBeInstanceOf(QuorumNotMetError);
    const tampered = new Map(r.packages);
    const bad = tampered.get('rbt_1')!.slice();
    bad[bad.length - 10]! ^= 1;
    tampered.set('rbt_1', bad);
    expect(await both({ packages: tampered })).toBeInstanceOf(IntegrityError);
    const lie = r.serverAggregate.slice();
    lie[lie.length - 1]! ^= 1;
    expect(await both({ serverAggregate: lie })).toBeInstanceOf(IntegrityError);
    expect(await both({ manifest: { ...r.manifest, aggregateSha256: randomBytes(32) } })).toBeInstanceOf(IntegrityError);
  });
});

describe('round rejection record', () => {
  it('round-trips, verifies against pinned keys and refuses an empty reason', () => {
    const rejection = { roundId: 'r', orgId: 'o', fleetId: 'f', roundConfigFingerprint: randomBytes(32), aggregateSha256: new Uint8Array(32), reason: 'lora_B norm 40x the last round', createdAt: 7 };
    const bytes = signRoundRejection({ rejection, secretKey: officer.secretKey, publicKey: officer.publicKey });
    const opened = openRoundRejection({ bytes, trustedKeys: [officer.publicKey] });
    expect(opened.record.reason).toBe(rejection.reason);
    expect(() => openRoundRejection({ bytes, trustedKeys: [generateSigningKeyPair({ algorithm: 'ml-dsa-65' }).publicKey] })).toThrow(UntrustedSignerError);
    expect(() => signRoundRejection({ rejection: { ...rejection, reason: ' ' }, secretKey: officer.secretKey, publicKey: officer.publicKey })).toThrow(TypeError);
  });
});
