// The robot and officer pipelines together, in memory: exact mean within the quantization bound,
// sparsification with error feedback, FFA-LoRA, DP modes, and the officer's refusals.
import { describe, expect, it, beforeAll } from 'vitest';
import { generateKeyPair, createEncryptor, createDecryptor, type HeKeyPair } from '../he/seal.ts';
import { PARAM_SET_ID } from '../he/params.ts';
import { quantizationBound } from '../he/packing.ts';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { generateKemKeyPair } from '../crypto/kem.ts';
import { randomBytes, UniformSource } from '../random.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { adapterFingerprint, adapterSchema, flattenTensors, type PeftAdapter } from '../peft/adapter.ts';
import { roundConfigFingerprint, type RoundConfig } from '../records/round-config.ts';
import { buildUpdatePackage } from '../records/update-package.ts';
import type { ContributionManifest } from '../records/contribution-manifest.ts';
import { attestRobotKeys } from '../records/enrollment.ts';
import { sumCiphertextBlocks } from '../he/aggregate.ts';
import { planRound } from './plan.ts';
import { computeDelta, encodeContribution, roundStartAdapter } from './robot.ts';
import { applyMeanUpdate, meanUpdateFromSlots, verifyContributions } from './officer.ts';
import { sparsificationMask, trainableTensorNames, trainableLength } from './mask.ts';

function adapter(seed: number, layers = 3, r = 4, d = 64): PeftAdapter {
  const random = new UniformSource();
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (let l = 0; l < layers; l++) {
    const p = `base_model.model.model.layers.${l}.self_attn.q_proj`;
    tensors.set(`${p}.lora_A.weight`, Float32Array.from({ length: r * d }, () => (random.next() - 0.5) * 0.2 + seed * 0));
    shapes.set(`${p}.lora_A.weight`, [r, d]);
    tensors.set(`${p}.lora_B.weight`, Float32Array.from({ length: r * d }, () => (random.next() - 0.5) * 0.02));
    shapes.set(`${p}.lora_B.weight`, [d, r]);
  }
  return { config: { peft_type: 'LORA', r, lora_alpha: 2 * r, target_modules: ['q_proj'] }, tensors, shapes };
}

function perturb(a: PeftAdapter, names: string[], sigma: number): PeftAdapter {
  const random = new UniformSource();
  const tensors = new Map(a.tensors);
  for (const n of names) tensors.set(n, a.tensors.get(n)!.map((v) => v + (random.next() - 0.5) * 2 * sigma));
  return { config: a.config, tensors, shapes: a.shapes };
}

let he: HeKeyPair;
beforeAll(async () => {
  he = await generateKeyPair({ paramSetId: PARAM_SET_ID });
});

