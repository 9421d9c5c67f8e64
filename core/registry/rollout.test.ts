// Staged rollout: canary-only wraps, derived content keys, promotion and rollback manifests.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomBytes } from '../random.ts';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { generateKemKeyPair, openPayload, unwrapContentKey } from '../crypto/kem.ts';
import { attestRobotKeys, deriveAttestKey } from '../records/enrollment.ts';
import { decodeReleasePayload, openReleaseManifest, releaseContext } from '../records/release-manifest.ts';
import { buildSignedRelease, type ReleaseRobot } from '../round/release.ts';
import { selectCanaryRobots } from './canary.ts';
import { buildStagedRelease, recoverReleaseFiles, releaseContentKey, rollbackSource, selectRolloutRobots } from './rollout.ts';

const vector = join(import.meta.dirname, '../../tests/vectors/peft/tiny-lora');
const files = { adapterConfigJson: new Uint8Array(readFileSync(join(vector, 'adapter_config.json'))), adapterSafetensors: new Uint8Array(readFileSync(join(vector, 'adapter_model.safetensors'))) };

describe('rollout', () => {
  const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
  const attestRoot = randomBytes(32);
  const kems = new Map<string, Uint8Array>();
  const robots: ReleaseRobot[] = Array.from({ length: 6 }, (_, i) => {
    const id = `rbt_${i}`;
    const kem = generateKemKeyPair();
    const dsa = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
    kems.set(id, kem.secretKey);
    const enrollmentId = `enr_${i}`;
    const attestation = attestRobotKeys({ attestKey: deriveAttestKey({ attestRoot, bundleId: enrollmentId }), fleetId: 'flt_1', bundleId: enrollmentId, dsaPublicKey: dsa.publicKey, kemPublicKey: kem.publicKey });
    return { id, enrollmentId, dsaPublicKey: dsa.publicKey, kemPublicKey: kem.publicKey, attestation };
  });
  const open = (manifest: Uint8Array, payload: Uint8Array, robotId: string) => {
    const { record } = openReleaseManifest({ bytes: manifest, trustedKeys: [officer.publicKey] });
    const wrap = record.wraps.find((w) => w.robotId === robotId)!;
    const context = releaseContext({ releaseId: record.releaseId, fleetId: record.fleetId });
    const key = unwrapContentKey({ kemCiphertext: wrap.kemCiphertext, wrappedKey: wrap.wrappedKey, secretKey: kems.get(robotId)!, context });
    return decodeReleasePayload({ bytes: openPayload({ key, sealed: payload, aad: context }) });
  };
  const base = { orgId: 'org_1', fleetId: 'flt_1', roundId: 'rnd_1', createdAt: 1, files, robots, attestRoot, signer: officer };

  it('selects the canary for stage canary and everyone for stage full', () => {
    const ids = robots.map((r) => r.id);
    expect(selectRolloutRobots({ releaseId: 'r', robotIds: ids, canaryFraction: 0.34, stage: 'canary' })).toEqual(selectCanaryRobots({ releaseId: 'r', robotIds: ids, fraction: 0.34 }));
    expect(selectRolloutRobots({ releaseId: 'r', robotIds: ids, canaryFraction: 0.34, stage: 'full' })).toEqual(ids);
    expect(selectRolloutRobots({ releaseId: 'r', robotIds: ids, canaryFraction: 1, stage: 'canary' })).toEqual(ids);
    expect(() => selectRolloutRobots({ releaseId: 'r', robotIds: ids, canaryFraction: 1, stage: 'all' as never })).toThrow(/"stage"/);
    expect(releaseContentKey({ attestRoot, fleetId: 'f', releaseId: 'a' })).toEqual(releaseContentKey({ attestRoot, fleetId: 'f', releaseId: 'a' }));
    expect(releaseContentKey({ attestRoot, fleetId: 'f', releaseId: 'a' })).not.toEqual(releaseContentKey({ attestRoot, fleetId: 'f', releaseId: 'b' }));
  });

  it('wraps a canary release only for the canary; promotion wraps the same adapter for all; rollback restores version N', () => {
    const v1 = buildSignedRelease({ ...base, releaseId: 'rel-1', releaseVersion: 1, canaryFraction: 1 });
    expect(v1.wrapped).toEqual(robots.map((r) => r.id));
    const v2 = buildSignedRelease({ ...base, roundId: 'rnd_2', files: { ...files, adapterConfigJson: new TextEncoder().encode(new TextDecoder().decode(files.adapterConfigJson).replace('{', '{"note":"v2",')) }, releaseId: 'rel-2', releaseVersion: 2, canaryFraction: 0.34 });
    const canary = selectCanaryRobots({ releaseId: 'rel-2', robotIds: robots.map((r) => r.id), fraction: 0.34 });
    expect(v2.wrapped).toEqual(canary);
    expect(canary).toHaveLength(3);
    expect(v2.pending).toEqual(robots.map((r) => r.id).filter((id) => !canary.includes(id)));
    expect(open(v2.manifest, v2.payload, canary[0]!).adapterConfigJson).toEqual(open(v2.manifest, v2.payload, canary[1]!).adapterConfigJson);

    // the officer re-opens its own release; a stranger's root cannot
    const recovered = recoverReleaseFiles({ manifest: v2.manifest, payload: v2.payload, attestRoot, trustedKeys: [officer.publicKey] });
    expect(() => recoverReleaseFiles({ manifest: v2.manifest, payload: v2.payload, attestRoot: randomBytes(32), trustedKeys: [officer.publicKey] })).toThrow(/derived content key/);
    const promoted = buildStagedRelease({ kind: 'promotion', source: recovered, releaseId: 'rel-3', releaseVersion: 3, createdAt: 2, robots, attestRoot, signer: officer });
    expect(promoted.record).toMatchObject({ kind: 'release', rollbackOf: 0, roundId: 'rnd_2', canaryFraction: 1, releaseVersion: 3 });
    expect(promoted.wrapped).toEqual(robots.map((r) => r.id));
    const pending = v2.pending![0]!;
    expect(open(promoted.manifest, promoted.payload, pending).adapterConfigJson).toEqual(open(v2.manifest, v2.payload, canary[0]!).adapterConfigJson);

    const source = rollbackSource({ releases: [{ releaseVersion: 1, releaseId: 'rel-1' }, { releaseVersion: 3, releaseId: 'rel-3' }], toVersion: 1 });
    expect(source.releaseId).toBe('rel-1');
    expect(() => rollbackSource({ releases: [{ releaseVersion: 1 }, { releaseVersion: 3 }], toVersion: 3 })).toThrow(/below the latest/);
    expect(() => rollbackSource({ releases: [{ releaseVersion: 1 }, { releaseVersion: 3 }], toVersion: 2 })).toThrow(/existing/);
    const rollback = buildStagedRelease({ kind: 'rollback', source: recoverReleaseFiles({ manifest: v1.manifest, payload: v1.payload, attestRoot, trustedKeys: [officer.publicKey] }), releaseId: 'rel-4', releaseVersion: 4, createdAt: 3, robots, attestRoot, signer: officer });
    expect(rollback.record).toMatchObject({ kind: 'rollback', rollbackOf: 1, roundId: 'rnd_1', releaseVersion: 4 });
    expect(open(rollback.manifest, rollback.payload, canary[0]!).adapterConfigJson).toEqual(files.adapterConfigJson);
    expect(() => buildStagedRelease({ kind: 'promotion', source: { record: rollback.record, files }, releaseId: 'x', releaseVersion: 5, createdAt: 4, robots, attestRoot, signer: officer })).toThrow(/only a release/);
    expect(() => buildStagedRelease({ kind: 'rollback', source: recovered, releaseId: 'x', releaseVersion: 2, createdAt: 4, robots, attestRoot, signer: officer })).toThrow(/releaseVersion/);
  });
});
