// The officer's keys in the workers' key store (workers/keystore/vault.ts): what is secret (ML-DSA-65
// secret key, attestation root, HE secret keys) is stored encrypted; what is public (the ML-DSA-65
// public key, HE public keys and parms ids) in clear, and only that ever leaves a worker.
// Backups use the CLI's document (core/records/officer-secrets.ts) so either side opens the other's.
import { bytesToHex, equalBytes } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import type { OfficerSecrets } from '../../core/records/officer-secrets.ts';
import { TensorGuardError } from '../../core/errors.ts';

const keyError = (code: string, message: string, details?: Record<string, unknown>) => new TensorGuardError({ code, status: 409, message, details });
import type { Vault } from './vault.ts';

export const SECRET_IDS = {
  dsa: 'officer/dsa-secret',
  attestRoot: 'officer/attest-root',
  he: (version: number) => `officer/he-secret/${version}`,
} as const;
export const PUBLIC_IDS = {
  dsa: 'officer/dsa-public',
  hePrefix: 'officer/he-public/',
  he: (version: number) => `officer/he-public/${version}`,
} as const;

export interface StoredHePublicKey {
  keyVersion: number;
  paramSetId: string;
  parmsId: Uint8Array;
  publicKey: Uint8Array;
  createdAt: number;
}

/** What the UI may know about the officer's keys: public material and fingerprints only. */
export interface OfficerIdentity {
  dsaPublicKey: Uint8Array;
  /** First 16 hex digits of SHA-256(ML-DSA-65 public key), as the CLI prints it. */
  officerKeyId: string;
  /** SHA-256(ML-DSA-65 public key), hex. */
  dsaFingerprint: string;
  heKeys: Array<{ keyVersion: number; paramSetId: string; parmsId: string; publicKeySha256: string; createdAt: number }>;
}

export async function readIdentity(vault: Vault): Promise<OfficerIdentity | null> {
  const dsaPublicKey = await vault.getPublic<Uint8Array>(PUBLIC_IDS.dsa);
  if (!dsaPublicKey) return null;
  const he = await vault.listPublics<StoredHePublicKey>(PUBLIC_IDS.hePrefix);
  const fp = bytesToHex(sha256(dsaPublicKey));
  return {
    dsaPublicKey,
    officerKeyId: fp.slice(0, 16),
    dsaFingerprint: fp,
    heKeys: he
      .map(({ value: k }) => ({ keyVersion: k.keyVersion, paramSetId: k.paramSetId, parmsId: bytesToHex(k.parmsId), publicKeySha256: bytesToHex(sha256(k.publicKey)), createdAt: k.createdAt }))
      .sort((a, b) => a.keyVersion - b.keyVersion),
  };
}

export async function signingKeys(vault: Vault): Promise<{ publicKey: Uint8Array; secretKey: Uint8Array }> {
  const publicKey = await vault.getPublic<Uint8Array>(PUBLIC_IDS.dsa);
  const secretKey = await vault.getSecret(SECRET_IDS.dsa);
  if (!publicKey || !secretKey) throw keyError('no_officer_keys', 'no officer signing key on this device: run the key ceremony or import a backup');
  return { publicKey, secretKey };
}

export async function attestRoot(vault: Vault): Promise<Uint8Array> {
  const root = await vault.getSecret(SECRET_IDS.attestRoot);
  if (!root) throw keyError('no_officer_keys', 'no attestation root on this device: run the key ceremony or import a backup');
  return root;
}

export async function heKey(vault: Vault, keyVersion: number): Promise<StoredHePublicKey & { secretKey: Uint8Array }> {
  const pub = await vault.getPublic<StoredHePublicKey>(PUBLIC_IDS.he(keyVersion));
  const secretKey = await vault.getSecret(SECRET_IDS.he(keyVersion));
  if (!pub || !secretKey) throw keyError('missing_key', `this device holds no secret key for HE key version ${keyVersion}: import a backup that has it`, { keyVersion });
  return { ...pub, secretKey };
}

/** Every secret, as the backup document carries them. */
export async function readOfficerSecrets(vault: Vault): Promise<OfficerSecrets> {
  const dsa = await signingKeys(vault);
  const root = await attestRoot(vault);
  const he: OfficerSecrets['he'] = [];
  for (const { value } of await vault.listPublics<StoredHePublicKey>(PUBLIC_IDS.hePrefix)) {
    const secretKey = await vault.getSecret(SECRET_IDS.he(value.keyVersion));
    if (secretKey) he.push({ keyVersion: value.keyVersion, paramSetId: value.paramSetId, parmsId: value.parmsId, publicKey: value.publicKey, secretKey });
  }
  he.sort((a, b) => a.keyVersion - b.keyVersion);
  return { dsa, attestRoot: root, he };
}

export async function storeHeKey(vault: Vault, key: StoredHePublicKey & { secretKey: Uint8Array }): Promise<void> {
  // The secret first: a public entry never names a key this device cannot open.
  await vault.putSecret(SECRET_IDS.he(key.keyVersion), key.secretKey);
  await vault.putPublic(PUBLIC_IDS.he(key.keyVersion), { keyVersion: key.keyVersion, paramSetId: key.paramSetId, parmsId: key.parmsId, publicKey: key.publicKey, createdAt: key.createdAt });
}

/**
 * Stores a backup's secrets. A device that holds another officer's signing key refuses unless
 * `replace`; one with the same signing key gains the HE key versions it lacks (a version held with a
 * different key is a conflict) — the same rules as `tensorguard officer import-backup`.
 */
export async function storeOfficerSecrets(vault: Vault, secrets: OfficerSecrets, options: { replace?: boolean } = {}): Promise<{ merged: boolean }> {
  const current = await vault.getPublic<Uint8Array>(PUBLIC_IDS.dsa);
  let merged = false;
  if (current && !equalBytes(current, secrets.dsa.publicKey)) {
    if (!options.replace) throw keyError('officer_exists', 'this device holds another officer\'s keys; choose "replace" to overwrite them');
    await vault.deletePrefix('officer/');
  } else if (current) {
    merged = true;
    for (const k of secrets.he) {
      const have = await vault.getPublic<StoredHePublicKey>(PUBLIC_IDS.he(k.keyVersion));
      if (have && !equalBytes(have.publicKey, k.publicKey)) throw keyError('key_version_conflict', `HE key version ${k.keyVersion} differs between this device and the backup`, { keyVersion: k.keyVersion });
    }
  }
  if (!merged) {
    await vault.putSecret(SECRET_IDS.dsa, secrets.dsa.secretKey);
    await vault.putSecret(SECRET_IDS.attestRoot, secrets.attestRoot);
    await vault.putPublic(PUBLIC_IDS.dsa, secrets.dsa.publicKey);
  }
  for (const k of secrets.he) {
    if (merged && (await vault.hasSecret(SECRET_IDS.he(k.keyVersion)))) continue;
    await storeHeKey(vault, { ...k, createdAt: Date.now() });
  }
  return { merged };
}
