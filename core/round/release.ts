// Releasing a reviewed candidate, pure: the signed release manifest and its encrypted payload, with the
// payload's content key wrapped only for robots whose keys this officer attested at enrollment
// (DESIGN.md trust model 3). The officer CLI (`officer release`) and the PWA's signing worker share it;
// the rejection record for the other outcome is core/records/round-rejection.ts.
//
//   candidate files ──loadPeftAdapter (refuse a non-adapter)──▶ encodeReleasePayload
//       ──AES-256-GCM(contentKey, aad = release context)──▶ payload
//   robots ──verifyRobotAttestation(attestRoot)──▶ attested ──ML-KEM-768 wrap(contentKey)──▶ wraps
//   ReleaseManifest{adapterSha256, payloadSha256, wraps, version, canary, gate} ──ML-DSA-65──▶ signed manifest
// The gate (core/eval/reference-gate.ts releaseGateOf) is the review's verdict, metric summary and the
// officer's override reason; a failed gate without an override cannot be encoded, so it cannot be signed.
import { bytesToHex } from '../bytes.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { expectBytes, expectFinite, expectInteger } from '../errors.ts';
import { wrapContentKey, sealPayload } from '../crypto/kem.ts';
import { deriveAttestKey, verifyRobotAttestation } from '../records/enrollment.ts';
import { NO_GATE, encodeReleasePayload, openReleaseManifest, releaseContext, signReleaseManifest, type ReleaseGate, type ReleaseWrap } from '../records/release-manifest.ts';
import { loadPeftAdapter } from '../peft/adapter.ts';
import { releaseContentKey, selectRolloutRobots } from '../registry/rollout.ts';

/** A robot as the server lists it (GET /v1/robots), decoded. */
export interface ReleaseRobot {
  id: string;
  enrollmentId: string;
  dsaPublicKey: Uint8Array;
  kemPublicKey: Uint8Array;
  attestation: Uint8Array;
  revokedAt?: number | null;
}

/** Splits robots into those enrolled with this officer's bundles (attestation verifies) and the rest. */
export function attestedRobots(options: { robots: readonly ReleaseRobot[]; fleetId: string; attestRoot: Uint8Array }): {
  attested: ReleaseRobot[];
  skipped: string[];
} {
  const attestRoot = expectBytes('attestRoot', options.attestRoot, 32);
  const attested: ReleaseRobot[] = [];
  const skipped: string[] = [];
  for (const r of options.robots) {
    if (r.revokedAt) {
      skipped.push(r.id);
      continue;
    }
    try {
      verifyRobotAttestation({
        attestKey: deriveAttestKey({ attestRoot, bundleId: r.enrollmentId }),
        fleetId: options.fleetId,
        bundleId: r.enrollmentId,
        dsaPublicKey: r.dsaPublicKey,
        kemPublicKey: r.kemPublicKey,
        attestation: r.attestation,
      });
      attested.push(r);
    } catch {
      skipped.push(r.id); // never wrap a release key to a key this officer did not enroll
    }
  }
  return { attested, skipped };
}

/** The version the next release of a fleet must carry (the server refuses anything but latest + 1). */
export function nextReleaseVersion(options: { releases: ReadonlyArray<{ releaseVersion: number }> }): number {
  return options.releases.reduce((m, r) => Math.max(m, r.releaseVersion), 0) + 1;
}

export interface SignedRelease {
  /** The signed release manifest (POST /v1/releases `manifest`). */
  manifest: Uint8Array;
  /** nonce || AES-256-GCM ciphertext of the release payload (POST /v1/releases `payload`). */
  payload: Uint8Array;
  fingerprint: Uint8Array;
  adapterSha256: Uint8Array;
  releaseId: string;
  releaseVersion: number;
  /** Robots the content key was wrapped for. */
  wrapped: string[];
  /** Robots left out: revoked, or keys not attested by this officer. */
  skipped: string[];
  /** Attested robots outside the canary: their keys come with the promotion (core/registry/rollout.ts). */
  pending?: string[];
}

