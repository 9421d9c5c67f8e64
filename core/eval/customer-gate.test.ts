// Customer evaluation models: the contract read from a real onnxruntime-web session (valid models with
// other weights and sizes pass, a model with a renamed input is refused naming it), the scenario set
// schema, the encrypted scenario set round trip and its refusals (tampered ciphertext, swapped model,
// foreign signer), and the gate run with the customer's model and sets through the reference gate's code.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { adapterSchema } from '../peft/adapter.ts';
import { adapterFromLora, initialLora, loadPolicyWeights, POLICY_LAYERS } from '../policy/mlp.ts';
import { REFERENCE_POLICY } from '../policy/reference.ts';
import { SeededRandom, seedFrom } from '../sim/random.ts';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { DecryptionError, FormatError, IntegrityError, SignatureInvalidError, TensorGuardError, UntrustedSignerError } from '../errors.ts';
import { bytesToHex } from '../bytes.ts';
import { releaseGateOf } from './reference-gate.ts';
import type { OrtModuleLike } from './runners.ts';
import { EvalModelContractError, customerGateApplicability, evalModelContract, validateEvalModel } from './customer-contract.ts';
import { parseScenarioSetDocument, encodeScenarioSetDocument } from './customer-scenarios.ts';
import { buildCustomerTestModel, renameOnnxValue, testScenarioSetDocument } from './customer-test-models.ts';
import { runCustomerGateOnnx } from './customer-gate.ts';
import {
  buildSignedEvalModel,
  decodeEvalModelRecord,
  deriveOfficerKemKeyPair,
  encodeEvalModelRecord,
  openEvalModelRecord,
  openScenarioSet,
  verifyEvalModelBlobs,
} from '../records/eval-model.ts';

ort.env.wasm.numThreads = 1;
const ortLike = ort as unknown as OrtModuleLike;
const MODELS = new URL('../../static/models/', import.meta.url);
const weights = loadPolicyWeights({ bytes: new Uint8Array(readFileSync(new URL(REFERENCE_POLICY.weightsFile, MODELS))) });
const customerModel = buildCustomerTestModel({ label: 'unit', base: weights, noise: 0.01 });
const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
const attestRoot = new Uint8Array(32).fill(7);
const kem = deriveOfficerKemKeyPair({ attestRoot });

const deployed = adapterFromLora({ lora: initialLora({ weights, r: 4, alpha: 8, seed: seedFrom({ label: 'cg-a' }) }), r: 4, alpha: 8 });
const candidateLora = initialLora({ weights, r: 4, alpha: 8, seed: seedFrom({ label: 'cg-a' }) });
const rng = new SeededRandom(seedFrom({ label: 'cg-b' }));
for (const n of POLICY_LAYERS) for (let i = 0; i < candidateLora[n]!.B.length; i++) candidateLora[n]!.B[i] = 0.02 * rng.normal();
const candidate = adapterFromLora({ lora: candidateLora, r: 4, alpha: 8 });

async function register(model = customerModel, document = testScenarioSetDocument({ label: 'unit', count: 2 })) {
  const contract = await validateEvalModel({ ort: ortLike, model });
  return buildSignedEvalModel({ modelId: 'em-1', orgId: 'org-1', fleetId: 'fleet-1', name: 'ACME line 3', model, contract, document, recipients: [kem.publicKey], signer: officer, createdAt: 1_700_000_000_000 });
}

