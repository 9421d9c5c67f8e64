// The release manifest: the officer-signed (ML-DSA-65) statement that robots of a fleet may apply an
// adapter. It names the SHA-256 of the adapter file, a monotonically increasing release version (robots
// refuse older versions unless the release is an officer-signed rollback), and carries the release's
// AES-256-GCM content key wrapped per robot with ML-KEM-768, so the server cannot read the adapter.
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint } from '../codec/fingerprint.ts';
import { FormatError } from '../errors.ts';
import { RecordType, openSignedRecord, signRecord } from './signed.ts';
import { KEM_SIZES } from '../crypto/kem.ts';
import { utf8ToBytes } from '../bytes.ts';

export const RELEASE_MANIFEST_DOMAIN = 'release-manifest/v1';
const MAX_BODY = 8 * 1024 * 1024;
const MAX_WRAPS = 100_000;

export type ReleaseKind = 'release' | 'rollback';
const KINDS: ReleaseKind[] = ['release', 'rollback'];

export interface ReleaseWrap {
  robotId: string;
  kemCiphertext: Uint8Array;
  wrappedKey: Uint8Array;
}

export interface ReleaseManifest {
  releaseId: string;
  orgId: string;
  fleetId: string;
  roundId: string;
  releaseVersion: number;
  kind: ReleaseKind;
  /** For a rollback: the release version whose adapter this one restores. 0 otherwise. */
  rollbackOf: number;
  /** SHA-256 of the released adapter_model.safetensors bytes. */
  adapterSha256: Uint8Array;
  /** SHA-256 of the sealed payload (AES-GCM ciphertext) stored on the server. */
  payloadSha256: Uint8Array;
  canaryFraction: number;
  createdAt: number;
  wraps: ReleaseWrap[];
}

export function encodeReleaseManifest(options: { manifest: ReleaseManifest }): Uint8Array {
  const m = options.manifest;
  if (!(m.canaryFraction > 0 && m.canaryFraction <= 1)) throw new RangeError(`"canaryFraction" expected in (0, 1], got ${m.canaryFraction}`);
  if (m.releaseVersion < 1) throw new RangeError(`"releaseVersion" expected >= 1, got ${m.releaseVersion}`);
  return new ByteWriter()
    .header(RecordType.releaseManifest, 1)
    .str(m.releaseId, 64)
    .str(m.orgId, 64)
    .str(m.fleetId, 64)
    .str(m.roundId, 64)
    .u32(m.releaseVersion)
    .u8(KINDS.indexOf(m.kind))
    .u32(m.rollbackOf)
    .fixed(m.adapterSha256, 32)
    .fixed(m.payloadSha256, 32)
    .f64(m.canaryFraction)
    .u64(m.createdAt)
    .list(m.wraps, MAX_WRAPS, (w, x) => {
      w.str(x.robotId, 64).fixed(x.kemCiphertext, KEM_SIZES.ciphertext).fixed(x.wrappedKey, KEM_SIZES.wrappedKey);
    })
    .finish();
}

export function decodeReleaseManifest(options: { bytes: Uint8Array }): ReleaseManifest {
  const r = new ByteReader(options.bytes, 'release manifest');
  r.header(RecordType.releaseManifest, [1]);
  const m: ReleaseManifest = {
    releaseId: r.str(64, 'releaseId'),
    orgId: r.str(64, 'orgId'),
    fleetId: r.str(64, 'fleetId'),
    roundId: r.str(64, 'roundId'),
    releaseVersion: r.u32('releaseVersion'),
    kind: KINDS[r.u8('kind')]!,
    rollbackOf: r.u32('rollbackOf'),
    adapterSha256: r.fixed(32, 'adapterSha256'),
    payloadSha256: r.fixed(32, 'payloadSha256'),
    canaryFraction: r.f64('canaryFraction'),
    createdAt: r.u64('createdAt'),
    wraps: r.list(MAX_WRAPS, (rr) => ({
      robotId: rr.str(64, 'robotId'),
      kemCiphertext: rr.fixed(KEM_SIZES.ciphertext, 'kemCiphertext'),
      wrappedKey: rr.fixed(KEM_SIZES.wrappedKey, 'wrappedKey'),
    }), 'wraps'),
  };
  r.end();
  if (!m.kind) throw new FormatError('release manifest: unknown kind');
  if (m.releaseVersion < 1) throw new FormatError('release manifest: releaseVersion must be >= 1');
  if (!(m.canaryFraction > 0 && m.canaryFraction <= 1)) throw new FormatError('release manifest: canaryFraction must be in (0, 1]');
  if ((m.kind === 'rollback') !== (m.rollbackOf > 0)) throw new FormatError('release manifest: rollbackOf is set exactly for rollbacks');
  return m;
}

export function signReleaseManifest(options: { manifest: ReleaseManifest; secretKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
  return signRecord({
    type: RecordType.releaseManifest,
    domain: RELEASE_MANIFEST_DOMAIN,
    body: encodeReleaseManifest({ manifest: options.manifest }),
    algorithm: 'ml-dsa-65',
    secretKey: options.secretKey,
    publicKey: options.publicKey,
    maxBody: MAX_BODY,
  });
}

export function openReleaseManifest(options: { bytes: Uint8Array; trustedKeys?: readonly Uint8Array[] }): {
  record: ReleaseManifest;
  fingerprint: Uint8Array;
  signerPublicKey: Uint8Array;
} {
  const { envelope, fingerprint: fp } = openSignedRecord({
    bytes: options.bytes,
    type: RecordType.releaseManifest,
    domain: RELEASE_MANIFEST_DOMAIN,
    algorithm: 'ml-dsa-65',
    maxBody: MAX_BODY,
    trustedKeys: options.trustedKeys,
    what: 'release manifest',
  });
  return { record: decodeReleaseManifest({ bytes: envelope.body }), fingerprint: fp, signerPublicKey: envelope.signerPublicKey };
}

/** Associated data binding a release payload and its key wraps to one release of one fleet. */
export function releaseContext(options: { releaseId: string; fleetId: string }): Uint8Array {
  return utf8ToBytes(`tensorguard/release/v1/${options.fleetId}/${options.releaseId}`);
}

/** The plaintext inside a release payload: the PEFT adapter's two files. */
export function encodeReleasePayload(options: { adapterConfigJson: Uint8Array; adapterSafetensors: Uint8Array }): Uint8Array {
  return new ByteWriter()
    .header(RecordType.releasePayload, 1)
    .bytes(options.adapterConfigJson, 1 << 20)
    .bytes(options.adapterSafetensors, 1 << 30)
    .finish();
}

export function decodeReleasePayload(options: { bytes: Uint8Array }): { adapterConfigJson: Uint8Array; adapterSafetensors: Uint8Array } {
  const r = new ByteReader(options.bytes, 'release payload');
  r.header(RecordType.releasePayload, [1]);
  const out = { adapterConfigJson: r.bytes(1 << 20, 'adapter_config.json'), adapterSafetensors: r.bytes(1 << 30, 'adapter_model.safetensors') };
  r.end();
  return out;
}

export function releaseManifestFingerprint(options: { manifest: ReleaseManifest }): Uint8Array {
  return fingerprint({ domain: RELEASE_MANIFEST_DOMAIN, bytes: encodeReleaseManifest(options) });
}
