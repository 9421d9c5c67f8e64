// The robot's side of a round, pure: from (base adapter, trained adapter) to the ciphertexts it posts.
//
//   start   = base adapter, with lora_A replaced by the round's seeded A when A is frozen (FFA-LoRA)
//   delta   = flatten(trained) - flatten(start) over the trainable tensors, plus the error-feedback
//             residual the robot kept from earlier rounds
//   sent    = delta[mask]                    (the round's shared sparsification mask)
//   residual' = delta with the sent coordinates zeroed (kept on the robot, never sent)
//   DP off          fields = quantizeOffset(sent * s)
//   DP local        fields = quantizeOffset(clipL2(sent, C) + N(0, (zC)^2))   rounding = post-processing
//   DP distributed  fields = (condRound(clipL2(sent, C) * s) + Skellam(mu/quorum)) mod 2^b
//   slots = packFields(fields) -> ciphertexts = BFV.encrypt(slots) under the signed key record's key
import type { PeftAdapter } from '../peft/adapter.ts';
import { adapterFingerprint, flattenTensors, frozenLoraA, unflattenInto } from '../peft/adapter.ts';
import type { RoundConfig } from '../records/round-config.ts';
import { FormatError, IntegrityError } from '../errors.ts';
import { equalBytes } from '../bytes.ts';
import { UniformSource } from '../random.ts';
import { packingLayout } from '../he/params.ts';
import { encodeModular, packFields, quantizeOffset } from '../he/packing.ts';
import type { HeEncryptor, ZeroEncryptionSource } from '../he/seal.ts';
import { addGaussianNoise, addSkellamNoise, clipL2, conditionalRandomizedRounding, roundingL2Bound } from '../dp/noise.ts';
import { perRobotSkellamMu } from '../dp/round-privacy.ts';
import { roundPrivacyParams } from './privacy.ts';
import { gather, sparsificationMask, trainableTensorNames } from './mask.ts';

/** The adapter every robot of the round starts from (and the officer adds the mean update to). */
export function roundStartAdapter(options: { config: RoundConfig; base: PeftAdapter }): PeftAdapter {
  const { config, base } = options;
  checkSchema({ config, adapter: base, what: 'base adapter' });
  const fp = adapterFingerprint({ adapter: base });
  if (!equalBytes(fp, config.baseAdapterSha256))
    throw new IntegrityError('base adapter differs from the round\'s base (SHA-256 mismatch): pull the current release or pass --base with the round\'s template');
  if (!config.freezeA) return base;
  const aNames = config.tensors.filter((t) => t.name.endsWith('.lora_A.weight')).map((t) => t.name).sort();
  const parts = aNames.map((name) => frozenLoraA({ seed: config.aSeed, name, shape: config.tensors.find((t) => t.name === name)!.shape }));
  const values = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    values.set(p, off);
    off += p.length;
  }
  return unflattenInto({ adapter: base, names: aNames, values });
}

export function checkSchema(options: { config: RoundConfig; adapter: PeftAdapter; what: string }): void {
  const { config, adapter, what } = options;
  const names = [...adapter.tensors.keys()].sort();
  const expected = config.tensors.map((t) => t.name).sort();
  if (names.length !== expected.length || names.some((n, i) => n !== expected[i]))
    throw new FormatError(`${what}: tensors do not match the round's adapter schema (${names.length} vs ${expected.length} tensors)`);
  for (const t of config.tensors) {
    const shape = adapter.shapes.get(t.name)!;
    if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]))
      throw new FormatError(`${what}: tensor ${t.name} has shape [${shape}], the round expects [${t.shape}]`);
  }
}

export interface PreparedContribution {
  ciphertexts: Uint8Array;
  valueCount: number;
  ciphertextCount: number;
  /** Error-feedback residual over the trainable vector, to keep for the next round. */
  residual: Float32Array;
  /** L2 norm of the sent values before clipping, and whether clipping changed them. */
  norm: number;
  clipped: boolean;
  timings: Record<string, number>;
}