async function runRound(options: { freezeA: boolean; sparsity: number; mode: 'off' | 'local' | 'distributed'; robots: number }) {
  const base = adapter(0);
  const tensors = adapterSchema({ adapter: base });
  const dp = options.mode === 'off' ? { mode: 'off' as const, clip: 0, noiseMultiplier: 0 } : { mode: options.mode, clip: 1, noiseMultiplier: 0.5 };
  const maskSeed = randomBytes(32);
  const plan = planRound({ tensors, freezeA: options.freezeA, maskSeed, sparsity: options.sparsity, maxContributors: 8, dp });
  const config: RoundConfig = {
    roundId: 'round-1', orgId: 'org', fleetId: 'fleet', createdAt: 1, deadline: 0, quorum: options.robots, maxContributors: 8, keyVersion: 1,
    heKeyFingerprint: randomBytes(32), baseAdapterSha256: adapterFingerprint({ adapter: base }), tensors, freezeA: options.freezeA,
    aSeed: randomBytes(32), maskSeed, sparsity: options.sparsity, quant: { fieldBits: plan.fieldBits, scale: plan.scale, encoding: plan.encoding },
    dp: { ...dp, delta: options.mode === 'off' ? 0 : 1e-5, epsilonBudget: options.mode === 'off' ? 0 : 100 }, valueCount: plan.valueCount, ciphertextCount: plan.ciphertextCount,
  };
  const configFingerprint = roundConfigFingerprint({ config });
  const start = roundStartAdapter({ config, base });
  const names = trainableTensorNames({ tensors, freezeA: options.freezeA });
  const encryptor = await createEncryptor({ publicKey: he.publicKey, paramSetId: PARAM_SET_ID });
  const attestKey = randomBytes(32);
  const packages = new Map<string, Uint8Array>();
  const robots = new Map<string, { kemPublicKey: Uint8Array }>();
  const manifest: ContributionManifest = { roundId: config.roundId, roundConfigFingerprint: configFingerprint, aggregateSha256: new Uint8Array(32), entries: [] };
  const deltas: Float32Array[] = [];
  let sum: Uint8Array | null = null;
  for (let i = 0; i < options.robots; i++) {
    const trained = perturb(start, names, 0.01);
    const delta = computeDelta({ config, start, trained });
    deltas.push(delta);
    const prepared = encodeContribution({ config, delta, encryptor });
    const dsa = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
    const kem = generateKemKeyPair();
    const robotId = `robot-${i}`;
    const pkg = buildUpdatePackage({ meta: { roundId: config.roundId, robotId, fleetId: 'fleet', keyVersion: 1, roundConfigFingerprint: configFingerprint, valueCount: prepared.valueCount, ciphertextCount: prepared.ciphertextCount, createdAt: 1 }, ciphertexts: prepared.ciphertexts, secretKey: dsa.secretKey, publicKey: dsa.publicKey });
    packages.set(robotId, pkg.bytes);
    robots.set(robotId, { kemPublicKey: kem.publicKey });
    const sig = pkg.bytes; // signature is inside; re-open to read it
    const { openUpdatePackage } = await import('../records/update-package.ts');
    const opened = openUpdatePackage({ bytes: sig, robotPublicKey: dsa.publicKey });
    manifest.entries.push({ robotId, enrollmentId: `b-${i}`, dsaPublicKey: dsa.publicKey, attestation: attestRobotKeys({ attestKey, fleetId: 'fleet', bundleId: `b-${i}`, dsaPublicKey: dsa.publicKey, kemPublicKey: kem.publicKey }), packageFingerprint: opened.fingerprint, packageSignature: opened.signature, ciphertextSha256: opened.package.ciphertextSha256 });
    sum = sumCiphertextBlocks({ accumulator: sum, addend: prepared.ciphertexts, parmsId: he.parmsId });
  }
  encryptor.destroy();
  manifest.aggregateSha256 = sha256(sum!);
  return { config, configFingerprint, manifest, packages, robots, attestKey, deltas, start, names };
}

