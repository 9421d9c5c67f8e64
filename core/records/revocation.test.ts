// Key revocations from the attacker's side: forged by the server, tampered, naming another key record.
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { randomBytes } from '../random.ts';
import { findKeyRevocation, openKeyRevocation, signKeyRevocation, type KeyRevocation } from './revocation.ts';

const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const server = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const revocation: KeyRevocation = { orgId: 'org-1', keyVersion: 2, heKeyFingerprint: randomBytes(32), reason: 'laptop lost', revokedAt: 1_700_000_000_000 };
const signed = signKeyRevocation({ revocation, secretKey: officer.secretKey, publicKey: officer.publicKey });

describe('HE key revocation record', () => {
  it('round-trips under the pinned officer key', () => {
    expect(openKeyRevocation({ bytes: signed, trustedKeys: [officer.publicKey] }).record).toEqual(revocation);
  });

  it('refuses tampering, trailing bytes, unknown versions and an empty reason', () => {
    const flipped = signed.slice();
    flipped[20]! ^= 1;
    expect(() => openKeyRevocation({ bytes: flipped })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
    expect(() => openKeyRevocation({ bytes: new Uint8Array([...signed, 0]) })).toThrowError(expect.objectContaining({ code: 'malformed' }));
    const v2 = signed.slice();
    v2[3] = 2;
    expect(() => openKeyRevocation({ bytes: v2 })).toThrowError(expect.objectContaining({ code: 'unsupported_version' }));
    expect(() => signKeyRevocation({ revocation: { ...revocation, reason: ' ' }, secretKey: officer.secretKey, publicKey: officer.publicKey })).toThrow(TypeError);
  });

  it('is believed only when a pinned officer signed it for exactly this key record', () => {
    const forged = signKeyRevocation({ revocation, secretKey: server.secretKey, publicKey: server.publicKey });
    const base = { trustedKeys: [officer.publicKey], orgId: 'org-1', keyVersion: 2, heKeyFingerprint: revocation.heKeyFingerprint };
    expect(findKeyRevocation({ ...base, revocations: [forged] })).toBeNull();
    expect(findKeyRevocation({ ...base, revocations: [new Uint8Array([1, 2, 3]), forged, signed] })).toEqual(revocation);
    expect(findKeyRevocation({ ...base, revocations: [signed], keyVersion: 3 })).toBeNull();
    expect(findKeyRevocation({ ...base, revocations: [signed], heKeyFingerprint: randomBytes(32) })).toBeNull();
    expect(findKeyRevocation({ ...base, revocations: [signed], orgId: 'org-2' })).toBeNull();
  });
});
