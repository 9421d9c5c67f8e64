// Staged rollout of a release, pure: which robots get the content key at each stage, the per-release
// content key, and the two follow-up manifests the officer signs after a canary (promotion, rollback).
//
//   stage 'canary'  ──selectCanaryRobots(releaseId, fraction)──▶ wrap only for the canary robots
//   stage 'full'    ──every attested robot──────────────────────▶ wrap for all (promotion, rollback)
//
// The content key of a release is derived, not drawn: contentKey = HKDF-SHA256(ikm = officer attestation
// root, info = "tensorguard/release-content-key/v1" || release context) (RFC 5869; the context already
// binds fleet and release id, docs/FORMATS.md "Release payload encryption"). Only the officer holds the
// attestation root, so the server still cannot read a payload; the officer can re-open any release it
// signed (recoverReleaseFiles) and re-release the same adapter under a new version: a promotion wraps it
// for the rest of the fleet, a rollback (kind 'rollback', rollbackOf = N) restores version N's adapter.
// A robot accepts either only because its version is newer (trust model 3): a replayed old manifest is
// still refused.
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 as sha256Hash } from '@noble/hashes/sha2.js';
import { concatBytes, equalBytes, utf8ToBytes } from '../bytes.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { describe, expectBytes, expectInteger, IntegrityError, DecryptionError } from '../errors.ts';
import { openPayload, sealPayload, wrapContentKey } from '../crypto/kem.ts';
import {
  decodeReleasePayload,
  encodeReleasePayload,
  openReleaseManifest,
  releaseContext,
  signReleaseManifest,
  type ReleaseManifest,
  type ReleaseWrap,
} from '../records/release-manifest.ts';
import { attestedRobots, type ReleaseRobot } from '../round/release.ts';
import { selectCanaryRobots } from './canary.ts';

export type RolloutStage = 'canary' | 'full';
const CONTENT_KEY_INFO = utf8ToBytes('tensorguard/release-content-key/v1');

/** The robots whose content-key wrap a release carries at `stage` (sorted ids). */
export function selectRolloutRobots(options: { releaseId: string; robotIds: readonly string[]; canaryFraction: number; stage: RolloutStage }): string[] {
  const { stage } = options;
  if (stage !== 'canary' && stage !== 'full') throw new TypeError(`"stage" expected 'canary' | 'full', got ${describe(stage)}`);
  if (stage === 'full' || options.canaryFraction >= 1) return [...new Set(options.robotIds)].sort();
  return selectCanaryRobots({ releaseId: options.releaseId, robotIds: options.robotIds, fraction: options.canaryFraction });
}

/** The AES-256-GCM content key of one release, derived from the officer's attestation root. */
export function releaseContentKey(options: { attestRoot: Uint8Array; fleetId: string; releaseId: string }): Uint8Array {
  const root = expectBytes('attestRoot', options.attestRoot, 32);
  return hkdf(sha256Hash, root, undefined, concatBytes(CONTENT_KEY_INFO, releaseContext({ releaseId: options.releaseId, fleetId: options.fleetId })), 32);
}

export interface ReleaseFiles {
  adapterConfigJson: Uint8Array;
  adapterSafetensors: Uint8Array;
}

/**
 * Re-opens a release this officer signed: verifies the manifest against the officer's keys, the payload
 * hash, decrypts with the derived content key and checks the adapter SHA-256 the manifest names.
 */
export function recoverReleaseFiles(options: { manifest: Uint8Array; payload: Uint8Array; attestRoot: Uint8Array; trustedKeys: readonly Uint8Array[] }): { record: ReleaseManifest; files: ReleaseFiles } {
  const { record } = openReleaseManifest({ bytes: options.manifest, trustedKeys: options.trustedKeys });
  if (!equalBytes(sha256(options.payload), record.payloadSha256)) throw new IntegrityError('the release payload is not the one the signed manifest names');
  const key = releaseContentKey({ attestRoot: options.attestRoot, fleetId: record.fleetId, releaseId: record.releaseId });
  let files: ReleaseFiles;
  try {
    files = decodeReleasePayload({ bytes: openPayload({ key, sealed: options.payload, aad: releaseContext({ releaseId: record.releaseId, fleetId: record.fleetId }) }) });
  } catch (cause) {
    throw new DecryptionError(`release ${record.releaseId} does not open with this officer's derived content key (signed by another officer or before derived keys)`, { releaseId: record.releaseId }, cause);
  } finally {
    key.fill(0);
  }
  if (!equalBytes(sha256(files.adapterSafetensors), record.adapterSha256)) throw new IntegrityError('the decrypted adapter does not match the SHA-256 the officer signed');
  return { record, files };
}

