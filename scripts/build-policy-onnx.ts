// Builds the reference policy in static/models/ from a fixed seed (run: npx tsx scripts/build-policy-onnx.ts).
//
//   1. demonstrations: the scripted expert (core/train/expert.ts) on nominal training scenarios
//   2. behaviour cloning of the whole MLP (core/train/bc.ts), then DAgger iterations: roll out the
//      learner mixed with the expert, label the visited states with the expert's action, retrain
//   3. log_std := log RMS residual of the mean on all demonstrations
//   4. held-out evaluation (core/eval/evaluate.ts) on nominal, per-site and OOD scenario sets
//   5. writes reference-policy.safetensors (base weights), reference-policy.onnx (the graph, LoRA as
//      inputs: core/policy/onnx.ts), reference-policy.json (shapes, I/O names, training and evaluation
//      summary, SHA-256 of the files) and reference-policy-adapter/ (PEFT's initial adapter: the
//      template of a first round). No timestamps: a rebuild on the same Node version is byte-identical.
// `--check` only rebuilds the ONNX file from the committed safetensors and compares bytes.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { scenarioSet, siteNames } from '../core/sim/scenario.ts';
import { deriveSeed } from '../core/sim/random.ts';
import { initPolicyWeights, initialLora, adapterFromLora, loadPolicyWeights, policyForward, savePolicyWeights, POLICY_LAYERS } from '../core/policy/mlp.ts';
import { buildPolicyOnnx, ONNX_INPUT_OBS, ONNX_OPSET, ONNX_OUTPUT_LOG_STD, ONNX_OUTPUT_MEAN, onnxLoraInputs } from '../core/policy/onnx.ts';
import { ADAPTER_SEED, BUILD_SEED, EVALUATION_SEED, REFERENCE_POLICY } from '../core/policy/reference.ts';
import { collectDemonstrations, concatDatasets } from '../core/train/demos.ts';
import { trainBasePolicy, fitLogStd } from '../core/train/bc.ts';
import { evaluatePolicy, type ScenarioSetInput } from '../core/eval/evaluate.ts';
import { tsPolicyRunner } from '../core/eval/runners.ts';
import { savePeftAdapter } from '../core/peft/adapter.ts';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'static', 'models');
const TRAIN_EPISODES = 300;
const DAGGER_ITERATIONS = 4;
const BC_STEPS = 3000;
const EXPERT_PROBABILITY = 0.3;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const log = (m: string) => process.stderr.write(`${m}\n`);

export function heldOutSets(options: { nominal: number; site: number; ood: number }): ScenarioSetInput[] {
  return [
    { name: 'nominal', role: 'nominal', scenarios: scenarioSet({ name: 'nominal', seed: EVALUATION_SEED, count: options.nominal }) },
    ...siteNames().map((s) => ({ name: `site:${s}`, role: 'site' as const, scenarios: scenarioSet({ name: `site:${s}`, seed: EVALUATION_SEED, count: options.site }) })),
    { name: 'ood', role: 'ood', scenarios: scenarioSet({ name: 'ood', seed: EVALUATION_SEED, count: options.ood }) },
  ];
}

async function check(): Promise<void> {
  const weights = loadPolicyWeights({ bytes: new Uint8Array(await readFile(join(OUT, REFERENCE_POLICY.weightsFile))) });
  const meta = JSON.parse(await readFile(join(OUT, REFERENCE_POLICY.metadataFile), 'utf8'));
  const rebuilt = buildPolicyOnnx({ weights, metadata: meta.onnxMetadata });
  const committed = new Uint8Array(await readFile(join(OUT, REFERENCE_POLICY.onnxFile)));
  if (sha256(rebuilt) !== sha256(committed)) throw new Error('reference-policy.onnx does not match the ONNX built from reference-policy.safetensors');
  log(`ok: ${REFERENCE_POLICY.onnxFile} = build(${REFERENCE_POLICY.weightsFile}) (sha256 ${sha256(committed)})`);
}