describe('evaluation model contract (onnxruntime-web session metadata)', () => {
  it('accepts models built like the reference policy, other weights and other hidden sizes', async () => {
    const c = await validateEvalModel({ ort: ortLike, model: customerModel });
    expect(c).toEqual({
      obsDim: 18,
      actDim: 3,
      logStdPerState: false,
      modules: [
        { name: 'fc1', inFeatures: 18, outFeatures: 64 },
        { name: 'fc2', inFeatures: 64, outFeatures: 64 },
        { name: 'mean_head', inFeatures: 64, outFeatures: 3 },
      ],
    });
    const small = await validateEvalModel({ ort: ortLike, model: buildCustomerTestModel({ label: 'small', hidden: 32 }) });
    expect(small.modules.find((m) => m.name === 'fc2')).toEqual({ name: 'fc2', inFeatures: 32, outFeatures: 32 });
    // The round's adapter (hidden 64) does not fit a hidden-32 model: not applicable, with the module named.
    const fit = customerGateApplicability({ contract: small, tensors: adapterSchema({ adapter: candidate }) });
    expect(fit.applicable).toBe(false);
    expect(!fit.applicable && fit.reason).toMatch(/module fc1: lora_A \[4,18\] \/ lora_B \[64,4\] do not fit/);
    expect(customerGateApplicability({ contract: c, tensors: adapterSchema({ adapter: candidate }) })).toEqual({ applicable: true });
    expect(customerGateApplicability({ contract: c, tensors: [{ name: 'base_model.model.layers.0.q_proj.lora_A.weight', shape: [4, 18] }] }).applicable).toBe(false);
  });

  it('refuses a model with a wrong input name, naming the input', async () => {
    const wrong = renameOnnxValue({ model: customerModel, from: 'obs', to: 'obz' });
    const err = await validateEvalModel({ ort: ortLike, model: wrong }).catch((e) => e);
    expect(err).toBeInstanceOf(EvalModelContractError);
    expect(err.code).toBe('eval_model_contract');
    expect(err.message).toMatch(/input "obz" is not part of the contract/);
    expect(err.details.mismatches).toContain('input "obs" [batch, 18] is missing');
  });

  it('refuses bytes onnxruntime cannot load, wrong shapes, extra outputs and missing LoRA inputs', async () => {
    await expect(validateEvalModel({ ort: ortLike, model: new Uint8Array([1, 2, 3]) })).rejects.toThrow(/cannot load/);
    const io = (name: string, shape: Array<number | string>) => ({ name, isTensor: true, type: 'float32', shape });
    const good = {
      inputs: [io('obs', ['batch', 18]), io('base_model.model.fc1.lora_A.weight', ['r', 18]), io('base_model.model.fc1.lora_B.weight', [8, 'r']), io('fc1.lora_scaling', [1])],
      outputs: [io('mean', ['batch', 3]), io('log_std', ['batch', 3])],
    };
    expect(evalModelContract(good).logStdPerState).toBe(true);
    const bad = (patch: Partial<typeof good>) => {
      try {
        evalModelContract({ ...good, ...patch });
      } catch (e) {
        expect(e).toBeInstanceOf(EvalModelContractError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ inputs: [io('obs', ['batch', 17]), ...good.inputs.slice(1)] })).toMatch(/"obs" must be \[batch, 18\]/);
    expect(bad({ inputs: good.inputs.slice(0, 3) })).toMatch(/module fc1: input "fc1.lora_scaling" missing/);
    expect(bad({ inputs: [io('obs', ['batch', 18])] })).toMatch(/no LoRA inputs/);
    expect(bad({ outputs: [...good.outputs, io('value', ['batch', 1])] })).toMatch(/output "value" is not part of the contract/);
    expect(bad({ outputs: [io('mean', ['batch', 2]), good.outputs[1]!] })).toMatch(/"mean" must be \[batch, 3\]/);
    expect(bad({ inputs: [good.inputs[0]!, io('base_model.model.fc1.lora_A.weight', [4, 18]), ...good.inputs.slice(2)] })).toMatch(/rank r .* must be one symbolic dimension/);
    expect(bad({ inputs: [{ name: 'obs', isTensor: true, type: 'int64', shape: ['batch', 18] }, ...good.inputs.slice(1)] })).toMatch(/float32/);
  });
});

