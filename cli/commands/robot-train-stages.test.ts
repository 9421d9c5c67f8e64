// `tensorguard robot train` picks its trainer from the round's stage (core/train/stages.ts): on-policy RL
// is refused without the officer's approval, with an approval signed by a key the robot never pinned,
// with a tampered approval, or against the round's signed stage; with a valid signed approval it trains
// (PPO), and offline RL (AWR on the robot's logged transitions) writes an adapter that changes the policy.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../context.ts';
import { exists, loadAdapterDir } from '../home.ts';
import { MODELS_DIR, robotTrain } from './robot-train.ts';
import { REFERENCE_POLICY } from '../../core/policy/reference.ts';
import { loadPolicyWeights, loraFromAdapter, policyForward } from '../../core/policy/mlp.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { randomBytes } from '../../core/random.ts';
import { toBase64, utf8ToBytes } from '../../core/bytes.ts';
import { signRoundConfig, type RoundConfig } from '../../core/records/round-config.ts';
import { seedFrom, SeededRandom } from '../../core/sim/random.ts';

const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const stranger = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const REASON = 'supervised simulator cell, e-stop staffed';

function config(overrides: Partial<RoundConfig>): RoundConfig {
  return {
    roundId: 'round-stages-1', orgId: 'org-1', fleetId: 'fleet-1', createdAt: 1, deadline: 0, quorum: 2, maxContributors: 64, keyVersion: 1,
    heKeyFingerprint: randomBytes(32), baseAdapterSha256: randomBytes(32), tensors: [{ name: 'base_model.model.fc1.lora_A.weight', shape: [4, 18] }],
    freezeA: false, aSeed: randomBytes(32), maskSeed: randomBytes(32), sparsity: 1,
    quant: { fieldBits: 16, scale: 1000, encoding: 'offset' }, dp: { mode: 'off', clip: 0, noiseMultiplier: 0, delta: 0, epsilonBudget: 0 },
    valueCount: 32, ciphertextCount: 1,
    ...overrides,
  };
}

const onPolicy = config({ stage: 'on_policy_rl', onPolicyApproval: { reason: REASON, approvedAt: 1_700_000_000_000 } });

