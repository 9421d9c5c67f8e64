// The officer recovery package: the officer's secrets document (core/records/officer-secrets.ts)
// encrypted once and its key wrapped to each designated recovery officer's ML-KEM-768 public key, so a
// recovery officer can restore the officer's signing key, attestation root and every HE secret key
// (to review old rounds) if the officer's home is lost. Signed by the officer (ML-DSA-65), so the
// recovery officer can tell it came from the officer key the organization registered.
//
// body: "TG" 0x31 0x01 | orgId str64 | packageId str64 | createdAt u64 | officerPublicKey bytes(1952) |
//       secretsSha256 [32] | recipients list(64) of (kemPublicKeySha256 [32], kemCiphertext [1088],
//       wrappedKey [48]) | payload bytes(16 MiB) = nonce[12] || AES-256-GCM(contentKey, secrets document)
// context (GCM associated data and wrap context) = "tensorguard/officer-recovery/v1/<orgId>/<packageId>";
// wraps are core/crypto/kem.ts wrapContentKey (ML-KEM-768 + HKDF-SHA256 + AES-256-GCM).
// The passphrase alternative is the officer's sealed key backup (`tensorguard officer export-backup`).
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { DecryptionError, FormatError, IntegrityError } from '../errors.ts';
import { bytesToHex, equalBytes, utf8ToBytes } from '../bytes.ts';
import { randomBytes } from '../random.ts';
import { KEM_SIZES, openPayload, sealPayload, unwrapContentKey, wrapContentKey } from '../crypto/kem.ts';
import { SIGNATURE_SIZES } from '../crypto/sign.ts';
import { openSignedRecord, signRecord } from './signed.ts';
import { decodeOfficerSecrets, encodeOfficerSecrets, type OfficerSecrets } from './officer-secrets.ts';

export const OFFICER_RECOVERY_TYPE = 0x31;
export const OFFICER_RECOVERY_DOMAIN = 'officer-recovery/v1';
export const MAX_RECOVERY_RECIPIENTS = 64;
const MAX_PAYLOAD = 16 * 1024 * 1024;
const MAX_BODY = MAX_PAYLOAD + 64 * 1024 + MAX_RECOVERY_RECIPIENTS * 1200;

export interface RecoveryWrap {
  kemPublicKeySha256: Uint8Array;
  kemCiphertext: Uint8Array;
  wrappedKey: Uint8Array;
}

export interface OfficerRecoveryPackage {
  orgId: string;
  packageId: string;
  createdAt: number;
  officerPublicKey: Uint8Array;
  secretsSha256: Uint8Array;
  recipients: RecoveryWrap[];
  payload: Uint8Array;
}

export function recoveryContext(options: { orgId: string; packageId: string }): Uint8Array {
  return utf8ToBytes(`tensorguard/officer-recovery/v1/${options.orgId}/${options.packageId}`);
}

/** Identifies a recovery officer's key in a package (SHA-256 of the ML-KEM-768 public key). */
export function recoveryRecipientId(options: { kemPublicKey: Uint8Array }): string {
  return bytesToHex(sha256(options.kemPublicKey));
}

export function encodeOfficerRecovery(options: { recovery: OfficerRecoveryPackage }): Uint8Array {
  const p = options.recovery;
  if (p.recipients.length === 0) throw new RangeError('"recipients" expected at least one recovery officer key, got 0');
  return new ByteWriter()
    .header(OFFICER_RECOVERY_TYPE, 1)
    .str(p.orgId, 64)
    .str(p.packageId, 64)
    .u64(p.createdAt)
    .bytes(p.officerPublicKey, SIGNATURE_SIZES['ml-dsa-65'].publicKey)
    .fixed(p.secretsSha256, 32)
    .list(p.recipients, MAX_RECOVERY_RECIPIENTS, (w, r) => w.fixed(r.kemPublicKeySha256, 32).fixed(r.kemCiphertext, KEM_SIZES.ciphertext).fixed(r.wrappedKey, KEM_SIZES.wrappedKey))
    .bytes(p.payload, MAX_PAYLOAD)
    .finish();
}

export function decodeOfficerRecovery(options: { bytes: Uint8Array }): OfficerRecoveryPackage {
  const r = new ByteReader(options.bytes, 'officer recovery package');
  r.header(OFFICER_RECOVERY_TYPE, [1]);
  const out: OfficerRecoveryPackage = {
    orgId: r.str(64, 'orgId'),
    packageId: r.str(64, 'packageId'),
    createdAt: r.u64('createdAt'),
    officerPublicKey: r.bytes(SIGNATURE_SIZES['ml-dsa-65'].publicKey, 'officerPublicKey'),
    secretsSha256: r.fixed(32, 'secretsSha256'),
    recipients: r.list(
      MAX_RECOVERY_RECIPIENTS,
      (x) => ({ kemPublicKeySha256: x.fixed(32, 'kemPublicKeySha256'), kemCiphertext: x.fixed(KEM_SIZES.ciphertext, 'kemCiphertext'), wrappedKey: x.fixed(KEM_SIZES.wrappedKey, 'wrappedKey') }),
      'recipients',
    ),
    payload: r.bytes(MAX_PAYLOAD, 'payload'),
  };
  r.end();
  if (out.recipients.length === 0) throw new FormatError('officer recovery package: no recipients');
  return out;
}