describe('scenario set schema', () => {
  it('validates with zod and names the field', () => {
    const doc = testScenarioSetDocument({ label: 'schema', count: 1 });
    expect(parseScenarioSetDocument({ json: encodeScenarioSetDocument({ document: doc }) })).toEqual(JSON.parse(JSON.stringify(doc)));
    const broken = structuredClone(doc) as unknown as { sets: Array<{ scenarios: Array<Record<string, unknown>> }> };
    broken.sets[0]!.scenarios[0]!.maxSteps = 1e9;
    expect(() => parseScenarioSetDocument({ json: broken })).toThrow(/sets\.0\.scenarios\.0\.maxSteps/);
    const dup = structuredClone(doc);
    dup.sets[1]!.name = dup.sets[0]!.name;
    expect(() => parseScenarioSetDocument({ json: dup })).toThrow(/used twice/);
    expect(() => parseScenarioSetDocument({ json: '{"format":"x"' })).toThrow(FormatError);
    expect(() => parseScenarioSetDocument({ json: { ...doc, extra: 1 } })).toThrow(FormatError);
  });
});

describe('evaluation model record and encrypted scenario set', () => {
  it('round-trips: signed record, ciphertext only on the wire, decrypts with the officer KEM key', async () => {
    const doc = testScenarioSetDocument({ label: 'unit', count: 2 });
    const reg = await register(customerModel, doc);
    const opened = openEvalModelRecord({ bytes: reg.signed, trustedKeys: [officer.publicKey] });
    expect(bytesToHex(opened.fingerprint)).toBe(bytesToHex(reg.fingerprint));
    verifyEvalModelBlobs({ record: opened.record, model: customerModel, sealed: reg.sealed });
    // The sealed bytes do not contain the plaintext.
    expect(Buffer.from(reg.sealed).includes(Buffer.from('line-nominal'))).toBe(false);
    expect(openScenarioSet({ record: opened.record, sealed: reg.sealed, kem })).toEqual(JSON.parse(JSON.stringify(doc)));
    // The same officer's key derives the same KEM key (a backup restores it); another officer's does not.
    const other = deriveOfficerKemKeyPair({ attestRoot: new Uint8Array(32).fill(8) });
    expect(() => openScenarioSet({ record: opened.record, sealed: reg.sealed, kem: other })).toThrow(DecryptionError);
  });

  it('refuses a tampered ciphertext, a swapped model and a foreign or broken signature', async () => {
    const reg = await register();
    const { record } = openEvalModelRecord({ bytes: reg.signed, trustedKeys: [officer.publicKey] });
    const tampered = new Uint8Array(reg.sealed);
    tampered[40] = tampered[40]! ^ 1;
    // The server swapped the ciphertext: not the signed SHA-256.
    expect(() => openScenarioSet({ record, sealed: tampered, kem })).toThrow(IntegrityError);
    // A record whose hash was made to match the altered ciphertext (no signature check): GCM refuses it.
    const forged = { ...record, scenariosSha256: new Uint8Array(await crypto.subtle.digest('SHA-256', tampered)) };
    expect(() => openScenarioSet({ record: forged, sealed: tampered, kem })).toThrow(DecryptionError);
    // Swapped model bytes.
    expect(() => verifyEvalModelBlobs({ record, model: buildCustomerTestModel({ label: 'other', base: weights }) })).toThrow(IntegrityError);
    // Signed by another officer key: refused against the pinned key.
    const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const contract = await validateEvalModel({ ort: ortLike, model: customerModel });
    const foreign = buildSignedEvalModel({ modelId: 'em-1', orgId: 'org-1', fleetId: 'fleet-1', name: 'x', model: customerModel, contract, document: testScenarioSetDocument({ label: 'unit', count: 1 }), recipients: [kem.publicKey], signer: mallory, createdAt: 1 });
    expect(() => openEvalModelRecord({ bytes: foreign.signed, trustedKeys: [officer.publicKey] })).toThrow(UntrustedSignerError);
    // A signature of another record spliced into this one.
    const spliced = new Uint8Array(reg.signed);
    spliced.set(foreign.signed.subarray(foreign.signed.length - 3309), spliced.length - 3309);
    expect(() => openEvalModelRecord({ bytes: spliced, trustedKeys: [officer.publicKey] })).toThrow(SignatureInvalidError);
    // Trailing bytes and unknown versions do not decode.
    const body = openEvalModelRecord({ bytes: reg.signed }).record;
    expect(body.name).toBe('ACME line 3');
    expect(() => openEvalModelRecord({ bytes: new Uint8Array([...reg.signed, 0]) })).toThrow(FormatError);
    expect(() => decodeEvalModelRecord({ bytes: new Uint8Array([0x54, 0x47, 0x40, 2]) })).toThrow();
  });
});

