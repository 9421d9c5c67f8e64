// The release manifest: the officer-signed (ML-DSA-65) statement that robots of a fleet may apply an
// adapter. It names the SHA-256 of the adapter file, a monotonically increasing release version (robots
// refuse older versions unless the release is an officer-signed rollback), and carries the release's
// AES-256-GCM content key wrapped per robot with ML-KEM-768, so the server cannot read the adapter.
//
// Version 2 (issue 5) appends the evaluation gate: its status, the evaluator, the SHA-256 of the gate
// report, the failed checks, a metric summary and the officer's override {reason}. A failed gate is only
// a valid manifest with an override (decode refuses it otherwise), so every verifier — robots, the
// server — refuses a failing release nobody overrode. Version 1 manifests still decode (gate absent);
// the fingerprint domain follows the version (`release-manifest/v1`, `release-manifest/v2`).
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint } from '../codec/fingerprint.ts';
import { FormatError } from '../errors.ts';
import { RecordType, openSignedRecord, signRecord } from './signed.ts';
import { KEM_SIZES } from '../crypto/kem.ts';
import { utf8ToBytes } from '../bytes.ts';

export const RELEASE_MANIFEST_DOMAIN = 'release-manifest/v1';
export const RELEASE_MANIFEST_DOMAIN_V2 = 'release-manifest/v2';
export const RELEASE_MANIFEST_VERSION = 2;
const MAX_BODY = 8 * 1024 * 1024;
const MAX_WRAPS = 100_000;
const MAX_GATE_FAILED = 256;
const MAX_GATE_METRICS = 512;

/**
 * none: no gate ran (rollbacks; v1-era tooling). passed / failed: the gate's verdict. not_applicable:
 * the adapter does not fit any evaluation the officer has (e.g. not the reference policy's LoRA layout);
 * `detail` says why.
 */
export type GateStatus = 'none' | 'passed' | 'failed' | 'not_applicable';
const GATE_STATUSES: GateStatus[] = ['none', 'passed', 'failed', 'not_applicable'];

export interface ReleaseGate {
  status: GateStatus;
  /** What evaluated the candidate, e.g. "reference-task/v1 onnxruntime-web/wasm". */
  evaluator: string;
  /** SHA-256 of the canonical JSON of the gate report (core/eval/reference-gate.ts gateReportSha256); zeros for none. */
  reportSha256: Uint8Array;
  /** Why the gate is not applicable (or other free text); may be empty. */
  detail: string;
  /** "<check>[<set>]" for each failed check; non-empty exactly when status is failed. */
  failed: string[];
  /** Metric summary: name -> value, e.g. "success_rate[nominal]" 0.95, "kl_divergence" 0.01. */
  metrics: Array<{ name: string; value: number }>;
  /** The officer's explicit override of a failed gate. Required when status is failed. */
  override: { reason: string } | null;
}

export const NO_GATE: Readonly<ReleaseGate> = Object.freeze({ status: 'none', evaluator: '', reportSha256: new Uint8Array(32), detail: '', failed: [], metrics: [], override: null });

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
  /** Version 2: the evaluation gate (absent or NO_GATE for none). Absent in decoded version 1 manifests. */
  gate?: ReleaseGate;
  /** The record version it was decoded from (1 or 2); new manifests leave it unset and encode as 2. */
  formatVersion?: 1 | 2;
}

function checkGate(g: ReleaseGate, fail: (m: string) => never): void {
  if (!GATE_STATUSES.includes(g.status)) fail(`gate status expected ${GATE_STATUSES.join(', ')}, got ${String(g.status)}`);
  if ((g.status === 'failed') !== (g.failed.length > 0)) fail('gate: failed checks are listed exactly when the gate failed');
  if (g.status === 'failed' && !g.override) fail('gate: a failed gate needs an officer override with a reason');
  if (g.override && !g.override.reason.trim()) fail('gate: an override needs a non-empty reason');
  if (g.override && g.status === 'passed') fail('gate: a passed gate has nothing to override');
  for (const m of g.metrics) if (!Number.isFinite(m.value)) fail(`gate metric ${m.name} is not finite`);
}

