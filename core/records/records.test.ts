// Records from the attacker's side: tampering, swapped keys, trailing bytes, unknown versions.
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { generateKemKeyPair, openPayload, sealPayload, unwrapContentKey, wrapContentKey } from '../crypto/kem.ts';
import { openSecret, sealSecret } from '../crypto/secretbox.ts';
import { randomBytes } from '../random.ts';
import { openKeyRecord, signKeyRecord, type HeKeyRecord } from './key-record.ts';
import { openRoundConfig, signRoundConfig, type RoundConfig } from './round-config.ts';
import { buildUpdatePackage, openUpdatePackage } from './update-package.ts';
import { NO_GATE, decodeReleaseManifest, encodeReleaseManifest, openReleaseManifest, signReleaseManifest, type ReleaseManifest } from './release-manifest.ts';
import { decodeContributionManifest, encodeContributionManifest } from './contribution-manifest.ts';
import { attestRobotKeys, decodeEnrollmentBundle, deriveAttestKey, encodeEnrollmentBundle, verifyRobotAttestation } from './enrollment.ts';
import { signRobotRequest, verifyRobotRequest } from './request-signature.ts';
import { utf8ToBytes } from '../bytes.ts';

const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const robot = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
const otherRobot = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });

const keyRecord: HeKeyRecord = { orgId: 'org-1', keyVersion: 1, paramSetId: 'tg-bfv-4096-q60-t35', parmsId: randomBytes(32), publicKey: randomBytes(1000), createdAt: 1_700_000_000_000 };

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index] = out[index]! ^ 0x01;
  return out;
}