describe('evaluation model record parser', () => {
  it('answers mutated and truncated bodies only with typed errors', async () => {
    const reg = await register();
    const body = encodeEvalModelRecord({ record: reg.record });
    const r = new SeededRandom(seedFrom({ label: 'eval-model-mutations' }));
    let decoded = 0;
    for (let i = 0; i < 400; i++) {
      const m = new Uint8Array(body);
      const n = 1 + Math.floor(r.uniform(0, 3));
      for (let k = 0; k < n; k++) m[Math.floor(r.uniform(0, m.length))] = Math.floor(r.uniform(0, 256));
      const cut = i % 4 === 0 ? m.subarray(0, Math.floor(r.uniform(0, m.length))) : m;
      try {
        decodeEvalModelRecord({ bytes: cut });
        decoded++;
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(TensorGuardError);
      }
    }
    expect(decoded).toBeLessThan(400);
  });
});

describe('the gate with a customer model', () => {
  it('runs the reference gate code on the customer sets and names the model in the report and the release gate', async () => {
    const doc = testScenarioSetDocument({ label: 'gate', count: 3 });
    const reg = await register(customerModel, doc);
    const { record, fingerprint } = openEvalModelRecord({ bytes: reg.signed, trustedKeys: [officer.publicKey] });
    const document = openScenarioSet({ record, sealed: reg.sealed, kem });
    const report = await runCustomerGateOnnx({
      ort: ortLike, model: customerModel, record, fingerprint, document, roundId: 'r-1',
      tensors: adapterSchema({ adapter: candidate }), deployed, candidate, candidateAdapterSha256: 'cd',
    });
    expect(report.applicable).toBe(true);
    expect(report.evaluator).toBe(`customer-model/v1:${bytesToHex(fingerprint)}`);
    expect(report.evaluationModel).toMatchObject({ id: 'em-1', fingerprint: bytesToHex(fingerprint), scenarioSetName: 'test set gate' });
    expect(report.evaluation!.sets.map((s) => [s.name, s.role, s.count])).toEqual([
      ['line-nominal', 'nominal', 3],
      ['line-site-b', 'site', 3],
      ['line-ood', 'ood', 3],
    ]);
    expect(report.counts).toEqual({ nominal: 3, site: 3, ood: 3 });
    expect(report.verdict!.checks.some((c) => c.name === 'ood_robustness' && c.set === 'line-ood')).toBe(true);
    expect(report.metrics.find((m) => m.name === 'kl_divergence')!.value).toBeGreaterThan(0);
    const gate = releaseGateOf({ report, override: report.verdict!.pass ? null : { reason: 'test' } });
    expect(gate.evaluator).toContain(bytesToHex(fingerprint));
    // A model whose bytes differ from the signed contract's model (another size) is refused before running.
    const small = buildCustomerTestModel({ label: 'small', hidden: 32 });
    await expect(
      runCustomerGateOnnx({ ort: ortLike, model: small, record, fingerprint, document, roundId: 'r-1', tensors: adapterSchema({ adapter: candidate }), deployed, candidate, candidateAdapterSha256: 'cd' }),
    ).rejects.toThrow(IntegrityError);
  }, 60_000);
});
