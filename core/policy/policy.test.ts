// The reference policy: the protobuf encoder, PEFT adapter mapping, LoRA forward = merged weights, and
// the committed ONNX model: rebuilt byte-for-byte from the committed weights, and computing what the
// TypeScript forward pass computes when onnxruntime-web (WASM) runs it with LoRA matrices as inputs.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-web';
import { ProtoWriter } from './protobuf.ts';
import { adapterFromLora, effectiveWeight, initPolicyWeights, initialLora, loadPolicyWeights, loraFromAdapter, policyForward, POLICY_LAYERS, savePolicyWeights, type PolicyLora } from './mlp.ts';
import { buildPolicyOnnx } from './onnx.ts';
import { REFERENCE_POLICY } from './reference.ts';
import { loadPeftAdapter, savePeftAdapter } from '../peft/adapter.ts';
import { SeededRandom, seedFrom } from '../sim/random.ts';
import { createOnnxPolicySession, onnxPolicyRunner, type OrtModuleLike } from '../eval/runners.ts';

const MODELS = new URL('../../static/models/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, MODELS)));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function randomLora(weights: ReturnType<typeof initPolicyWeights>, label: string): PolicyLora {
  const lora = initialLora({ weights, r: 4, alpha: 8, seed: seedFrom({ label: `${label}/A` }) });
  const rng = new SeededRandom(seedFrom({ label: `${label}/B` }));
  for (const name of POLICY_LAYERS) for (let i = 0; i < lora[name]!.B.length; i++) lora[name]!.B[i] = 0.2 * rng.normal();
  return lora;
}

describe('protobuf encoder', () => {
  it('writes the wire format of the protobuf encoding guide', () => {
    // "150 in field 1": 08 96 01; a string "testing" in field 2: 12 07 74 65 73 74 69 6e 67
    expect(Array.from(new ProtoWriter().varint(1, 150).finish())).toEqual([0x08, 0x96, 0x01]);
    expect(Array.from(new ProtoWriter().string(2, 'testing').finish())).toEqual([0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]);
    // int64 -1 is ten bytes of two's complement; a float is fixed32 little-endian; packed [3, 270]
    expect(Array.from(new ProtoWriter().varint(1, -1).finish())).toEqual([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(Array.from(new ProtoWriter().float(2, 1).finish())).toEqual([0x15, 0x00, 0x00, 0x80, 0x3f]);
    expect(Array.from(new ProtoWriter().packedVarints(4, [3, 270]).finish())).toEqual([0x22, 0x03, 0x03, 0x8e, 0x02]);
  });
});

describe('policy MLP and PEFT adapters', () => {
  const weights = initPolicyWeights({ seed: seedFrom({ label: 'policy-test' }), hidden: 16 });

  it('an adapter round-trips through PEFT files with PEFT tensor names and shapes', () => {
    const lora = randomLora(weights, 'roundtrip');
    const adapter = adapterFromLora({ lora, r: 4, alpha: 8, extraConfig: { tensorguard_training_stage: 'imitation_learning' } });
    expect([...adapter.shapes.entries()].find(([n]) => n === 'base_model.model.fc1.lora_A.weight')![1]).toEqual([4, weights.obsDim]);
    expect(adapter.shapes.get('base_model.model.mean_head.lora_B.weight')).toEqual([weights.actDim, 4]);
    const loaded = loadPeftAdapter({ files: savePeftAdapter({ adapter }) });
    expect(loaded.config.tensorguard_training_stage).toBe('imitation_learning');
    const back = loraFromAdapter({ adapter: loaded, weights });
    for (const name of POLICY_LAYERS) {
      expect(back[name]!.A).toEqual(lora[name]!.A);
      expect(back[name]!.B).toEqual(lora[name]!.B);
      expect(back[name]!.scaling).toBe(2);
    }
  });

  it('the LoRA path equals the merged weight W + s B A', () => {
    const lora = randomLora(weights, 'merge');
    const merged = structuredClone(weights);
    for (const name of POLICY_LAYERS) merged.layers[name].weight = effectiveWeight({ layer: weights.layers[name], lora: lora[name] });
    const obs = Float32Array.from({ length: 8 * weights.obsDim }, (_, i) => Math.sin(i));
    const a = policyForward({ weights, lora, obs, batch: 8 }).mean;
    const b = policyForward({ weights: merged, obs, batch: 8 }).mean;
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 5);
  });

  it('weights round-trip through safetensors', () => {
    const back = loadPolicyWeights({ bytes: savePolicyWeights({ weights }) });
    expect(back.layers.fc2.weight).toEqual(weights.layers.fc2.weight);
    expect(back.logStd).toEqual(weights.logStd);
  });
});

describe('the committed reference policy (static/models)', () => {
  const weights = loadPolicyWeights({ bytes: read(REFERENCE_POLICY.weightsFile) });
  const onnx = read(REFERENCE_POLICY.onnxFile);
  const meta = JSON.parse(new TextDecoder().decode(read(REFERENCE_POLICY.metadataFile)));

  it('is the ONNX the encoder builds from the committed weights, with the recorded hashes', () => {
    expect(sha256(buildPolicyOnnx({ weights, metadata: meta.onnxMetadata }))).toBe(sha256(onnx));
    expect(meta.onnx.sha256).toBe(sha256(onnx));
    expect(meta.weights.sha256).toBe(sha256(read(REFERENCE_POLICY.weightsFile)));
    expect(meta.onnx.opset).toBe(17);
    const template = loadPeftAdapter({
      files: { 'adapter_config.json': read(`${REFERENCE_POLICY.adapterDir}/adapter_config.json`), 'adapter_model.safetensors': read(`${REFERENCE_POLICY.adapterDir}/adapter_model.safetensors`) },
    });
    const lora = loraFromAdapter({ adapter: template, weights });
    expect(lora.fc1!.B.every((v) => v === 0)).toBe(true); // PEFT init: B = 0, the template is the base policy
  });

  it('onnxruntime-web runs base and candidate in one session and matches the TypeScript forward pass', async () => {
    ort.env.wasm.numThreads = 1;
    const module = ort as unknown as OrtModuleLike;
    const session = await createOnnxPolicySession({ ort: module, model: onnx });
    const rng = new SeededRandom(seedFrom({ label: 'onnx-obs' }));
    const batch = 64;
    const obs = Float32Array.from({ length: batch * weights.obsDim }, () => rng.normal());
    const shapes = { obsDim: weights.obsDim, hidden: weights.hidden, actDim: weights.actDim };
    const candidate = randomLora(weights, 'onnx');
    for (const lora of [undefined, candidate]) {
      const got = await onnxPolicyRunner({ ort: module, session, shapes, lora }).act({ obs, batch });
      const want = policyForward({ weights, lora, obs, batch });
      expect(got.mean.length).toBe(batch * weights.actDim);
      for (let i = 0; i < want.mean.length; i++) expect(Math.abs(got.mean[i]! - want.mean[i]!)).toBeLessThan(1e-5);
      expect(Array.from(got.logStd)).toEqual(Array.from(want.logStd));
    }
    await session.release?.();
  });
});