describe('HE key record', () => {
  const signed = signKeyRecord({ record: keyRecord, secretKey: officer.secretKey, publicKey: officer.publicKey });
  it('opens with the pinned officer key', () => {
    const { record } = openKeyRecord({ bytes: signed, trustedKeys: [officer.publicKey] });
    expect(record).toEqual(keyRecord);
  });
  it('refuses a record the server re-signed with its own key (swapped key)', () => {
    const swapped = signKeyRecord({ record: { ...keyRecord, publicKey: randomBytes(1000) }, secretKey: mallory.secretKey, publicKey: mallory.publicKey });
    expect(() => openKeyRecord({ bytes: swapped, trustedKeys: [officer.publicKey] })).toThrowError(expect.objectContaining({ code: 'untrusted_signer' }));
  });
  it('refuses a tampered body, trailing bytes and an unknown version', () => {
    expect(() => openKeyRecord({ bytes: flip(signed, 60), trustedKeys: [officer.publicKey] })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
    const trailing = new Uint8Array(signed.length + 1);
    trailing.set(signed);
    expect(() => openKeyRecord({ bytes: trailing })).toThrowError(expect.objectContaining({ code: 'malformed' }));
    const v2 = signed.slice();
    v2[3] = 2;
    expect(() => openKeyRecord({ bytes: v2 })).toThrowError(expect.objectContaining({ code: 'unsupported_version' }));
    expect(() => openKeyRecord({ bytes: signed.subarray(0, 100) })).toThrowError(expect.objectContaining({ code: 'malformed' }));
  });
});

const round: RoundConfig = {
  roundId: 'r-1', orgId: 'org-1', fleetId: 'f-1', createdAt: 1, deadline: 0, quorum: 2, maxContributors: 64, keyVersion: 1,
  heKeyFingerprint: randomBytes(32), baseAdapterSha256: randomBytes(32), tensors: [{ name: 'a.lora_A.weight', shape: [4, 8] }],
  freezeA: false, aSeed: randomBytes(32), maskSeed: randomBytes(32), sparsity: 1,
  quant: { fieldBits: 16, scale: 1000, encoding: 'offset' }, dp: { mode: 'off', clip: 0, noiseMultiplier: 0, delta: 0, epsilonBudget: 0 },
  valueCount: 32, ciphertextCount: 1,
};

describe('round config', () => {
  it('round-trips and refuses invalid structure at signing time', () => {
    const signed = signRoundConfig({ config: round, secretKey: officer.secretKey, publicKey: officer.publicKey });
    expect(openRoundConfig({ bytes: signed, trustedKeys: [officer.publicKey] }).record).toEqual({ ...round, stage: 'imitation_learning', onPolicyApproval: null, formatVersion: 2 });
    expect(() => signRoundConfig({ config: { ...round, quorum: 0 }, secretKey: officer.secretKey, publicKey: officer.publicKey })).toThrow(RangeError);
    expect(() => signRoundConfig({ config: { ...round, dp: { ...round.dp, mode: 'distributed' } }, secretKey: officer.secretKey, publicKey: officer.publicKey })).toThrow(/modular/);
  });
});

describe('update package', () => {
  const ciphertexts = randomBytes(4096);
  const meta = { roundId: 'r-1', robotId: 'robot-1', fleetId: 'f-1', keyVersion: 1, roundConfigFingerprint: randomBytes(32), valueCount: 32, ciphertextCount: 1, createdAt: 5 };
  const pkg = buildUpdatePackage({ meta, ciphertexts, secretKey: robot.secretKey, publicKey: robot.publicKey });
  it('opens for the robot that signed it', () => {
    const opened = openUpdatePackage({ bytes: pkg.bytes, robotPublicKey: robot.publicKey });
    expect(opened.package.robotId).toBe('robot-1');
    expect(opened.ciphertexts).toEqual(ciphertexts);
  });
  it('refuses a package signed by another robot', () => {
    const forged = buildUpdatePackage({ meta, ciphertexts, secretKey: otherRobot.secretKey, publicKey: otherRobot.publicKey });
    expect(() => openUpdatePackage({ bytes: forged.bytes, robotPublicKey: robot.publicKey })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
  });
  it('refuses tampered ciphertexts and tampered metadata', () => {
    expect(() => openUpdatePackage({ bytes: flip(pkg.bytes, pkg.bytes.length - 10), robotPublicKey: robot.publicKey })).toThrowError(expect.objectContaining({ code: 'integrity' }));
    expect(() => openUpdatePackage({ bytes: flip(pkg.bytes, 20), robotPublicKey: robot.publicKey })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
  });
});

describe('release manifest and payload', () => {
  const kem = generateKemKeyPair();
  const otherKem = generateKemKeyPair();
  const contentKey = randomBytes(32);
  const ctx = utf8ToBytes('ctx');
  const wrap = wrapContentKey({ contentKey, recipientPublicKey: kem.publicKey, context: ctx });
  const manifest: ReleaseManifest = {
    releaseId: 'rel-1', orgId: 'org-1', fleetId: 'f-1', roundId: 'r-1', releaseVersion: 1, kind: 'release', rollbackOf: 0,
    adapterSha256: randomBytes(32), payloadSha256: randomBytes(32), canaryFraction: 0.1, createdAt: 9, wraps: [{ robotId: 'robot-1', ...wrap }],
  };
  it('round-trips, verifies, and unwraps only for the addressed robot', () => {
    const signed = signReleaseManifest({ manifest, secretKey: officer.secretKey, publicKey: officer.publicKey });
    expect(openReleaseManifest({ bytes: signed, trustedKeys: [officer.publicKey] }).record).toEqual({ ...manifest, gate: { ...NO_GATE, failed: [], metrics: [] }, formatVersion: 2 });
    expect(() => openReleaseManifest({ bytes: signed, trustedKeys: [mallory.publicKey] })).toThrowError(expect.objectContaining({ code: 'untrusted_signer' }));
    expect(unwrapContentKey({ ...wrap, secretKey: kem.secretKey, context: ctx })).toEqual(contentKey);
    expect(() => unwrapContentKey({ ...wrap, secretKey: otherKem.secretKey, context: ctx })).toThrowError(expect.objectContaining({ code: 'decryption_failed' }));
    expect(() => unwrapContentKey({ ...wrap, secretKey: kem.secretKey, context: utf8ToBytes('other') })).toThrowError(expect.objectContaining({ code: 'decryption_failed' }));
  });
  it('refuses a rollback flag without a target', () => {
    const bytes = encodeReleaseManifest({ manifest: { ...manifest, kind: 'rollback' } });
    expect(() => decodeReleaseManifest({ bytes })).toThrowError(expect.objectContaining({ code: 'malformed' }));
  });
  it('payload AES-GCM detects tampering', () => {
    const sealed = sealPayload({ key: contentKey, plaintext: utf8ToBytes('adapter'), aad: ctx });
    expect(openPayload({ key: contentKey, sealed, aad: ctx })).toEqual(utf8ToBytes('adapter'));
    expect(() => openPayload({ key: contentKey, sealed: flip(sealed, 20), aad: ctx })).toThrowError(expect.objectContaining({ code: 'decryption_failed' }));
  });
});

describe('enrollment attestation', () => {
  it('binds robot keys to the officer bundle secret', () => {
    const attestKey = deriveAttestKey({ attestRoot: randomBytes(32), bundleId: 'b-1' });
    const kem = generateKemKeyPair();
    const args = { fleetId: 'f-1', bundleId: 'b-1', dsaPublicKey: robot.publicKey, kemPublicKey: kem.publicKey };
    const attestation = attestRobotKeys({ attestKey, ...args });
    expect(() => verifyRobotAttestation({ attestKey, attestation, ...args })).not.toThrow();
    // A server that swaps in its own KEM key cannot keep the attestation valid.
    expect(() => verifyRobotAttestation({ attestKey, attestation, ...args, kemPublicKey: generateKemKeyPair().publicKey })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
  });
  it('bundle JSON round-trips and rejects unknown fields', () => {
    const bundle = { format: 'tensorguard-enrollment-bundle/v1' as const, serverUrl: 'http://127.0.0.1:8787', orgId: 'o', fleetId: 'f', bundleId: 'b', token: 'x'.repeat(32), attestKey: randomBytes(32), officerPublicKeys: [officer.publicKey], expiresAt: 1 };
    const text = encodeEnrollmentBundle({ bundle });
    expect(decodeEnrollmentBundle({ text })).toEqual(bundle);
    expect(() => decodeEnrollmentBundle({ text: JSON.stringify({ ...JSON.parse(text), extra: 1 }) })).toThrowError(expect.objectContaining({ code: 'malformed' }));
  });
});

describe('robot request signature', () => {
  it('verifies and refuses a changed body or path', () => {
    const body = utf8ToBytes('{"a":1}');
    const s = signRobotRequest({ method: 'POST', path: '/v1/x', body, secretKey: robot.secretKey });
    const base = { method: 'POST', path: '/v1/x', timestamp: s.timestamp, nonce: s.nonce, body, signature: s.signature, publicKey: robot.publicKey };
    expect(() => verifyRobotRequest(base)).not.toThrow();
    expect(() => verifyRobotRequest({ ...base, body: utf8ToBytes('{"a":2}') })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
    expect(() => verifyRobotRequest({ ...base, path: '/v1/y' })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
  });
});

describe('contribution manifest', () => {
  it('round-trips and refuses trailing bytes', () => {
    const manifest = { roundId: 'r', roundConfigFingerprint: randomBytes(32), aggregateSha256: randomBytes(32), entries: [{ robotId: 'a', enrollmentId: 'b', dsaPublicKey: robot.publicKey, attestation: randomBytes(32), packageFingerprint: randomBytes(32), packageSignature: randomBytes(2420), ciphertextSha256: randomBytes(32) }] };
    const bytes = encodeContributionManifest({ manifest });
    expect(decodeContributionManifest({ bytes })).toEqual(manifest);
    expect(() => decodeContributionManifest({ bytes: new Uint8Array([...bytes, 0]) })).toThrowError(expect.objectContaining({ code: 'malformed' }));
  });
});

describe('sealed secrets', () => {
  it('opens with the passphrase and refuses a wrong one or a downgraded KDF', async () => {
    const secret = randomBytes(100);
    const sealed = await sealSecret({ plaintext: secret, passphrase: 'correct horse', kdf: { log2N: 14, r: 8, p: 1 } });
    expect(await openSecret({ sealed, passphrase: 'correct horse' })).toEqual(secret);
    await expect(openSecret({ sealed, passphrase: 'wrong' })).rejects.toMatchObject({ code: 'decryption_failed' });
    const downgraded = sealed.slice();
    downgraded[5] = 4; // r = 4
    await expect(openSecret({ sealed: downgraded, passphrase: 'correct horse' })).rejects.toMatchObject({ code: 'decryption_failed' });
  });
});