export interface StagedRelease {
  manifest: Uint8Array;
  payload: Uint8Array;
  fingerprint: Uint8Array;
  record: ReleaseManifest;
  wrapped: string[];
  skipped: string[];
}

/**
 * Signs the next version of a fleet's releases carrying an earlier release's adapter, wrapped for every
 * attested robot: a promotion (kind 'release', same round) or a rollback (kind 'rollback', rollbackOf =
 * the restored version). Fields the source manifest carries (gate metrics of manifest v2) are kept.
 */
export function buildStagedRelease(options: {
  kind: 'promotion' | 'rollback';
  source: { record: ReleaseManifest; files: ReleaseFiles };
  releaseId: string;
  releaseVersion: number;
  createdAt: number;
  robots: readonly ReleaseRobot[];
  attestRoot: Uint8Array;
  signer: { secretKey: Uint8Array; publicKey: Uint8Array };
}): StagedRelease {
  const releaseVersion = expectInteger('releaseVersion', options.releaseVersion, 1, 0xffffffff);
  const { record: source, files } = options.source;
  if (releaseVersion <= source.releaseVersion) throw new RangeError(`"releaseVersion" expected > ${source.releaseVersion}, got ${releaseVersion}`);
  if (options.kind === 'promotion' && source.kind !== 'release') throw new IntegrityError('only a release can be promoted');
  const fleetId = source.fleetId;
  const { attested, skipped } = attestedRobots({ robots: options.robots, fleetId, attestRoot: options.attestRoot });
  const selected = new Set(selectRolloutRobots({ releaseId: options.releaseId, robotIds: attested.map((r) => r.id), canaryFraction: 1, stage: 'full' }));
  const context = releaseContext({ releaseId: options.releaseId, fleetId });
  const contentKey = releaseContentKey({ attestRoot: options.attestRoot, fleetId, releaseId: options.releaseId });
  const wraps: ReleaseWrap[] = attested.filter((r) => selected.has(r.id)).map((r) => ({ robotId: r.id, ...wrapContentKey({ contentKey, recipientPublicKey: r.kemPublicKey, context }) }));
  const payload = sealPayload({ key: contentKey, plaintext: encodeReleasePayload(files), aad: context });
  contentKey.fill(0);
  const record: ReleaseManifest = {
    ...source,
    releaseId: options.releaseId,
    releaseVersion,
    kind: options.kind === 'rollback' ? 'rollback' : 'release',
    rollbackOf: options.kind === 'rollback' ? source.releaseVersion : 0,
    payloadSha256: sha256(payload),
    canaryFraction: 1,
    createdAt: options.createdAt,
    wraps,
  };
  const manifest = signReleaseManifest({ manifest: record, secretKey: options.signer.secretKey, publicKey: options.signer.publicKey });
  const { fingerprint } = openReleaseManifest({ bytes: manifest, trustedKeys: [options.signer.publicKey] });
  return { manifest, payload, fingerprint, record, wrapped: wraps.map((w) => w.robotId), skipped };
}

/** Which release a rollback to version `toVersion` restores: the named version (must exist, be older than the latest). */
export function rollbackSource<T extends { releaseVersion: number }>(options: { releases: readonly T[]; toVersion: number }): T {
  const toVersion = expectInteger('toVersion', options.toVersion, 1, 0xffffffff);
  const latest = options.releases.reduce((m, r) => Math.max(m, r.releaseVersion), 0);
  if (toVersion >= latest) throw new RangeError(`"toVersion" expected below the latest version ${latest}, got ${toVersion}`);
  const found = options.releases.find((r) => r.releaseVersion === toVersion);
  if (!found) throw new RangeError(`"toVersion" expected an existing release version, got ${toVersion}`);
  return found;
}