/** Encrypts the secrets once, wraps the key to every recipient, signs with the officer key in `secrets`. */
export function buildOfficerRecovery(options: {
  orgId: string;
  secrets: OfficerSecrets;
  recipients: readonly Uint8Array[];
  createdAt: number;
  packageId?: string;
}): { bytes: Uint8Array; recovery: OfficerRecoveryPackage } {
  const packageId = options.packageId ?? bytesToHex(randomBytes(16));
  const context = recoveryContext({ orgId: options.orgId, packageId });
  const document = encodeOfficerSecrets({ secrets: options.secrets });
  const contentKey = randomBytes(32);
  const recipients = options.recipients.map((kemPublicKey) => ({
    kemPublicKeySha256: sha256(kemPublicKey),
    ...wrapContentKey({ contentKey, recipientPublicKey: kemPublicKey, context }),
  }));
  const recovery: OfficerRecoveryPackage = {
    orgId: options.orgId,
    packageId,
    createdAt: options.createdAt,
    officerPublicKey: options.secrets.dsa.publicKey,
    secretsSha256: sha256(document),
    recipients,
    payload: sealPayload({ key: contentKey, plaintext: document, aad: context }),
  };
  contentKey.fill(0);
  const bytes = signRecord({
    type: OFFICER_RECOVERY_TYPE,
    domain: OFFICER_RECOVERY_DOMAIN,
    body: encodeOfficerRecovery({ recovery }),
    algorithm: 'ml-dsa-65',
    secretKey: options.secrets.dsa.secretKey,
    publicKey: options.secrets.dsa.publicKey,
    maxBody: MAX_BODY,
  });
  return { bytes, recovery };
}

/** Verifies the package signature (by the officer key it names) without decrypting anything. */
export function openOfficerRecovery(options: { bytes: Uint8Array; trustedKeys?: readonly Uint8Array[] }): { recovery: OfficerRecoveryPackage; fingerprint: Uint8Array } {
  const { envelope, fingerprint } = openSignedRecord({
    bytes: options.bytes,
    type: OFFICER_RECOVERY_TYPE,
    domain: OFFICER_RECOVERY_DOMAIN,
    algorithm: 'ml-dsa-65',
    maxBody: MAX_BODY,
    trustedKeys: options.trustedKeys,
    what: 'officer recovery package',
  });
  const recovery = decodeOfficerRecovery({ bytes: envelope.body });
  if (!equalBytes(envelope.signerPublicKey, recovery.officerPublicKey)) throw new IntegrityError('officer recovery package: signed by another key than the officer key it carries');
  return { recovery, fingerprint };
}

/**
 * A recovery officer's side: verify, unwrap with their ML-KEM-768 key, decrypt, and check that the
 * secrets are the officer's (same signing key, same digest). `trustedKeys` should be the officer keys
 * the organization registered, so a package signed by some other key is refused.
 */
export function recoverOfficerSecrets(options: {
  bytes: Uint8Array;
  kemPublicKey: Uint8Array;
  kemSecretKey: Uint8Array;
  trustedKeys?: readonly Uint8Array[];
}): { secrets: OfficerSecrets; recovery: OfficerRecoveryPackage } {
  const { recovery } = openOfficerRecovery({ bytes: options.bytes, trustedKeys: options.trustedKeys });
  const id = sha256(options.kemPublicKey);
  const wrap = recovery.recipients.find((r) => equalBytes(r.kemPublicKeySha256, id));
  if (!wrap) throw new DecryptionError('officer recovery package: not wrapped to this recovery key');
  const context = recoveryContext({ orgId: recovery.orgId, packageId: recovery.packageId });
  const contentKey = unwrapContentKey({ kemCiphertext: wrap.kemCiphertext, wrappedKey: wrap.wrappedKey, secretKey: options.kemSecretKey, context });
  const document = openPayload({ key: contentKey, sealed: recovery.payload, aad: context });
  contentKey.fill(0);
  if (!equalBytes(sha256(document), recovery.secretsSha256)) throw new IntegrityError('officer recovery package: secrets digest does not match');
  const secrets = decodeOfficerSecrets({ bytes: document });
  if (!equalBytes(secrets.dsa.publicKey, recovery.officerPublicKey)) throw new IntegrityError('officer recovery package: secrets belong to another officer key');
  return { secrets, recovery };
}
