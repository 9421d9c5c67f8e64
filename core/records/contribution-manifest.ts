// The contribution manifest: the server's list of the contributions folded into a round's aggregate.
// It is unsigned by the server on purpose — the officer trusts nothing in it that it cannot check:
// each entry's robot signature, the robot's enrollment attestation (keyed by the officer's bundle
// secret), distinctness, quorum, and (by recomputing the sum) that the aggregate is exactly these
// contributions (DESIGN.md trust model 4).
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { RecordType } from './signed.ts';

const MAX_ENTRIES = 1024;

export interface ContributionManifestEntry {
  robotId: string;
  /** The enrollment token id the robot enrolled with: the officer's bundle id, keys its attestation. */
  enrollmentId: string;
  dsaPublicKey: Uint8Array;
  attestation: Uint8Array;
  packageFingerprint: Uint8Array;
  packageSignature: Uint8Array;
  ciphertextSha256: Uint8Array;
}

export interface ContributionManifest {
  roundId: string;
  roundConfigFingerprint: Uint8Array;
  aggregateSha256: Uint8Array;
  entries: ContributionManifestEntry[];
}

export function encodeContributionManifest(options: { manifest: ContributionManifest }): Uint8Array {
  const m = options.manifest;
  return new ByteWriter()
    .header(RecordType.contributionManifest, 1)
    .str(m.roundId, 64)
    .fixed(m.roundConfigFingerprint, 32)
    .fixed(m.aggregateSha256, 32)
    .list(m.entries, MAX_ENTRIES, (w, e) => {
      w.str(e.robotId, 64).str(e.enrollmentId, 64).bytes(e.dsaPublicKey, 1312).fixed(e.attestation, 32).fixed(e.packageFingerprint, 32).bytes(e.packageSignature, 2420).fixed(e.ciphertextSha256, 32);
    })
    .finish();
}

export function decodeContributionManifest(options: { bytes: Uint8Array }): ContributionManifest {
  const r = new ByteReader(options.bytes, 'contribution manifest');
  r.header(RecordType.contributionManifest, [1]);
  const m: ContributionManifest = {
    roundId: r.str(64, 'roundId'),
    roundConfigFingerprint: r.fixed(32, 'roundConfigFingerprint'),
    aggregateSha256: r.fixed(32, 'aggregateSha256'),
    entries: r.list(
      MAX_ENTRIES,
      (rr) => ({
        robotId: rr.str(64, 'robotId'),
        enrollmentId: rr.str(64, 'enrollmentId'),
        dsaPublicKey: rr.bytes(1312, 'dsaPublicKey'),
        attestation: rr.fixed(32, 'attestation'),
        packageFingerprint: rr.fixed(32, 'packageFingerprint'),
        packageSignature: rr.bytes(2420, 'packageSignature'),
        ciphertextSha256: rr.fixed(32, 'ciphertextSha256'),
      }),
      'entries',
    ),
  };
  r.end();
  return m;
}
