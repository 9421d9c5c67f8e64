// Test fixtures for customer evaluation models (used by unit, integration and e2e tests, never by product
// code): ONNX files from the reference policy builder (core/policy/onnx.ts) with other weights, and a
// byte-level rename of an ONNX value name so a test can produce a model that loads but breaks the contract.
import { buildPolicyOnnx } from '../policy/onnx.ts';
import { POLICY_LAYERS, initPolicyWeights, type PolicyWeights } from '../policy/mlp.ts';
import { SeededRandom, seedFrom } from '../sim/random.ts';
import { bytesToHex, toBase64, utf8ToBytes } from '../bytes.ts';
import { randomBytes } from '../random.ts';
import { generateKemKeyPair } from '../crypto/kem.ts';
import { buildSignedEvalModel } from '../records/eval-model.ts';
import type { EvalModelContract } from './customer-contract.ts';
import { scenarioSet } from '../sim/scenario.ts';
import { SCENARIO_SET_FORMAT, type ScenarioSetDocument } from './customer-scenarios.ts';

/**
 * A customer model: `base` weights (e.g. the shipped reference policy) with seeded Gaussian noise of
 * standard deviation `noise` on every weight, or fresh weights of `hidden` units when no base is given.
 */
export function buildCustomerTestModel(options: { label: string; base?: PolicyWeights; noise?: number; hidden?: number }): Uint8Array {
  const seed = seedFrom({ label: `customer-model/${options.label}` });
  let weights: PolicyWeights;
  if (options.base) {
    const rng = new SeededRandom(seed);
    const b = options.base;
    const noise = options.noise ?? 0.01;
    const layers = {} as PolicyWeights['layers'];
    for (const n of POLICY_LAYERS) {
      const l = b.layers[n];
      const weight = new Float32Array(l.weight);
      for (let i = 0; i < weight.length; i++) weight[i] = weight[i]! + noise * rng.normal();
      layers[n] = { ...l, weight, bias: new Float32Array(l.bias) };
    }
    weights = { ...b, layers, logStd: new Float32Array(b.logStd) };
  } else weights = initPolicyWeights({ seed, hidden: options.hidden ?? 32 });
  return buildPolicyOnnx({ weights, metadata: { 'tensorguard.policy': `customer/${options.label}` } });
}

/**
 * Renames every protobuf string field equal to `from` (length-prefixed) to `to` of the same length: node
 * inputs/outputs and value infos together, so the graph stays valid and only the name changes.
 */
export function renameOnnxValue(options: { model: Uint8Array; from: string; to: string }): Uint8Array {
  const from = utf8ToBytes(options.from);
  const to = utf8ToBytes(options.to);
  if (from.length !== to.length || from.length > 127) throw new RangeError('"to" expected the same length as "from" (< 128 bytes)');
  const out = new Uint8Array(options.model);
  const n = from.length;
  for (let i = 1; i + n <= out.length; i++) {
    if (out[i - 1] !== n) continue;
    let match = true;
    for (let j = 0; j < n && match; j++) match = out[i + j] === from[j];
    if (match) out.set(to, i);
  }
  return out;
}

/** A small scenario set document from the simulator's own generators (nominal, one site, OOD). */
export function testScenarioSetDocument(options: { label: string; count?: number }): ScenarioSetDocument {
  const seed = seedFrom({ label: `customer-scenarios/${options.label}` });
  const count = options.count ?? 3;
  return {
    format: SCENARIO_SET_FORMAT,
    name: `test set ${options.label}`,
    sets: [
      { name: 'line-nominal', role: 'nominal', scenarios: scenarioSet({ name: 'nominal', seed, count }) },
      { name: 'line-site-b', role: 'site', scenarios: scenarioSet({ name: 'site:site-b', seed, count }) },
      { name: 'line-ood', role: 'ood', scenarios: scenarioSet({ name: 'ood', seed, count }) },
    ],
  } as ScenarioSetDocument;
}

/** The contract of the reference policy's layout (what buildCustomerTestModel with the reference weights gives). */
export const REFERENCE_LAYOUT_CONTRACT: EvalModelContract = Object.freeze({
  obsDim: 18,
  actDim: 3,
  logStdPerState: false,
  modules: [
    { name: 'fc1', inFeatures: 18, outFeatures: 64 },
    { name: 'fc2', inFeatures: 64, outFeatures: 64 },
    { name: 'mean_head', inFeatures: 64, outFeatures: 3 },
  ],
}) as EvalModelContract;

/**
 * A complete registration body for POST /v1/evaluation-models with arbitrary model bytes (the server does
 * not run the model; the officer validates it before signing). For route and authorization tests.
 */
export function fakeEvalModelRegistration(options: {
  signer: { publicKey: Uint8Array; secretKey: Uint8Array };
  orgId: string;
  fleetId: string;
  now: number;
  modelId?: string;
  name?: string;
  model?: Uint8Array;
  recipient?: Uint8Array;
}) {
  const modelId = options.modelId ?? `em-${bytesToHex(randomBytes(8))}`;
  const model = options.model ?? randomBytes(512);
  const built = buildSignedEvalModel({
    modelId,
    orgId: options.orgId,
    fleetId: options.fleetId,
    name: options.name ?? 'line evaluation',
    model,
    contract: REFERENCE_LAYOUT_CONTRACT,
    document: testScenarioSetDocument({ label: modelId, count: 1 }),
    recipients: [options.recipient ?? generateKemKeyPair().publicKey],
    signer: options.signer,
    createdAt: options.now,
  });
  return { modelId, model, ...built, body: { record: toBase64(built.signed), model: toBase64(model), scenarios: toBase64(built.sealed) } };
}