/** Builds and signs a release of a reviewed candidate (its two PEFT files) for one fleet. */
export function buildSignedRelease(options: {
  orgId: string;
  fleetId: string;
  roundId: string;
  releaseId: string;
  releaseVersion: number;
  canaryFraction: number;
  createdAt: number;
  files: { adapterConfigJson: Uint8Array; adapterSafetensors: Uint8Array };
  robots: readonly ReleaseRobot[];
  attestRoot: Uint8Array;
  signer: { secretKey: Uint8Array; publicKey: Uint8Array };
  /** The evaluation gate's outcome (releaseGateOf); absent = no gate ran (status none). */
  gate?: ReleaseGate;
}): SignedRelease {
  const releaseVersion = expectInteger('releaseVersion', options.releaseVersion, 1, 0xffffffff);
  const canaryFraction = expectFinite('canaryFraction', options.canaryFraction, Number.MIN_VALUE, 1);
  const { adapterConfigJson, adapterSafetensors } = options.files;
  const gate = options.gate ?? NO_GATE;
  if (gate.status === 'failed' && !gate.override?.reason.trim())
    throw new RangeError('"gate" failed: a release needs the officer\'s override with a reason');
  // Refuse to release anything that is not a valid PEFT adapter.
  loadPeftAdapter({ files: { 'adapter_config.json': adapterConfigJson, 'adapter_model.safetensors': adapterSafetensors } });
  const { attested, skipped } = attestedRobots({ robots: options.robots, fleetId: options.fleetId, attestRoot: options.attestRoot });
  const context = releaseContext({ releaseId: options.releaseId, fleetId: options.fleetId });
  // Canary first: only the canary robots get the key now; the promotion wraps it for the rest.
  const canary = new Set(selectRolloutRobots({ releaseId: options.releaseId, robotIds: attested.map((r) => r.id), canaryFraction, stage: 'canary' }));
  const pending = attested.filter((r) => !canary.has(r.id)).map((r) => r.id);
  const contentKey = releaseContentKey({ attestRoot: options.attestRoot, fleetId: options.fleetId, releaseId: options.releaseId });
  const wraps: ReleaseWrap[] = attested.filter((r) => canary.has(r.id)).map((r) => ({ robotId: r.id, ...wrapContentKey({ contentKey, recipientPublicKey: r.kemPublicKey, context }) }));
  const payload = sealPayload({ key: contentKey, plaintext: encodeReleasePayload({ adapterConfigJson, adapterSafetensors }), aad: context });
  contentKey.fill(0);
  const adapterSha256 = sha256(adapterSafetensors);
  const manifest = signReleaseManifest({
    manifest: {
      releaseId: options.releaseId,
      orgId: options.orgId,
      fleetId: options.fleetId,
      roundId: options.roundId,
      releaseVersion,
      kind: 'release',
      rollbackOf: 0,
      adapterSha256,
      payloadSha256: sha256(payload),
      canaryFraction,
      createdAt: options.createdAt,
      wraps,
      gate,
    },
    secretKey: options.signer.secretKey,
    publicKey: options.signer.publicKey,
  });
  const { fingerprint } = openReleaseManifest({ bytes: manifest, trustedKeys: [options.signer.publicKey] });
  return { manifest, payload, fingerprint, adapterSha256, releaseId: options.releaseId, releaseVersion, wrapped: wraps.map((w) => w.robotId), skipped, pending };
}

/** Hex summary of a signed release for reports and outboxes. */
export function describeRelease(options: { release: SignedRelease }): { releaseId: string; releaseVersion: number; adapterSha256: string; fingerprint: string; robots: number; skipped: string[] } {
  const r = options.release;
  return { releaseId: r.releaseId, releaseVersion: r.releaseVersion, adapterSha256: bytesToHex(r.adapterSha256), fingerprint: bytesToHex(r.fingerprint), robots: r.wrapped.length, skipped: r.skipped };
}
