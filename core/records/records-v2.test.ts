// Version 2 of the round config (training stage, on-policy approval) and of the release manifest
// (evaluation gate, override): round trips, the rules decode enforces, and version 1 still decoding.
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { randomBytes } from '../random.ts';
import { decodeRoundConfig, encodeRoundConfig, openRoundConfig, signRoundConfig, roundStage, type RoundConfig } from './round-config.ts';
import { decodeReleaseManifest, encodeReleaseManifest, openReleaseManifest, signReleaseManifest, type ReleaseGate, type ReleaseManifest } from './release-manifest.ts';

const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });

const round: RoundConfig = {
  roundId: 'r-1', orgId: 'org-1', fleetId: 'f-1', createdAt: 1, deadline: 0, quorum: 2, maxContributors: 64, keyVersion: 1,
  heKeyFingerprint: randomBytes(32), baseAdapterSha256: randomBytes(32), tensors: [{ name: 'a.lora_A.weight', shape: [4, 8] }],
  freezeA: false, aSeed: randomBytes(32), maskSeed: randomBytes(32), sparsity: 1,
  quant: { fieldBits: 16, scale: 1000, encoding: 'offset' }, dp: { mode: 'off', clip: 0, noiseMultiplier: 0, delta: 0, epsilonBudget: 0 },
  valueCount: 32, ciphertextCount: 1,
};

describe('round config v2: training stage', () => {
  it('carries the stage and the on-policy approval under the officer signature', () => {
    const onPolicy = { ...round, stage: 'on_policy_rl' as const, onPolicyApproval: { reason: 'supervised cell, e-stop staffed', approvedAt: 7 } };
    const signed = signRoundConfig({ config: onPolicy, secretKey: officer.secretKey, publicKey: officer.publicKey });
    const opened = openRoundConfig({ bytes: signed, trustedKeys: [officer.publicKey] });
    expect(opened.record.stage).toBe('on_policy_rl');
    expect(opened.record.onPolicyApproval).toEqual({ reason: 'supervised cell, e-stop staffed', approvedAt: 7 });
    expect(opened.record.formatVersion).toBe(2);
  });
  it('refuses an on-policy round without approval, and an approval on another stage', () => {
    expect(() => encodeRoundConfig({ config: { ...round, stage: 'on_policy_rl' } })).toThrow(/onPolicyApproval/);
    expect(() => encodeRoundConfig({ config: { ...round, stage: 'on_policy_rl', onPolicyApproval: { reason: '  ', approvedAt: 1 } } })).toThrow(/onPolicyApproval/);
    expect(() => encodeRoundConfig({ config: { ...round, stage: 'offline_rl', onPolicyApproval: { reason: 'x', approvedAt: 1 } } })).toThrow(/only for on_policy_rl/);
    // A body whose approval flag was cleared (stage byte still on-policy) does not decode.
    const body = encodeRoundConfig({ config: { ...round, stage: 'on_policy_rl', onPolicyApproval: { reason: 'ok', approvedAt: 1 } } });
    const reasonLen = 2; // "ok"
    const flagAt = body.length - 8 - reasonLen - 4 - 1;
    const cleared = body.slice();
    cleared[flagAt] = 0;
    expect(() => decodeRoundConfig({ bytes: cleared })).toThrowError(expect.objectContaining({ code: 'malformed' }));
  });
  it('still decodes version 1 (stage: imitation learning) with the v1 fingerprint domain', () => {
    const v1 = { ...round, formatVersion: 1 as const };
    const signed = signRoundConfig({ config: v1, secretKey: officer.secretKey, publicKey: officer.publicKey });
    const opened = openRoundConfig({ bytes: signed, trustedKeys: [officer.publicKey] });
    expect(opened.record.formatVersion).toBe(1);
    expect(opened.record.stage).toBeUndefined();
    expect(roundStage(opened.record)).toBe('imitation_learning');
    expect(encodeRoundConfig({ config: opened.record })).toEqual(encodeRoundConfig({ config: v1 }));
    expect(() => encodeRoundConfig({ config: { ...v1, stage: 'offline_rl' } })).toThrow(/version 1/);
  });
});

const manifest: ReleaseManifest = {
  releaseId: 'rel-1', orgId: 'org-1', fleetId: 'f-1', roundId: 'r-1', releaseVersion: 1, kind: 'release', rollbackOf: 0,
  adapterSha256: randomBytes(32), payloadSha256: randomBytes(32), canaryFraction: 1, createdAt: 9, wraps: [],
};
const failed: ReleaseGate = {
  status: 'failed', evaluator: 'reference-task/v1 onnxruntime-web/wasm', reportSha256: randomBytes(32), detail: 'site-c below 70 %',
  failed: ['success_rate[site:site-c]'], metrics: [{ name: 'success_rate[site:site-c]', value: 0.3 }, { name: 'kl_divergence', value: 0.01 }],
  override: { reason: 'site C is new; canary only' },
};

describe('release manifest v2: the evaluation gate', () => {
  it('signs the gate, its metrics and the override', () => {
    const signed = signReleaseManifest({ manifest: { ...manifest, gate: failed }, secretKey: officer.secretKey, publicKey: officer.publicKey });
    const { record } = openReleaseManifest({ bytes: signed, trustedKeys: [officer.publicKey] });
    expect(record.gate).toEqual(failed);
    expect(record.formatVersion).toBe(2);
  });
  it('refuses a failed gate without an override, at signing and at decoding', () => {
    expect(() => encodeReleaseManifest({ manifest: { ...manifest, gate: { ...failed, override: null } } })).toThrow(/override/);
    const body = encodeReleaseManifest({ manifest: { ...manifest, gate: failed } });
    // Strip the override: flag byte -> 0 and the reason -> empty.
    const reason = new TextEncoder().encode(failed.override!.reason);
    const stripped = new Uint8Array(body.length - reason.length);
    stripped.set(body.subarray(0, body.length - reason.length - 5));
    stripped[stripped.length - 5] = 0; // override flag
    stripped.set([0, 0, 0, 0], stripped.length - 4); // empty reason
    expect(() => decodeReleaseManifest({ bytes: stripped })).toThrowError(expect.objectContaining({ code: 'malformed' }));
    expect(() => encodeReleaseManifest({ manifest: { ...manifest, gate: { ...failed, status: 'passed', failed: [], override: { reason: 'x' } } } })).toThrow(/nothing to override/);
  });
  it('still decodes version 1 manifests (no gate) under the v1 fingerprint domain', () => {
    const signed = signReleaseManifest({ manifest: { ...manifest, formatVersion: 1 }, secretKey: officer.secretKey, publicKey: officer.publicKey });
    const { record } = openReleaseManifest({ bytes: signed, trustedKeys: [officer.publicKey] });
    expect(record.formatVersion).toBe(1);
    expect(record.gate).toBeUndefined();
    // The same body signed under the v2 domain does not verify as v1 (domains differ by version).
    const v2 = signReleaseManifest({ manifest, secretKey: officer.secretKey, publicKey: officer.publicKey });
    expect(openReleaseManifest({ bytes: v2 }).fingerprint).not.toEqual(openReleaseManifest({ bytes: signed }).fingerprint);
  });
});
