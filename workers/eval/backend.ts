// Which onnxruntime-web backend the eval worker runs the gate on: WebGPU where the browser offers a
// hardware adapter, else WASM (one thread, the arithmetic `tensorguard officer review` runs in Node).
// The choice is explicit, so the gate report's `runtime` names the backend that really ran, and a WASM
// run says why WebGPU was not used.
//
//   navigator.gpu? ──requestAdapter──▶ hardware adapter? ──onnxruntime-web/webgpu session ['webgpu']──▶ webgpu
//        │ none            │ none / software only                 │ fails to load or create
//        └─────────────────┴──────────────────────────────────────┴──▶ onnxruntime-web/wasm ['wasm'] (+ reason)
// Only one provider is ever passed to a session: onnxruntime-web would otherwise fall back silently and
// the report could not say which one computed the numbers. The WebGPU build is imported only when an
// adapter exists, so a browser without one never loads it.
import type { OrtModuleLike } from '../../core/eval/runners.ts';

/** The slice of WebGPU's GPU / GPUAdapter we read (navigator.gpu in a worker). */
export interface WebGpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<WebGpuAdapterLike | null>;
}
export interface WebGpuAdapterLike {
  /** GPUAdapterInfo (Chromium >= 121); older builds had adapter.isFallbackAdapter. */
  info?: { isFallbackAdapter?: boolean; vendor?: string; architecture?: string };
  isFallbackAdapter?: boolean;
}

export interface OrtBackend {
  ort: OrtModuleLike;
  /** Exactly one provider: the one that runs. */
  executionProviders: ['webgpu'] | ['wasm'];
  /** For the gate report, e.g. "onnxruntime-web/webgpu (browser worker)". */
  runtime: string;
  /** Why WebGPU was not used; null when it was. */
  fallbackReason: string | null;
}

export const WEBGPU_RUNTIME = 'onnxruntime-web/webgpu (browser worker)';
/** The WASM runtime string, with why WebGPU was not used. */
export function wasmRuntime(reason: string): string {
  return `onnxruntime-web/wasm (browser worker; ${reason})`;
}

export function shortMessage(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  // The runtime string is signed into the release manifest (evaluator <= 256 bytes): keep the reason short.
  return m.length > 100 ? `${m.slice(0, 97)}...` : m;
}

/** The WASM backend, with the reason WebGPU was not used in the runtime string. */
export async function wasmBackend(options: { loadWasm: () => Promise<OrtModuleLike>; reason: string }): Promise<OrtBackend> {
  return { ort: await options.loadWasm(), executionProviders: ['wasm'], runtime: wasmRuntime(options.reason), fallbackReason: options.reason };
}

/**
 * Picks the backend for `model`: WebGPU when `gpu` yields a hardware adapter and a WebGPU session of the
 * model can be created (it is released again: the gate opens its own), else WASM with the reason.
 */
export async function selectOrtBackend(options: {
  gpu: WebGpuLike | undefined;
  model: Uint8Array;
  loadWebGpu: () => Promise<OrtModuleLike>;
  loadWasm: () => Promise<OrtModuleLike>;
}): Promise<OrtBackend> {
  const { gpu, model } = options;
  const fallback = (reason: string) => wasmBackend({ loadWasm: options.loadWasm, reason });
  if (!gpu || typeof gpu.requestAdapter !== 'function') return fallback('no WebGPU in this browser');
  let adapter: WebGpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return fallback(`WebGPU adapter request failed: ${shortMessage(err)}`);
  }
  if (!adapter) return fallback('no WebGPU adapter');
  // A software adapter (SwiftShader) is slower than WASM and adds nothing.
  if (adapter.info?.isFallbackAdapter || adapter.isFallbackAdapter) return fallback('only a software WebGPU adapter');
  try {
    const ort = await options.loadWebGpu();
    const probe = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'] });
    await probe.release?.();
    return { ort, executionProviders: ['webgpu'], runtime: WEBGPU_RUNTIME, fallbackReason: null };
  } catch (err) {
    return fallback(`WebGPU session failed: ${shortMessage(err)}`);
  }
}
