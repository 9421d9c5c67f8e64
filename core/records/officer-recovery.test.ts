// Officer recovery packages: a designated recovery officer restores the secrets; nobody else can,
// and a package re-signed or altered by the server is refused.
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { generateKemKeyPair } from '../crypto/kem.ts';
import { randomBytes } from '../random.ts';
import { buildOfficerRecovery, encodeOfficerRecovery, openOfficerRecovery, recoverOfficerSecrets } from './officer-recovery.ts';
import type { OfficerSecrets } from './officer-secrets.ts';
import { signRecord } from './signed.ts';

const dsa = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const secrets: OfficerSecrets = {
  dsa: { publicKey: dsa.publicKey, secretKey: dsa.secretKey },
  attestRoot: randomBytes(32),
  he: [1, 2].map((keyVersion) => ({ keyVersion, paramSetId: 'tg-bfv-4096-q60-t35', parmsId: randomBytes(32), publicKey: randomBytes(2000), secretKey: randomBytes(3000) })),
};
const alice = generateKemKeyPair();
const bob = generateKemKeyPair();
const eve = generateKemKeyPair();
const { bytes } = buildOfficerRecovery({ orgId: 'org-1', secrets, recipients: [alice.publicKey, bob.publicKey], createdAt: 1 });

describe('officer recovery package', () => {
  it('restores the secrets for each designated recovery officer', () => {
    for (const r of [alice, bob]) {
      const out = recoverOfficerSecrets({ bytes, kemPublicKey: r.publicKey, kemSecretKey: r.secretKey, trustedKeys: [dsa.publicKey] });
      expect(out.secrets).toEqual(secrets);
      expect(out.recovery.recipients).toHaveLength(2);
    }
  });

  it('is useless to anyone else', () => {
    expect(() => recoverOfficerSecrets({ bytes, kemPublicKey: eve.publicKey, kemSecretKey: eve.secretKey })).toThrowError(expect.objectContaining({ code: 'decryption_failed' }));
    // Eve claims Alice's public key but holds her own secret key.
    expect(() => recoverOfficerSecrets({ bytes, kemPublicKey: alice.publicKey, kemSecretKey: eve.secretKey })).toThrowError(expect.objectContaining({ code: 'decryption_failed' }));
  });

  it('refuses tampering and a package signed by a key that is not the organization\'s', () => {
    const flipped = bytes.slice();
    flipped[bytes.length - 4000]! ^= 1;
    expect(() => openOfficerRecovery({ bytes: flipped })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
    const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const other = buildOfficerRecovery({ orgId: 'org-1', secrets: { ...secrets, dsa: { publicKey: mallory.publicKey, secretKey: mallory.secretKey } }, recipients: [alice.publicKey], createdAt: 1 });
    expect(() => recoverOfficerSecrets({ bytes: other.bytes, kemPublicKey: alice.publicKey, kemSecretKey: alice.secretKey, trustedKeys: [dsa.publicKey] })).toThrowError(
      expect.objectContaining({ code: 'untrusted_signer' }),
    );
    // The body names the officer key, but another key signed the envelope.
    const body = openOfficerRecovery({ bytes }).recovery;
    const resigned = signRecord({ type: 0x31, domain: 'officer-recovery/v1', body: encodeOfficerRecovery({ recovery: body }), algorithm: 'ml-dsa-65', secretKey: mallory.secretKey, publicKey: mallory.publicKey, maxBody: 1 << 25 });
    expect(() => openOfficerRecovery({ bytes: resigned })).toThrowError(expect.objectContaining({ code: 'integrity' }));
  });
});