export function encodeReleaseManifest(options: { manifest: ReleaseManifest }): Uint8Array {
  const m = options.manifest;
  if (!(m.canaryFraction > 0 && m.canaryFraction <= 1)) throw new RangeError(`"canaryFraction" expected in (0, 1], got ${m.canaryFraction}`);
  if (m.releaseVersion < 1) throw new RangeError(`"releaseVersion" expected >= 1, got ${m.releaseVersion}`);
  const version = m.formatVersion === 1 ? 1 : 2;
  if (version === 1 && m.gate && m.gate.status !== 'none') throw new RangeError('"gate" cannot be encoded in a version 1 release manifest');
  const gate = m.gate ?? NO_GATE;
  if (version === 2)
    checkGate(gate, (msg) => {
      throw new RangeError(msg);
    });
  const w = new ByteWriter()
    .header(RecordType.releaseManifest, version)
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
    });
  if (version === 2)
    w.u8(GATE_STATUSES.indexOf(gate.status))
      .str(gate.evaluator, 256)
      .fixed(gate.reportSha256, 32)
      .str(gate.detail, 2000)
      .list(gate.failed, MAX_GATE_FAILED, (ww, f) => {
        ww.str(f, 256);
      })
      .list(gate.metrics, MAX_GATE_METRICS, (ww, x) => {
        ww.str(x.name, 256).f64(x.value);
      })
      .bool(gate.override !== null)
      .str(gate.override?.reason ?? '', 2000);
  return w.finish();
}

export function decodeReleaseManifest(options: { bytes: Uint8Array }): ReleaseManifest {
  const r = new ByteReader(options.bytes, 'release manifest');
  const version = r.header(RecordType.releaseManifest, [1, 2]) as 1 | 2;
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
    formatVersion: version,
  };
  if (version === 2) {
    const status = GATE_STATUSES[r.u8('gate status')];
    if (!status) throw new FormatError('release manifest: unknown gate status');
    const gate: ReleaseGate = {
      status,
      evaluator: r.str(256, 'gate evaluator'),
      reportSha256: r.fixed(32, 'gate reportSha256'),
      detail: r.str(2000, 'gate detail'),
      failed: r.list(MAX_GATE_FAILED, (rr) => rr.str(256, 'failed check'), 'gate failed'),
      metrics: r.list(MAX_GATE_METRICS, (rr) => ({ name: rr.str(256, 'metric name'), value: rr.f64('metric value') }), 'gate metrics'),
      override: null,
    };
    const hasOverride = r.bool('gate override');
    const reason = r.str(2000, 'override reason');
    if (hasOverride) gate.override = { reason };
    else if (reason !== '') throw new FormatError('release manifest: override reason without an override');
    checkGate(gate, (msg) => {
      throw new FormatError(`release manifest: ${msg}`);
    });
    m.gate = gate;
  }
  r.end();
  if (!m.kind) throw new FormatError('release manifest: unknown kind');
  if (m.releaseVersion < 1) throw new FormatError('release manifest: releaseVersion must be >= 1');
  if (!(m.canaryFraction > 0 && m.canaryFraction <= 1)) throw new FormatError('release manifest: canaryFraction must be in (0, 1]');
  if ((m.kind === 'rollback') !== (m.rollbackOf > 0)) throw new FormatError('release manifest: rollbackOf is set exactly for rollbacks');
  return m;
}

/** The fingerprint domain of a manifest body: it follows the record version (the body's 4th byte). */
function domainOfBody(body: Uint8Array): string {
  return body[3] === 1 ? RELEASE_MANIFEST_DOMAIN : RELEASE_MANIFEST_DOMAIN_V2;
}

export function signReleaseManifest(options: { manifest: ReleaseManifest; secretKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
  const body = encodeReleaseManifest({ manifest: options.manifest });
  return signRecord({
    type: RecordType.releaseManifest,
    domain: domainOfBody(body),
    body,
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
  if (!(options.bytes instanceof Uint8Array)) throw new FormatError('release manifest: expected bytes');
  const { envelope, fingerprint: fp } = openSignedRecord({
    bytes: options.bytes,
    type: RecordType.releaseManifest,
    domain: domainOfBody,
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
  const body = encodeReleaseManifest(options);
  return fingerprint({ domain: domainOfBody(body), bytes: body });
}
