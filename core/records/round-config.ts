// The round config: everything a robot needs to contribute to a round, signed by an officer (ML-DSA-65).
// It names the base adapter by SHA-256 and its tensor schema, never its values, so the server learns
// nothing about the model. Robots verify the signer against their pinned officer keys before using it.
//
// Version 2 (issue 5) appends the training stage (imitation_learning | offline_rl | on_policy_rl) and the
// officer's approval of on-policy training {reason, approvedAt}, which an on-policy round must carry
// (robots refuse on-policy training without it; decode refuses an on-policy config without it).
// Version 1 configs still decode (stage absent = imitation learning, the only stage v1 knew). The
// fingerprint domain follows the version: `round-config/v1`, `round-config/v2`.
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint } from '../codec/fingerprint.ts';
import { FormatError } from '../errors.ts';
import { RecordType, openSignedRecord, signRecord } from './signed.ts';

export const ROUND_CONFIG_DOMAIN = 'round-config/v1';
export const ROUND_CONFIG_DOMAIN_V2 = 'round-config/v2';

/** The training stages of the original design (core/policy/reference.ts TRAINING_STAGES, same order). */
export type RoundStage = 'imitation_learning' | 'offline_rl' | 'on_policy_rl';
export const ROUND_STAGES: readonly RoundStage[] = ['imitation_learning', 'offline_rl', 'on_policy_rl'];
const MAX_BODY = 4 * 1024 * 1024;
export const MAX_TENSORS = 8192;

export type DpMode = 'off' | 'local' | 'distributed';
export type QuantEncoding = 'offset' | 'modular';

export interface RoundConfig {
  roundId: string;
  orgId: string;
  fleetId: string;
  createdAt: number;
  /** ms since epoch; 0 = no deadline (closed by the officer). */
  deadline: number;
  quorum: number;
  maxContributors: number;
  keyVersion: number;
  heKeyFingerprint: Uint8Array;
  /** adapterFingerprint of the base adapter every robot starts from. */
  baseAdapterSha256: Uint8Array;
  tensors: { name: string; shape: number[] }[];
  /** FFA-LoRA: lora_A frozen to values derived from aSeed; robots send lora_B only. */
  freezeA: boolean;
  aSeed: Uint8Array;
  /** Seed of the sparsification mask shared by every robot of the round. */
  maskSeed: Uint8Array;
  /** Fraction of trainable values sent (1 = dense). */
  sparsity: number;
  quant: { fieldBits: number; scale: number; encoding: QuantEncoding };
  dp: { mode: DpMode; clip: number; noiseMultiplier: number; delta: number; epsilonBudget: number };
  /** Number of quantized values each robot sends (after the mask). */
  valueCount: number;
  ciphertextCount: number;
  /** Version 2: the round's training stage; absent (v1) means imitation learning. */
  stage?: RoundStage;
  /** Version 2: the officer's explicit approval of on-policy training; required exactly for on_policy_rl. */
  onPolicyApproval?: { reason: string; approvedAt: number } | null;
  /** The record version it was decoded from; new configs leave it unset and encode as 2. */
  formatVersion?: 1 | 2;
}

/** The stage a round config names (v1 configs predate stages: imitation learning). */
export function roundStage(config: Pick<RoundConfig, 'stage'>): RoundStage {
  return config.stage ?? 'imitation_learning';
}

const DP_MODES: DpMode[] = ['off', 'local', 'distributed'];
const ENCODINGS: QuantEncoding[] = ['offset', 'modular'];