export function computeDelta(options: { config: RoundConfig; start: PeftAdapter; trained: PeftAdapter; residual?: Float32Array | null }): Float32Array {
  const { config, start, trained } = options;
  checkSchema({ config, adapter: trained, what: 'trained adapter' });
  if (config.freezeA) {
    for (const t of config.tensors.filter((x) => x.name.endsWith('.lora_A.weight'))) {
      const a = trained.tensors.get(t.name)!;
      const frozen = start.tensors.get(t.name)!;
      if (!equalFloat(a, frozen))
        throw new IntegrityError(`trained adapter: ${t.name} differs from the round's frozen lora_A; train from the round's start adapter (tensorguard robot start)`);
    }
  }
  const names = trainableTensorNames({ tensors: config.tensors, freezeA: config.freezeA });
  const after = flattenTensors({ adapter: trained, names });
  const before = flattenTensors({ adapter: start, names });
  const residual = options.residual && options.residual.length === after.length ? options.residual : null;
  const delta = new Float32Array(after.length);
  for (let i = 0; i < delta.length; i++) delta[i] = after[i]! - before[i]! + (residual ? residual[i]! : 0);
  return delta;
}

function equalFloat(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** delta (trainable vector) -> ciphertexts, following the round's compression and DP settings. */
export function encodeContribution(options: {
  config: RoundConfig;
  delta: Float32Array;
  encryptor: HeEncryptor;
  random?: UniformSource;
  /** Precomputed encryptions of zero of the encryptor's key (a robot agent's pool), used once each. */
  zeros?: ZeroEncryptionSource;
}): PreparedContribution {
  const { config, delta, encryptor } = options;
  const random = options.random ?? new UniformSource();
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = now - t;
    t = now;
  };
  const mask = sparsificationMask({ seed: config.maskSeed, length: delta.length, sparsity: config.sparsity });
  if (mask.length !== config.valueCount)
    throw new IntegrityError(`this adapter yields ${mask.length} values under the round's mask, the round expects ${config.valueCount}`);
  const sent = gather({ values: delta, mask });
  const residual = delta.slice();
  for (let i = 0; i < mask.length; i++) residual[mask[i]!] = 0;
  lap('compress');

  let fields: Uint32Array;
  let norm = 0;
  let clipped = false;
  const { mode, clip, noiseMultiplier } = config.dp;
  if (mode === 'off') {
    for (let i = 0; i < sent.length; i++) norm += sent[i]! * sent[i]!;
    norm = Math.sqrt(norm);
    fields = quantizeOffset({ values: sent, scale: config.quant.scale, fieldBits: config.quant.fieldBits, random });
  } else {
    const c = clipL2({ values: sent, clip });
    norm = c.norm;
    clipped = c.clipped;
    if (mode === 'local') {
      const noisy = addGaussianNoise({ values: c.values, sigma: noiseMultiplier * clip, random });
      fields = quantizeOffset({ values: noisy, scale: config.quant.scale, fieldBits: config.quant.fieldBits, random });
    } else {
      const s = config.quant.scale;
      const scaled = new Float32Array(c.values.length);
      for (let i = 0; i < scaled.length; i++) scaled[i] = c.values[i]! * s;
      const bound = roundingL2Bound({ scaledClip: clip * s, dimension: scaled.length });
      const ints = conditionalRandomizedRounding({ values: scaled, l2Bound: bound, random });
      const params = roundPrivacyParams({ config });
      const noisy = addSkellamNoise({ integers: ints, mu: perRobotSkellamMu({ params }), random });
      fields = encodeModular({ integers: noisy, fieldBits: config.quant.fieldBits });
    }
  }
  lap('clip_noise_quantize');
  const layout = packingLayout({ fieldBits: config.quant.fieldBits, maxContributors: config.maxContributors, encoding: config.quant.encoding });
  const slots = packFields({ fields, layout });
  lap('pack');
  const ciphertexts = encryptor.encryptSlots({ slots, zeros: options.zeros });
  lap('encrypt');
  const ciphertextCount = slots.length / 4096;
  if (ciphertextCount !== config.ciphertextCount)
    throw new IntegrityError(`packed into ${ciphertextCount} ciphertexts, the round expects ${config.ciphertextCount}`);
  return { ciphertexts, valueCount: mask.length, ciphertextCount, residual, norm, clipped, timings };
}
