// The signing worker's API: the officer's ML-DSA-65 key and attestation root (created here or imported
// from a backup), and everything signed with them — HE key records, round configs, enrollment bundles,
// releases (ML-KEM-768 wraps + AES-256-GCM payload of the reviewed candidate) and rejections — plus the
// passphrase-sealed key backup (scrypt N=2^17 in this worker). Secrets are read from the key store
// (workers/keystore/) for one call and zeroed after; the UI receives signed bytes and public material.
import { bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { openSecret, sealSecret, type ScryptFn } from '../../core/crypto/secretbox.ts';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { decodeOfficerSecrets, encodeOfficerSecrets } from '../../core/records/officer-secrets.ts';
import { openKeyRecord, signKeyRecord, type HeKeyRecord } from '../../core/records/key-record.ts';
import { signRoundConfig } from '../../core/records/round-config.ts';
import { deriveAttestKey, encodeEnrollmentBundle } from '../../core/records/enrollment.ts';
import { openRoundRejection, signRoundRejection } from '../../core/records/round-rejection.ts';
import { loadPeftAdapter } from '../../core/peft/adapter.ts';
import { IntegrityError } from '../../core/errors.ts';
import { buildRoundConfig, type RoundOpenOptions } from '../../core/round/open.ts';
import { attestedRobots, buildSignedRelease, type ReleaseRobot } from '../../core/round/release.ts';
import { buildStagedRelease, recoverReleaseFiles } from '../../core/registry/rollout.ts';
import { openVault } from '../keystore/vault.ts';
import { PUBLIC_IDS, SECRET_IDS, attestRoot, readIdentity, readOfficerSecrets, signingKeys, storeOfficerSecrets, type OfficerIdentity } from '../keystore/officer-keys.ts';
import { decodeCandidate } from '../keystore/candidates.ts';
import { releaseGateOf, type GateReport } from '../../core/eval/reference-gate.ts';
import { throttledProgress, type ProgressCallback } from '../transfer.ts';

export interface OpenedRound {
  /** The signed round config to POST /v1/rounds. */
  signed: Uint8Array;
  roundId: string;
  valueCount: number;
  ciphertextCount: number;
  bytesPerValue: number;
  baseAdapterSha256: string;
  epsilonPerRound: number | null;
}

export interface SignedReleaseOut {
  manifest: Uint8Array;
  payload: Uint8Array;
  releaseId: string;
  releaseVersion: number;
  adapterSha256: string;
  fingerprint: string;
  wrapped: string[];
  skipped: string[];
}

export interface SigningWorkerApi {
  identity(): Promise<OfficerIdentity | null>;
  /** Creates the ML-DSA-65 key pair and the attestation root unless this device has them. */
  createIdentity(): Promise<OfficerIdentity>;
  /** Signs an HE key record for a key the HE worker generated (read from the key store by version). */
  signKeyRecord(options: { orgId: string; keyVersion: number }): Promise<{ signed: Uint8Array; fingerprint: string }>;
  /** Builds (core/round/open.ts) and signs a round config; the key record must carry this officer's signature. */
  openRound(options: { options: RoundOpenOptions; template: { adapterConfigJson: Uint8Array; adapterSafetensors: Uint8Array }; orgId: string; keyRecord: Uint8Array; roundId: string; enrolledRobots: number }): Promise<OpenedRound>;
  /** An enrollment bundle (JSON text) pinning this officer's key, with the bundle's attestation key. */
  enrollmentBundle(options: { serverUrl: string; orgId: string; fleetId: string; bundleId: string; token: string; expiresAt: number }): Promise<string>;
  /** Which robots' keys carry a valid attestation by one of this officer's bundles (fleet-bound). */
  attestedRobots(options: { fleetId: string; robots: ReleaseRobot[] }): Promise<string[]>;
  /** Signs a release of the candidate the HE worker stored under `candidateHandle`. */
  signRelease(options: {
    orgId: string;
    fleetId: string;
    roundId: string;
    releaseVersion: number;
    canaryFraction: number;
    candidateHandle: string;
    robots: ReleaseRobot[];
    releaseId?: string;
    /** The eval worker's gate report of this candidate and the officer's override reason (a failed gate needs one). */
    gate?: { report: GateReport; overrideReason: string | null };
  }): Promise<SignedReleaseOut>;
  signRejection(options: { orgId: string; fleetId: string; roundId: string; roundConfigFingerprint: Uint8Array; aggregateSha256: Uint8Array | null; reason: string }): Promise<{ record: Uint8Array; fingerprint: string }>;
  /**
   * Promotion or rollback (core/registry/rollout.ts): re-opens a release this officer signed (`source`,
   * as GET /v1/releases/:id returns it) and signs the next version with its adapter, wrapped for every
   * robot whose keys this officer attested. POST it to /v1/releases/:id/promote or /v1/fleets/:id/rollback.
   */
  signStagedRelease(options: { kind: 'promotion' | 'rollback'; source: { manifest: Uint8Array; payload: Uint8Array }; releaseVersion: number; robots: ReleaseRobot[]; releaseId?: string }): Promise<SignedReleaseOut & { kind: string; rollbackOf: number }>;
  /** The key backup: tensorguard-officer-secrets/v1 sealed under the passphrase (the CLI's format). */
  exportBackup(options: { passphrase: string }, onProgress?: ProgressCallback): Promise<Uint8Array>;
  importBackup(options: { sealed: Uint8Array; passphrase: string; replace?: boolean }, onProgress?: ProgressCallback): Promise<{ identity: OfficerIdentity; merged: boolean }>;
  /** Removes every officer key and candidate from this device. */
  forgetKeys(): Promise<void>;
}

/** noble's scrypt with progress (the same function core/crypto/secretbox.ts uses by default). */
function scryptWithProgress(onProgress?: ProgressCallback): ScryptFn {
  const report = throttledProgress((done, total) => onProgress?.(done, total, 'deriving the key (scrypt)'), 100);
  return ({ passphrase, salt, params }) =>
    scryptAsync(passphrase, salt, {
      N: 2 ** params.log2N,
      r: params.r,
      p: params.p,
      dkLen: 32,
      maxmem: 2 ** 31,
      onProgress: (fraction: number) => report(Math.round(fraction * 1000), 1000),
    });
}

export function createSigningWorkerApi(): SigningWorkerApi {
  const vault = openVault();

  async function withSigner<T>(fn: (keys: { publicKey: Uint8Array; secretKey: Uint8Array }) => T | Promise<T>): Promise<T> {
    const keys = await signingKeys(vault);
    try {
      return await fn(keys);
    } finally {
      keys.secretKey.fill(0);
    }
  }

  return {
    identity: () => readIdentity(vault),

    async createIdentity() {
      const existing = await readIdentity(vault);
      if (existing) return existing;
      const dsa = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
      await vault.putSecret(SECRET_IDS.dsa, dsa.secretKey);
      await vault.putSecret(SECRET_IDS.attestRoot, randomBytes(32));
      await vault.putPublic(PUBLIC_IDS.dsa, dsa.publicKey);
      dsa.secretKey.fill(0);
      return (await readIdentity(vault))!;
    },

    async signKeyRecord({ orgId, keyVersion }) {
      const pub = await vault.getPublic<{ paramSetId: string; parmsId: Uint8Array; publicKey: Uint8Array; createdAt: number }>(PUBLIC_IDS.he(keyVersion));
      if (!pub) throw new IntegrityError(`no HE key version ${keyVersion} on this device to sign a record for`);
      const record: HeKeyRecord = { orgId, keyVersion, paramSetId: pub.paramSetId, parmsId: pub.parmsId, publicKey: pub.publicKey, createdAt: pub.createdAt };
      return withSigner((keys) => {
        const signed = signKeyRecord({ record, secretKey: keys.secretKey, publicKey: keys.publicKey });
        const { fingerprint } = openKeyRecord({ bytes: signed, trustedKeys: [keys.publicKey] });
        return { signed, fingerprint: bytesToHex(fingerprint) };
      });
    },

    async openRound(o) {
      const template = loadPeftAdapter({ files: { 'adapter_config.json': o.template.adapterConfigJson, 'adapter_model.safetensors': o.template.adapterSafetensors } });
      return withSigner((keys) => {
        // The key robots will encrypt to must be one this officer signed (trust model 2).
        const key = openKeyRecord({ bytes: o.keyRecord, trustedKeys: [keys.publicKey] });
        if (key.record.orgId !== o.orgId) throw new IntegrityError('the current HE key record names another organization');
        const built = buildRoundConfig({
          options: o.options,
          template,
          orgId: o.orgId,
          keyRecord: { keyVersion: key.record.keyVersion, fingerprint: key.fingerprint, paramSetId: key.record.paramSetId },
          roundId: o.roundId,
          createdAt: Date.now(),
          enrolledRobots: o.enrolledRobots,
        });
        return {
          signed: signRoundConfig({ config: built.config, secretKey: keys.secretKey, publicKey: keys.publicKey }),
          roundId: built.config.roundId,
          valueCount: built.plan.valueCount,
          ciphertextCount: built.plan.ciphertextCount,
          bytesPerValue: built.bytesPerValue,
          baseAdapterSha256: bytesToHex(built.config.baseAdapterSha256),
          epsilonPerRound: built.epsilonPerRound,
        };
      });
    },

    async enrollmentBundle(o) {
      const identity = await readIdentity(vault);
      if (!identity) throw new IntegrityError('no officer key on this device');
      const root = await attestRoot(vault);
      try {
        return encodeEnrollmentBundle({
          bundle: {
            format: 'tensorguard-enrollment-bundle/v1',
            serverUrl: o.serverUrl,
            orgId: o.orgId,
            fleetId: o.fleetId,
            bundleId: o.bundleId,
            token: o.token,
            attestKey: deriveAttestKey({ attestRoot: root, bundleId: o.bundleId }),
            officerPublicKeys: [identity.dsaPublicKey],
            expiresAt: o.expiresAt,
          },
        });
      } finally {
        root.fill(0);
      }
    },

    async attestedRobots({ fleetId, robots }) {
      const root = await attestRoot(vault);
      try {
        return attestedRobots({ robots: robots.map((r) => ({ ...r, revokedAt: null })), fleetId, attestRoot: root }).attested.map((r) => r.id);
      } finally {
        root.fill(0);
      }
    },

    async signRelease(o) {
      const stored = await vault.getSecret(o.candidateHandle);
      if (!stored) throw new IntegrityError('the reviewed candidate is not on this device any more: review the round again');
      const candidate = decodeCandidate(stored);
      if (candidate.roundId !== o.roundId) throw new IntegrityError('the candidate belongs to another round');
      // The gate goes into the signed manifest (v2); a failed gate without an override reason is refused here.
      const gate = o.gate
        ? releaseGateOf({
            report: o.gate.report,
            candidateAdapterSha256: bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', candidate.adapterSafetensors as Uint8Array<ArrayBuffer>))),
            override: o.gate.overrideReason ? { reason: o.gate.overrideReason } : null,
          })
        : undefined;
      const root = await attestRoot(vault);
      try {
        const release = await withSigner((signer) =>
          buildSignedRelease({
            gate,
            orgId: o.orgId,
            fleetId: o.fleetId,
            roundId: o.roundId,
            releaseId: o.releaseId ?? crypto.randomUUID(),
            releaseVersion: o.releaseVersion,
            canaryFraction: o.canaryFraction,
            createdAt: Date.now(),
            files: { adapterConfigJson: candidate.adapterConfigJson, adapterSafetensors: candidate.adapterSafetensors },
            robots: o.robots,
            attestRoot: root,
            signer,
          }),
        );
        return {
          manifest: release.manifest,
          payload: release.payload,
          releaseId: release.releaseId,
          releaseVersion: release.releaseVersion,
          adapterSha256: bytesToHex(release.adapterSha256),
          fingerprint: bytesToHex(release.fingerprint),
          wrapped: release.wrapped,
          skipped: release.skipped,
        };
      } finally {
        root.fill(0);
      }
    },

    async signRejection(o) {
      return withSigner((keys) => {
        const record = signRoundRejection({
          rejection: {
            roundId: o.roundId,
            orgId: o.orgId,
            fleetId: o.fleetId,
            roundConfigFingerprint: o.roundConfigFingerprint,
            aggregateSha256: o.aggregateSha256 ?? new Uint8Array(32),
            reason: o.reason,
            createdAt: Date.now(),
          },
          secretKey: keys.secretKey,
          publicKey: keys.publicKey,
        });
        return { record, fingerprint: bytesToHex(openRoundRejection({ bytes: record, trustedKeys: [keys.publicKey] }).fingerprint) };
      });
    },

    async signStagedRelease(o) {
      const identity = await readIdentity(vault);
      if (!identity) throw new IntegrityError('no officer key on this device');
      const root = await attestRoot(vault);
      try {
        return await withSigner((signer) => {
          const source = recoverReleaseFiles({ manifest: o.source.manifest, payload: o.source.payload, attestRoot: root, trustedKeys: [signer.publicKey] });
          const staged = buildStagedRelease({
            kind: o.kind,
            source,
            releaseId: o.releaseId ?? crypto.randomUUID(),
            releaseVersion: o.releaseVersion,
            createdAt: Date.now(),
            robots: o.robots,
            attestRoot: root,
            signer,
          });
          return {
            manifest: staged.manifest,
            payload: staged.payload,
            releaseId: staged.record.releaseId,
            releaseVersion: staged.record.releaseVersion,
            kind: staged.record.kind,
            rollbackOf: staged.record.rollbackOf,
            adapterSha256: bytesToHex(staged.record.adapterSha256),
            fingerprint: bytesToHex(staged.fingerprint),
            wrapped: staged.wrapped,
            skipped: staged.skipped,
          };
        });
      } finally {
        root.fill(0);
      }
    },

    async exportBackup({ passphrase }, onProgress) {
      const secrets = await readOfficerSecrets(vault);
      const plaintext = encodeOfficerSecrets({ secrets });
      try {
        return await sealSecret({ plaintext, passphrase, scrypt: scryptWithProgress(onProgress) });
      } finally {
        plaintext.fill(0);
        secrets.dsa.secretKey.fill(0);
        secrets.attestRoot.fill(0);
        for (const k of secrets.he) k.secretKey.fill(0);
      }
    },

    async importBackup({ sealed, passphrase, replace }, onProgress) {
      const plaintext = await openSecret({ sealed, passphrase, scrypt: scryptWithProgress(onProgress) });
      const secrets = decodeOfficerSecrets({ bytes: plaintext });
      plaintext.fill(0);
      const { merged } = await storeOfficerSecrets(vault, secrets, { replace });
      return { identity: (await readIdentity(vault))!, merged };
    },

    async forgetKeys() {
      await vault.deletePrefix('officer/');
      await vault.deletePrefix('candidate/');
    },
  };
}