export function encodeRoundConfig(options: { config: RoundConfig }): Uint8Array {
  const c = options.config;
  validateRoundConfigFields(c);
  const version = c.formatVersion === 1 ? 1 : 2;
  if (version === 1 && (roundStage(c) !== 'imitation_learning' || c.onPolicyApproval)) throw new RangeError('a version 1 round config cannot name a training stage');
  const w = new ByteWriter()
    .header(RecordType.roundConfig, version)
    .str(c.roundId, 64)
    .str(c.orgId, 64)
    .str(c.fleetId, 64)
    .u64(c.createdAt)
    .u64(c.deadline)
    .u32(c.quorum)
    .u32(c.maxContributors)
    .u32(c.keyVersion)
    .fixed(c.heKeyFingerprint, 32)
    .fixed(c.baseAdapterSha256, 32)
    .list(c.tensors, MAX_TENSORS, (w, t) => {
      w.str(t.name, 512).list(t.shape, 4, (w2, d) => w2.u32(d));
    })
    .bool(c.freezeA)
    .fixed(c.aSeed, 32)
    .fixed(c.maskSeed, 32)
    .f64(c.sparsity)
    .u8(c.quant.fieldBits)
    .f64(c.quant.scale)
    .u8(ENCODINGS.indexOf(c.quant.encoding))
    .u8(DP_MODES.indexOf(c.dp.mode))
    .f64(c.dp.clip)
    .f64(c.dp.noiseMultiplier)
    .f64(c.dp.delta)
    .f64(c.dp.epsilonBudget)
    .u64(c.valueCount)
    .u32(c.ciphertextCount);
  if (version === 2)
    w.u8(ROUND_STAGES.indexOf(roundStage(c)))
      .bool(!!c.onPolicyApproval)
      .str(c.onPolicyApproval?.reason ?? '', 2000)
      .u64(c.onPolicyApproval?.approvedAt ?? 0);
  return w.finish();
}

export function decodeRoundConfig(options: { bytes: Uint8Array }): RoundConfig {
  const r = new ByteReader(options.bytes, 'round config');
  const version = r.header(RecordType.roundConfig, [1, 2]) as 1 | 2;
  const c: RoundConfig = {
    roundId: r.str(64, 'roundId'),
    orgId: r.str(64, 'orgId'),
    fleetId: r.str(64, 'fleetId'),
    createdAt: r.u64('createdAt'),
    deadline: r.u64('deadline'),
    quorum: r.u32('quorum'),
    maxContributors: r.u32('maxContributors'),
    keyVersion: r.u32('keyVersion'),
    heKeyFingerprint: r.fixed(32, 'heKeyFingerprint'),
    baseAdapterSha256: r.fixed(32, 'baseAdapterSha256'),
    tensors: r.list(MAX_TENSORS, (rr) => ({ name: rr.str(512, 'tensor name'), shape: rr.list(4, (r3) => r3.u32('dim'), 'shape') }), 'tensors'),
    freezeA: r.bool('freezeA'),
    aSeed: r.fixed(32, 'aSeed'),
    maskSeed: r.fixed(32, 'maskSeed'),
    sparsity: r.f64('sparsity'),
    quant: { fieldBits: r.u8('fieldBits'), scale: r.f64('scale'), encoding: ENCODINGS[r.u8('encoding')]! },
    dp: {
      mode: DP_MODES[r.u8('dp mode')]!,
      clip: r.f64('clip'),
      noiseMultiplier: r.f64('noiseMultiplier'),
      delta: r.f64('delta'),
      epsilonBudget: r.f64('epsilonBudget'),
    },
    valueCount: r.u64('valueCount'),
    ciphertextCount: r.u32('ciphertextCount'),
    formatVersion: version,
  };
  if (version === 2) {
    const stage = ROUND_STAGES[r.u8('stage')];
    if (!stage) throw new FormatError('round config: unknown training stage');
    c.stage = stage;
    const approved = r.bool('onPolicyApproval');
    const reason = r.str(2000, 'onPolicyApproval reason');
    const approvedAt = r.u64('onPolicyApproval approvedAt');
    c.onPolicyApproval = approved ? { reason, approvedAt } : null;
    if (!approved && (reason !== '' || approvedAt !== 0)) throw new FormatError('round config: approval fields set without an approval');
  }
  r.end();
  try {
    validateRoundConfigFields(c);
  } catch (err) {
    throw new FormatError(`round config: ${(err as Error).message}`);
  }
  return c;
}

