// The HE benchmark: wire bytes per parameter, the robot pipeline's throughput, and aggregation GB/s for
// our WASM path against node-seal's load+add and a plain memory copy, all measured in one run.
// Prints one JSON document. Compare ratios within a run; these machines are noisy.
import { generateKeyPair, createEncryptor } from '../core/he/seal.ts';
import { PARAM_SET_ID, getParamSet, packingLayout, ciphertextCount } from '../core/he/params.ts';
import { randomBytes, UniformSource } from '../core/random.ts';
import { generateSigningKeyPair } from '../core/crypto/sign.ts';
import { buildUpdatePackage } from '../core/records/update-package.ts';
import type { RoundConfig } from '../core/records/round-config.ts';
import { encodeContribution } from '../core/round/robot.ts';
import { planRound } from '../core/round/plan.ts';
import { benchAggregation } from './he-aggregate.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const params = Number(args.get('params') ?? 1_000_000);
const contributors = Number(args.get('contributors') ?? 100);

function wireBytesPerParam(fieldBits: number, maxContributors: number, valueCount = 1_000_000) {
  const ps = getParamSet({ id: PARAM_SET_ID });
  const layout = packingLayout({ fieldBits, maxContributors, encoding: 'offset' });
  const cts = ciphertextCount({ valueCount, layout });
  return { fieldBits, maxContributors, fieldsPerSlot: layout.fieldsPerSlot, bytesPerParam: (cts * ps.ciphertextBytes) / valueCount };
}

/** `kernel: 'seal'`: SEAL's encrypt() alone, the path before core/he/encrypt-kernel.ts (for the ratio). */
async function robotPipeline(mode: 'off' | 'local' | 'distributed', kernel?: 'seal') {
  const he = await generateKeyPair({ paramSetId: PARAM_SET_ID });
  const encryptor = await createEncryptor({ publicKey: he.publicKey, paramSetId: PARAM_SET_ID, kernel });
  const robot = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
  const r = 16;
  const d = Math.round(params / (2 * r));
  const tensors = [
    { name: 'base_model.model.x.lora_A.weight', shape: [r, d] },
    { name: 'base_model.model.x.lora_B.weight', shape: [d, r] },
  ];
  const dp = mode === 'off' ? { mode, clip: 0, noiseMultiplier: 0 } : { mode, clip: 1, noiseMultiplier: 1 };
  const maskSeed = randomBytes(32);
  const plan = planRound({ tensors, freezeA: false, maskSeed, sparsity: 1, maxContributors: 1024, fieldBits: mode === 'distributed' ? 24 : 7, dp });
  const config: RoundConfig = {
    roundId: 'bench', orgId: 'o', fleetId: 'f', createdAt: 0, deadline: 0, quorum: 100, maxContributors: 1024, keyVersion: 1,
    heKeyFingerprint: randomBytes(32), baseAdapterSha256: randomBytes(32), tensors, freezeA: false, aSeed: randomBytes(32), maskSeed, sparsity: 1,
    quant: { fieldBits: plan.fieldBits, scale: plan.scale, encoding: plan.encoding },
    dp: { ...dp, delta: mode === 'off' ? 0 : 1e-5, epsilonBudget: mode === 'off' ? 0 : 1e9 },
    valueCount: plan.valueCount, ciphertextCount: plan.ciphertextCount,
  };
  const random = new UniformSource();
  const delta = new Float32Array(plan.trainableLength);
  for (let i = 0; i < delta.length; i++) delta[i] = (random.next() - 0.5) * 0.01;
  encodeContribution({ config, delta: delta.subarray(0, delta.length), encryptor, random }); // warm-up
  const t0 = performance.now();
  const prepared = encodeContribution({ config, delta, encryptor, random });
  const t1 = performance.now();
  const pkg = buildUpdatePackage({
    meta: { roundId: 'bench', robotId: 'r', fleetId: 'f', keyVersion: 1, roundConfigFingerprint: randomBytes(32), valueCount: prepared.valueCount, ciphertextCount: prepared.ciphertextCount, createdAt: 0 },
    ciphertexts: prepared.ciphertexts,
    secretKey: robot.secretKey,
    publicKey: robot.publicKey,
  });
  const t2 = performance.now();
  encryptor.destroy();
  const seconds = (t2 - t0) / 1000;
  return {
    mode,
    encryptPath: encryptor.path,
    params: plan.trainableLength,
    fieldBits: plan.fieldBits,
    fieldsPerSlot: plan.layout.fieldsPerSlot,
    packageBytes: pkg.bytes.length,
    wireBytesPerParam: pkg.bytes.length / plan.trainableLength,
    stagesMs: { ...Object.fromEntries(Object.entries(prepared.timings).map(([k, v]) => [k, Math.round(v)])), hash_and_sign: Math.round(t2 - t1) },
    mParamsPerSecond: plan.trainableLength / seconds / 1e6,
  };
}

const result = {
  benchmark: 'he',
  paramSet: PARAM_SET_ID,
  node: process.version,
  wire: {
    exactSum1000Contributors: wireBytesPerParam(7, 1024),
    default16Bit64Contributors: wireBytesPerParam(16, 64),
    target: 'DESIGN.md: <= 16 B/param first bar, <= 4 B/param goal',
  },
  robotPipeline: [await robotPipeline('off'), await robotPipeline('local'), await robotPipeline('distributed')],
  // The same DP-off pipeline with SEAL's encrypt() doing the plaintext scaling (before encrypt-kernel.ts).
  robotPipelineSealEncrypt: await robotPipeline('off', 'seal'),
  aggregation: await benchAggregation({ contributors, ciphertexts: Math.ceil(params / 8192) }),
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