describe('robot train: stage dispatch', () => {
  let dir: string;
  let ctx: ReturnType<typeof createContext>;
  const seed = '0b'.repeat(32);
  const file = (name: string) => join(dir, name);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tg-stages-'));
    // An enrolled robot's identity: the officer key it pinned from its enrollment bundle.
    await mkdir(join(dir, 'home', 'robot'), { recursive: true });
    await writeFile(
      join(dir, 'home', 'robot', 'identity.json'),
      JSON.stringify({ serverUrl: 'http://127.0.0.1:9', orgId: 'org-1', fleetId: 'fleet-1', robotId: 'robot-1', name: 'robot-1', bundleId: 'b-1', officerPublicKeys: [toBase64(officer.publicKey)], dsaPublicKey: '', kemPublicKey: '' }),
    );
    ctx = createContext({ home: join(dir, 'home'), json: true, quiet: true });
    await writeFile(file('on-policy.bin'), signRoundConfig({ config: onPolicy, secretKey: officer.secretKey, publicKey: officer.publicKey }));
    await writeFile(file('forged.bin'), signRoundConfig({ config: onPolicy, secretKey: stranger.secretKey, publicKey: stranger.publicKey }));
    // The officer's approval edited after signing (a server widening what was approved).
    const signed = signRoundConfig({ config: onPolicy, secretKey: officer.secretKey, publicKey: officer.publicKey });
    const at = Buffer.from(signed).indexOf(Buffer.from(utf8ToBytes(REASON)));
    expect(at).toBeGreaterThan(0);
    const tampered = signed.slice();
    tampered[at] = 'S'.charCodeAt(0);
    await writeFile(file('tampered.bin'), tampered);
    await writeFile(file('imitation.bin'), signRoundConfig({ config: config({ stage: 'imitation_learning' }), secretKey: officer.secretKey, publicKey: officer.publicKey }));
    await writeFile(file('other-fleet.bin'), signRoundConfig({ config: { ...onPolicy, fleetId: 'fleet-2' }, secretKey: officer.secretKey, publicKey: officer.publicKey }));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses on-policy training without an approval, with a forged or tampered one, or against the signed stage', async () => {
    const out = file('refused');
    const base = { out, episodes: 2, iterations: 1, seed };
    await expect(robotTrain(ctx, { ...base, stage: 'on_policy_rl' })).rejects.toMatchObject({ code: 'on_policy_not_approved' });
    await expect(robotTrain(ctx, { ...base, roundConfig: file('forged.bin') })).rejects.toMatchObject({ code: 'untrusted_signer' });
    await expect(robotTrain(ctx, { ...base, roundConfig: file('tampered.bin') })).rejects.toMatchObject({ code: 'bad_signature' });
    await expect(robotTrain(ctx, { ...base, roundConfig: file('imitation.bin'), stage: 'on_policy_rl' })).rejects.toMatchObject({ code: 'stage_mismatch' });
    await expect(robotTrain(ctx, { ...base, roundConfig: file('other-fleet.bin') })).rejects.toMatchObject({ code: 'integrity' });
    await expect(robotTrain(ctx, { ...base, stage: 'reinforce_everything' })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(robotTrain(ctx, { ...base, roundConfig: file('on-policy.bin'), round: 'round-stages-1' })).rejects.toMatchObject({ code: 'invalid_argument' });
    // A robot home without a pinned officer key cannot verify a round config at all.
    const bare = createContext({ home: file('bare-home'), json: true, quiet: true });
    await expect(robotTrain(bare, { ...base, roundConfig: file('on-policy.bin') })).rejects.toMatchObject({ code: 'not_enrolled' });
    expect(await exists(out)).toBe(false);
  });

  it('trains on-policy (PPO) under a valid officer-signed approval and records it', async () => {
    const out = file('on-policy');
    const res = await robotTrain(ctx, { out, roundConfig: file('on-policy.bin'), episodes: 4, iterations: 2, seed });
    expect(res).toMatchObject({ stage: 'on_policy_rl', roundId: 'round-stages-1', method: 'ppo_clip', episodes: 8, approval: { reason: REASON } });
    const trained = await loadAdapterDir(out);
    expect(trained.config.tensorguard_training_stage).toBe('on_policy_rl');
    expect(trained.config.tensorguard_training).toMatchObject({ method: 'ppo_clip', iterations: 2, onPolicyApproval: { reason: REASON } });
    expect((res.training as { klToStart: number }).klToStart).toBeGreaterThan(0);
    expect(trained.tensors.get('base_model.model.mean_head.lora_B.weight')!.some((v) => v !== 0)).toBe(true);
  });

  it('offline RL writes an adapter that changes the policy', async () => {
    const out = file('offline');
    const res = await robotTrain(ctx, { out, stage: 'offline_rl', site: 'site-c', episodes: 6, steps: 40, seed });
    expect(res).toMatchObject({ stage: 'offline_rl', method: 'advantage_weighted_regression', episodes: 6, optimizerSteps: 40, roundId: null });
    expect(res.transitions as number).toBeGreaterThan(100);
    const weights = loadPolicyWeights({ bytes: new Uint8Array(await readFile(join(MODELS_DIR, REFERENCE_POLICY.weightsFile))) });
    const start = await loadAdapterDir(join(MODELS_DIR, REFERENCE_POLICY.adapterDir));
    const trained = await loadAdapterDir(out);
    expect(trained.config.tensorguard_training_stage).toBe('offline_rl');
    const rng = new SeededRandom(seedFrom({ label: 'robot-train-stages.test/obs' }));
    const obs = Float32Array.from({ length: 16 * weights.obsDim }, () => rng.normal() * 0.5);
    const before = policyForward({ weights, lora: loraFromAdapter({ adapter: start, weights }), obs, batch: 16 }).mean;
    const after = policyForward({ weights, lora: loraFromAdapter({ adapter: trained, weights }), obs, batch: 16 }).mean;
    let diff = 0;
    for (let i = 0; i < before.length; i++) diff = Math.max(diff, Math.abs(after[i]! - before[i]!));
    expect(diff).toBeGreaterThan(1e-3);
  });
});