/** Structural checks that hold for every round config (the envelope and DP checks come on top). */
export function validateRoundConfigFields(c: RoundConfig): void {
  const fail = (m: string) => {
    throw new RangeError(m);
  };
  if (!c.roundId || !c.orgId || !c.fleetId) fail('"roundId", "orgId" and "fleetId" must be non-empty');
  if (c.quorum < 1) fail(`"quorum" expected >= 1, got ${c.quorum}`);
  if (c.maxContributors < Math.max(2, c.quorum) || c.maxContributors > 1024)
    fail(`"maxContributors" expected in [max(2, quorum), 1024], got ${c.maxContributors}`);
  if (c.keyVersion < 1) fail(`"keyVersion" expected >= 1, got ${c.keyVersion}`);
  if (c.tensors.length === 0) fail('"tensors" expected at least one tensor');
  for (const t of c.tensors) if (t.shape.length !== 2 || t.shape.some((d) => d < 1)) fail(`tensor "${t.name}" expected a 2-D shape, got [${t.shape}]`);
  if (!(c.sparsity > 0 && c.sparsity <= 1)) fail(`"sparsity" expected in (0, 1], got ${c.sparsity}`);
  if (c.quant.fieldBits < 2 || c.quant.fieldBits > 32) fail(`"quant.fieldBits" expected in [2, 32], got ${c.quant.fieldBits}`);
  if (!(c.quant.scale > 0)) fail(`"quant.scale" expected > 0, got ${c.quant.scale}`);
  if (!ENCODINGS.includes(c.quant.encoding)) fail('"quant.encoding" expected offset or modular');
  if (!DP_MODES.includes(c.dp.mode)) fail('"dp.mode" expected off, local or distributed');
  if ((c.dp.mode === 'distributed') !== (c.quant.encoding === 'modular'))
    fail('"quant.encoding" must be modular exactly when "dp.mode" is distributed');
  if (c.valueCount < 1) fail(`"valueCount" expected >= 1, got ${c.valueCount}`);
  if (c.ciphertextCount < 1) fail(`"ciphertextCount" expected >= 1, got ${c.ciphertextCount}`);
  if (c.stage !== undefined && !ROUND_STAGES.includes(c.stage)) fail(`"stage" expected ${ROUND_STAGES.join(', ')}, got ${String(c.stage)}`);
  const stage = roundStage(c);
  if (stage === 'on_policy_rl' && !(c.onPolicyApproval && c.onPolicyApproval.reason.trim()))
    fail('"onPolicyApproval" with a non-empty reason is required for an on_policy_rl round');
  if (stage !== 'on_policy_rl' && c.onPolicyApproval) fail('"onPolicyApproval" is only for on_policy_rl rounds');
}

/** The fingerprint domain of a round config body: it follows the record version (the body's 4th byte). */
function domainOfBody(body: Uint8Array): string {
  return body[3] === 1 ? ROUND_CONFIG_DOMAIN : ROUND_CONFIG_DOMAIN_V2;
}

export function roundConfigFingerprint(options: { config: RoundConfig }): Uint8Array {
  const body = encodeRoundConfig(options);
  return fingerprint({ domain: domainOfBody(body), bytes: body });
}

export function signRoundConfig(options: { config: RoundConfig; secretKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
  const body = encodeRoundConfig({ config: options.config });
  return signRecord({
    type: RecordType.roundConfig,
    domain: domainOfBody(body),
    body,
    algorithm: 'ml-dsa-65',
    secretKey: options.secretKey,
    publicKey: options.publicKey,
    maxBody: MAX_BODY,
  });
}

export function openRoundConfig(options: { bytes: Uint8Array; trustedKeys?: readonly Uint8Array[] }): {
  record: RoundConfig;
  fingerprint: Uint8Array;
  signerPublicKey: Uint8Array;
} {
  if (!(options.bytes instanceof Uint8Array)) throw new FormatError('round config: expected bytes');
  const { envelope, fingerprint: fp } = openSignedRecord({
    bytes: options.bytes,
    type: RecordType.roundConfig,
    domain: domainOfBody,
    algorithm: 'ml-dsa-65',
    maxBody: MAX_BODY,
    trustedKeys: options.trustedKeys,
    what: 'round config',
  });
  return { record: decodeRoundConfig({ bytes: envelope.body }), fingerprint: fp, signerPublicKey: envelope.signerPublicKey };
}