async function build(): Promise<void> {
  const started = performance.now();
  const weights = initPolicyWeights({ seed: deriveSeed({ seed: BUILD_SEED, label: 'init' }), hidden: REFERENCE_POLICY.hidden });
  const learner = (o: Float32Array) => policyForward({ weights, obs: o, batch: 1 }).mean;
  let dataset = collectDemonstrations({ scenarios: scenarioSet({ name: 'nominal', seed: deriveSeed({ seed: BUILD_SEED, label: 'demos/0' }), count: TRAIN_EPISODES }) }).dataset;
  const stages: Array<Record<string, unknown>> = [];
  for (let it = 0; it <= DAGGER_ITERATIONS; it++) {
    if (it > 0) {
      const more = collectDemonstrations({
        scenarios: scenarioSet({ name: 'nominal', seed: deriveSeed({ seed: BUILD_SEED, label: `demos/${it}` }), count: TRAIN_EPISODES }),
        learner,
        expertProbability: EXPERT_PROBABILITY,
        seed: deriveSeed({ seed: BUILD_SEED, label: `mix/${it}` }),
      });
      dataset = concatDatasets({ datasets: [dataset, more.dataset] });
      const learnerSuccess = more.results.filter((r) => r.success).length / more.results.length;
      log(`dagger ${it}: ${more.dataset.count} relabelled states (mixed rollouts succeeded ${(100 * learnerSuccess).toFixed(0)} %)`);
    }
    const t = performance.now();
    const r = trainBasePolicy({ weights, dataset, steps: BC_STEPS, batchSize: 128, learningRate: it === 0 ? 3e-3 : 2e-3, seed: deriveSeed({ seed: BUILD_SEED, label: `train/${it}` }) });
    stages.push({ iteration: it, samples: dataset.count, initialLoss: r.initialLoss, finalLoss: r.finalLoss, steps: r.steps });
    log(`train ${it}: ${dataset.count} samples, loss ${r.initialLoss.toFixed(4)} -> ${r.finalLoss.toFixed(4)} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  }
  fitLogStd({ weights, dataset });

  const report = await evaluatePolicy({ sets: heldOutSets({ nominal: 200, site: 100, ood: 201 }), candidate: tsPolicyRunner({ weights }) });
  const evaluation = Object.fromEntries(report.sets.map((s) => [s.name, { scenarios: s.count, successRate: s.successRate, violationsPerRollout: s.violationsPerRollout, violations: s.violations, humanContacts: s.humanContacts, peakForceRatio: s.peakForceRatio }]));
  log(`held-out success: ${report.sets.map((s) => `${s.name} ${(100 * s.successRate).toFixed(1)} %`).join(', ')}`);

  const onnxMetadata = { 'tensorguard.policy': 'reference-policy/v1', 'tensorguard.obs_dim': String(weights.obsDim), 'tensorguard.act_dim': String(weights.actDim), 'tensorguard.hidden': String(weights.hidden) };
  const weightBytes = savePolicyWeights({ weights, metadata: { 'tensorguard.policy': 'reference-policy/v1' } });
  const onnx = buildPolicyOnnx({ weights, metadata: onnxMetadata });
  const lora = initialLora({ weights, r: REFERENCE_POLICY.loraRank, alpha: REFERENCE_POLICY.loraAlpha, seed: ADAPTER_SEED });
  const adapter = adapterFromLora({ lora, r: REFERENCE_POLICY.loraRank, alpha: REFERENCE_POLICY.loraAlpha, extraConfig: { tensorguard_training_stage: 'none' } });
  const adapterFiles = savePeftAdapter({ adapter });
  await mkdir(join(OUT, REFERENCE_POLICY.adapterDir), { recursive: true });
  await writeFile(join(OUT, REFERENCE_POLICY.weightsFile), weightBytes);
  await writeFile(join(OUT, REFERENCE_POLICY.onnxFile), onnx);
  for (const [name, bytes] of Object.entries(adapterFiles)) await writeFile(join(OUT, REFERENCE_POLICY.adapterDir, name), bytes);
  const metadata = {
    format: 'tensorguard-reference-policy/v1',
    model: { obsDim: weights.obsDim, hidden: weights.hidden, actDim: weights.actDim, activation: 'tanh', layers: POLICY_LAYERS, actionHead: 'gaussian, state-independent log_std' },
    onnx: {
      file: REFERENCE_POLICY.onnxFile,
      sha256: sha256(onnx),
      irVersion: 8,
      opset: ONNX_OPSET,
      inputs: [ONNX_INPUT_OBS, ...POLICY_LAYERS.flatMap((l) => Object.values(onnxLoraInputs(l)))],
      outputs: [ONNX_OUTPUT_MEAN, ONNX_OUTPUT_LOG_STD],
    },
    onnxMetadata,
    weights: { file: REFERENCE_POLICY.weightsFile, sha256: sha256(weightBytes) },
    adapter: { dir: REFERENCE_POLICY.adapterDir, r: REFERENCE_POLICY.loraRank, loraAlpha: REFERENCE_POLICY.loraAlpha, safetensorsSha256: sha256(adapterFiles['adapter_model.safetensors']) },
    training: { method: 'behaviour cloning + DAgger on the scripted expert', episodesPerIteration: TRAIN_EPISODES, daggerIterations: DAGGER_ITERATIONS, expertProbability: EXPERT_PROBABILITY, stepsPerIteration: BC_STEPS, stages, logStd: Array.from(weights.logStd) },
    heldOutEvaluation: evaluation,
  };
  await writeFile(join(OUT, REFERENCE_POLICY.metadataFile), JSON.stringify(metadata, null, 2) + '\n');
  log(`wrote ${OUT}: onnx ${onnx.length} B (sha256 ${metadata.onnx.sha256}), ${Math.round((performance.now() - started) / 1000)} s`);
}

if (process.argv.includes('--check')) await check();
else await build();