describe('a round in memory', () => {
  it('decrypts the exact mean within the quantization bound (dense, plain LoRA)', async () => {
    const r = await runRound({ freezeA: false, sparsity: 1, mode: 'off', robots: 3 });
    const verified = verifyContributions({ config: r.config, configFingerprint: r.configFingerprint, manifest: r.manifest, packages: r.packages, robots: r.robots, attestKeyFor: () => r.attestKey, parmsId: he.parmsId });
    const dec = await createDecryptor({ secretKey: he.secretKey, paramSetId: PARAM_SET_ID });
    const slots = dec.decryptSlots({ ciphertexts: verified.ciphertexts });
    dec.destroy();
    const total = trainableLength({ tensors: r.config.tensors, freezeA: false });
    const mean = meanUpdateFromSlots({ config: r.config, slots, contributors: 3, trainableLength: total });
    const bound = quantizationBound({ scale: r.config.quant.scale });
    let maxErr = 0;
    for (let k = 0; k < total; k++) maxErr = Math.max(maxErr, Math.abs(mean[k]! - (r.deltas[0]![k]! + r.deltas[1]![k]! + r.deltas[2]![k]!) / 3));
    expect(maxErr).toBeLessThanOrEqual(bound);
    const candidate = applyMeanUpdate({ config: r.config, start: r.start, mean });
    expect(flattenTensors({ adapter: candidate, names: r.names }).length).toBe(total);
  });

  it('FFA-LoRA with a sparse shared mask sends only lora_B values under the mask', async () => {
    const r = await runRound({ freezeA: true, sparsity: 0.25, mode: 'off', robots: 2 });
    expect(r.names.every((n) => n.endsWith('lora_B.weight'))).toBe(true);
    const total = trainableLength({ tensors: r.config.tensors, freezeA: true });
    expect(r.config.valueCount).toBeLessThan(total * 0.4);
    const verified = verifyContributions({ config: r.config, configFingerprint: r.configFingerprint, manifest: r.manifest, packages: r.packages, robots: r.robots, attestKeyFor: () => r.attestKey, parmsId: he.parmsId });
    const dec = await createDecryptor({ secretKey: he.secretKey, paramSetId: PARAM_SET_ID });
    const mean = meanUpdateFromSlots({ config: r.config, slots: dec.decryptSlots({ ciphertexts: verified.ciphertexts }), contributors: 2, trainableLength: total });
    dec.destroy();
    const mask = sparsificationMask({ seed: r.config.maskSeed, length: total, sparsity: 0.25 });
    const kept = new Set(mask);
    const bound = quantizationBound({ scale: r.config.quant.scale });
    for (let k = 0; k < total; k++) {
      if (kept.has(k)) expect(Math.abs(mean[k]! - (r.deltas[0]![k]! + r.deltas[1]![k]!) / 2)).toBeLessThanOrEqual(bound);
      else expect(mean[k]).toBe(0);
    }
  });

  it('distributed DP decodes the noisy sum through the modular encoding', async () => {
    const r = await runRound({ freezeA: false, sparsity: 1, mode: 'distributed', robots: 3 });
    const verified = verifyContributions({ config: r.config, configFingerprint: r.configFingerprint, manifest: r.manifest, packages: r.packages, robots: r.robots, attestKeyFor: () => r.attestKey, parmsId: he.parmsId });
    const dec = await createDecryptor({ secretKey: he.secretKey, paramSetId: PARAM_SET_ID });
    const total = trainableLength({ tensors: r.config.tensors, freezeA: false });
    const mean = meanUpdateFromSlots({ config: r.config, slots: dec.decryptSlots({ ciphertexts: verified.ciphertexts }), contributors: 3, trainableLength: total });
    dec.destroy();
    // total noise std of the mean is z*C/3 per value; the decoded mean must be of that order, not wrapped garbage
    let sq = 0;
    for (let k = 0; k < total; k++) sq += (mean[k]! - (r.deltas[0]![k]! + r.deltas[1]![k]! + r.deltas[2]![k]!) / 3) ** 2;
    const rms = Math.sqrt(sq / total);
    const sigmaOfMean = (0.5 * 1) / 3; // z * C / n
    expect(rms).toBeGreaterThan(sigmaOfMean * 0.8);
    expect(rms).toBeLessThan(sigmaOfMean * 1.25);
  });

  it('the officer refuses fewer than quorum, unattested robots, and a server-altered aggregate', async () => {
    const r = await runRound({ freezeA: false, sparsity: 1, mode: 'off', robots: 3 });
    const base = { config: r.config, configFingerprint: r.configFingerprint, packages: r.packages, robots: r.robots, attestKeyFor: () => r.attestKey, parmsId: he.parmsId };
    expect(() => verifyContributions({ ...base, manifest: { ...r.manifest, entries: r.manifest.entries.slice(0, 2) } })).toThrowError(expect.objectContaining({ code: 'quorum_not_met' }));
    const dup = { ...r.manifest, entries: [r.manifest.entries[0]!, r.manifest.entries[0]!, r.manifest.entries[1]!] };
    expect(() => verifyContributions({ ...base, manifest: dup })).toThrowError(expect.objectContaining({ code: 'quorum_not_met' }));
    expect(() => verifyContributions({ ...base, manifest: r.manifest, attestKeyFor: () => randomBytes(32) })).toThrowError(expect.objectContaining({ code: 'bad_signature' }));
    expect(() => verifyContributions({ ...base, manifest: { ...r.manifest, aggregateSha256: randomBytes(32) } })).toThrowError(expect.objectContaining({ code: 'integrity' }));
    const swapped = new Map(r.packages);
    swapped.set('robot-0', r.packages.get('robot-1')!);
    expect(() => verifyContributions({ ...base, manifest: r.manifest, packages: swapped })).toThrow();
  });
});
