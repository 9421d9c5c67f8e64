// The eval worker's backend choice: WebGPU only with a hardware adapter and a session that really opens
// on it (the probe session is released), WASM otherwise, with the reason in the runtime string; the
// provider list always has exactly one entry, so the report names what computed the numbers.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { createOnnxPolicySession, type OrtModuleLike, type OrtSessionLike } from '../../core/eval/runners.ts';
import { selectOrtBackend, WEBGPU_RUNTIME, type WebGpuLike } from './backend.ts';

const model = new Uint8Array(readFileSync(new URL('../../static/models/reference-policy.onnx', import.meta.url)));
const wasmOrt = ort as unknown as OrtModuleLike;

/** A fake onnxruntime module that records the sessions it was asked for. */
function fakeOrt(options: { fail?: string }) {
  const created: Array<{ providers: unknown; released: boolean }> = [];
  const module: OrtModuleLike = {
    InferenceSession: {
      async create(_model: Uint8Array, opts?: Record<string, unknown>): Promise<OrtSessionLike> {
        if (options.fail) throw new Error(options.fail);
        const entry = { providers: opts?.executionProviders, released: false };
        created.push(entry);
        return { inputNames: [], run: async () => ({}), release: async () => void (entry.released = true) };
      },
    },
    Tensor: ort.Tensor as unknown as OrtModuleLike['Tensor'],
  };
  return { module, created };
}

const gpuWith = (adapter: Awaited<ReturnType<WebGpuLike['requestAdapter']>> | Error): WebGpuLike => ({
  requestAdapter: async () => {
    if (adapter instanceof Error) throw adapter;
    return adapter;
  },
});

describe('eval worker backend', () => {
  const loadWasm = async () => wasmOrt;

  it('falls back to WASM and says why: no WebGPU, no adapter, a software adapter, a failed request', async () => {
    const neverWebGpu = async (): Promise<OrtModuleLike> => {
      throw new Error('the WebGPU build must not be loaded');
    };
    const cases: Array<[WebGpuLike | undefined, string]> = [
      [undefined, 'no WebGPU in this browser'],
      [gpuWith(null), 'no WebGPU adapter'],
      [gpuWith({ info: { isFallbackAdapter: true } }), 'only a software WebGPU adapter'],
      [gpuWith({ isFallbackAdapter: true }), 'only a software WebGPU adapter'],
      [gpuWith(new Error('GPU process crashed')), 'WebGPU adapter request failed: GPU process crashed'],
    ];
    for (const [gpu, reason] of cases) {
      const b = await selectOrtBackend({ gpu, model, loadWebGpu: neverWebGpu, loadWasm });
      expect(b.executionProviders).toEqual(['wasm']);
      expect(b.ort).toBe(wasmOrt);
      expect(b.fallbackReason).toBe(reason);
      expect(b.runtime).toBe(`onnxruntime-web/wasm (browser worker; ${reason})`);
    }
  });

  it('uses WebGPU with a hardware adapter whose session opens, and releases the probe session', async () => {
    const fake = fakeOrt({});
    const b = await selectOrtBackend({ gpu: gpuWith({ info: { isFallbackAdapter: false, vendor: 'x' } }), model, loadWebGpu: async () => fake.module, loadWasm });
    expect(b.executionProviders).toEqual(['webgpu']);
    expect(b.ort).toBe(fake.module);
    expect(b.runtime).toBe(WEBGPU_RUNTIME);
    expect(b.fallbackReason).toBeNull();
    expect(fake.created).toEqual([{ providers: ['webgpu'], released: true }]);
  });

  it('falls back to WASM when the WebGPU build or session fails, with a bounded reason', async () => {
    const long = `no kernel for op ${'x'.repeat(500)}`;
    const fake = fakeOrt({ fail: long });
    const b = await selectOrtBackend({ gpu: gpuWith({}), model, loadWebGpu: async () => fake.module, loadWasm });
    expect(b.executionProviders).toEqual(['wasm']);
    expect(b.fallbackReason).toMatch(/^WebGPU session failed: no kernel for op x+\.\.\.$/);
    // signed into the release manifest as "reference-task/v1 <runtime>" (evaluator <= 256 bytes)
    expect(`reference-task/v1 ${b.runtime}`.length).toBeLessThanOrEqual(256);
    const missing = await selectOrtBackend({ gpu: gpuWith({}), model, loadWebGpu: async () => Promise.reject(new Error('chunk failed to load')), loadWasm });
    expect(missing.runtime).toBe('onnxruntime-web/wasm (browser worker; WebGPU session failed: chunk failed to load)');
  });

  it('a policy session takes one explicit provider list (default WASM) and refuses an empty or malformed one', async () => {
    const fake = fakeOrt({});
    await createOnnxPolicySession({ ort: fake.module, model });
    await createOnnxPolicySession({ ort: fake.module, model, executionProviders: ['webgpu'] });
    expect(fake.created.map((c) => c.providers)).toEqual([['wasm'], ['webgpu']]);
    await expect(createOnnxPolicySession({ ort: fake.module, model, executionProviders: [] })).rejects.toThrow(TypeError);
    await expect(createOnnxPolicySession({ ort: fake.module, model, executionProviders: [''] })).rejects.toThrow(/executionProviders/);
  });

  it('the WASM backend opens a real session of the reference policy with exactly that provider', async () => {
    ort.env.wasm.numThreads = 1;
    const b = await selectOrtBackend({ gpu: undefined, model, loadWebGpu: async () => wasmOrt, loadWasm });
    const session = await b.ort.InferenceSession.create(model, { executionProviders: b.executionProviders });
    expect(session.inputNames).toContain('obs');
    await session.release?.();
  });
});
