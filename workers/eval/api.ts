// The eval worker's API: the review's evaluation gate in the browser, with onnxruntime-web running the
// shipped reference policy (static/models/reference-policy.onnx, kept in memory once fetched) on WebGPU
// where the browser has a hardware adapter, else on WASM with one thread (./backend.ts; the report's
// `runtime` names the backend that ran and, for WASM, why not WebGPU). It calls the same core function as
// `tensorguard officer review` (core/eval/reference-gate.ts runReferenceGateOnnx): same sets, same
// runners, same verdict; on WASM the same arithmetic as the CLI, so the same numbers.
//
//   candidate handle ──key store (workers/keystore)──▶ candidate adapter (never leaves the worker)
//   template adapter (the deployed policy) + candidate ──runReferenceGateOnnx──▶ GateReport ──▶ UI
// The candidate is read from the key store here, so the UI never holds the decrypted adapter; what goes
// back is the report (rates, violations, forces, KL, the verdict), which is what the officer reviews.
//
// Customer evaluation models (issue 5, ./eval-models.ts): prepareEvalModel verifies and decrypts a fleet's
// registered model + scenario set here (the officer's KEM key never leaves the worker) and keeps them in the
// key store; evaluateCandidate with a `fleetId` whose model was prepared runs core/eval/customer-gate.ts
// runCustomerGateOnnx instead (`evalModel: 'reference'` forces the reference task).
import { loadPeftAdapter, adapterSchema } from '../../core/peft/adapter.ts';
import { IntegrityError } from '../../core/errors.ts';
import { notApplicableGateReport, referenceGateApplicability, runReferenceGateOnnx, type GateReport, type GateSetCounts } from '../../core/eval/reference-gate.ts';
import type { OrtModuleLike } from '../../core/eval/runners.ts';
import { openVault } from '../keystore/vault.ts';
import { decodeCandidate } from '../keystore/candidates.ts';
import { bytesOf, type BytesLike, type ProgressCallback } from '../transfer.ts';
import { runCustomerGateOnnx } from '../../core/eval/customer-gate.ts';
import { forgetEvalModel, loadPreparedEvalModel, prepareEvalModel, preparedEvalModelSummary, type EvalModelSummary } from './eval-models.ts';
import { selectOrtBackend, shortMessage, wasmBackend, type OrtBackend, type WebGpuLike } from './backend.ts';

export type { EvalModelSummary } from './eval-models.ts';

/** Where the PWA serves the reference policy (SvelteKit serves static/ at the root). */
export const REFERENCE_MODEL_URL = '/models/reference-policy.onnx';

export interface EvalWorkerApi {
  /**
   * Runs the evaluation gate of a reviewed candidate (key-store handle from the HE worker) against the
   * round's template adapter (the policy robots run now).
   */
  evaluateCandidate(
    options: {
      roundId: string;
      candidateHandle: string;
      template: { adapterConfigJson: BytesLike; adapterSafetensors: BytesLike };
      counts?: Partial<GateSetCounts>;
      /** The round's fleet: its prepared customer evaluation model is used when there is one. */
      fleetId?: string;
      /** 'reference' forces the reference task even when the fleet has a prepared model. */
      evalModel?: 'fleet' | 'reference';
    },
    onProgress?: ProgressCallback,
  ): Promise<GateReport>;
  /**
   * Verifies (pinned officer key, blob hashes) and decrypts a fleet's evaluation model and scenario set,
   * downloaded by the UI from GET /v1/evaluation-models/:id{,/model,/scenarios}; keeps them for reviews.
   */
  prepareEvalModel(options: { fleetId: string; record: BytesLike; model: BytesLike; scenarios: BytesLike }): Promise<EvalModelSummary>;
  /** The prepared model of a fleet (public summary), or null. */
  preparedEvalModel(options: { fleetId: string }): Promise<EvalModelSummary | null>;
  forgetEvalModel(options: { fleetId: string }): Promise<void>;
}

async function loadOrt(): Promise<OrtModuleLike> {
  // The WASM-only build. One thread: no SharedArrayBuffer needed (the PWA is not cross-origin isolated)
  // and the same arithmetic as the CLI.
  const ort = await import('onnxruntime-web/wasm');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  return ort as unknown as OrtModuleLike;
}

async function loadWebGpuOrt(): Promise<OrtModuleLike> {
  // The WebGPU build (its own WASM for the host side), imported only when an adapter exists.
  const ort = await import('onnxruntime-web/webgpu');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  return ort as unknown as OrtModuleLike;
}

/** navigator.gpu of the worker, when the browser exposes WebGPU (secure contexts only). */
function workerGpu(): WebGpuLike | undefined {
  return (globalThis.navigator as (Navigator & { gpu?: WebGpuLike }) | undefined)?.gpu;
}

async function webCryptoSha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function createEvalWorkerApi(options: { fetchModel?: () => Promise<Uint8Array> } = {}): EvalWorkerApi {
  const vault = openVault();
  let model: Uint8Array | null = null;
  /** Chosen once per worker (./backend.ts); a WebGPU run that fails switches it to WASM. */
  let backend: Promise<OrtBackend> | null = null;
  const backendFor = (bytes: Uint8Array): Promise<OrtBackend> => {
    backend ??= selectOrtBackend({ gpu: workerGpu(), model: bytes, loadWebGpu: loadWebGpuOrt, loadWasm: loadOrt }).catch((err) => {
      backend = null;
      throw err;
    });
    return backend;
  };
  const fetchModel =
    options.fetchModel ??
    (async () => {
      const res = await fetch(REFERENCE_MODEL_URL);
      if (!res.ok) throw new IntegrityError(`the reference policy model is not available (${res.status})`);
      return new Uint8Array(await res.arrayBuffer());
    });

  return {
    async evaluateCandidate(o, onProgress) {
      const stored = await vault.getSecret(o.candidateHandle);
      if (!stored) throw new IntegrityError('the reviewed candidate is not on this device any more: review the round again');
      const c = decodeCandidate(stored);
      if (c.roundId !== o.roundId) throw new IntegrityError('the candidate belongs to another round');
      const candidate = loadPeftAdapter({ files: { 'adapter_config.json': c.adapterConfigJson, 'adapter_model.safetensors': c.adapterSafetensors } });
      const deployed = loadPeftAdapter({ files: { 'adapter_config.json': await bytesOf(o.template.adapterConfigJson), 'adapter_model.safetensors': await bytesOf(o.template.adapterSafetensors) } });
      const candidateAdapterSha256 = await webCryptoSha256Hex(c.adapterSafetensors);
      const tensors = adapterSchema({ adapter: candidate });
      const customer = o.fleetId && o.evalModel !== 'reference' ? await loadPreparedEvalModel({ vault, fleetId: o.fleetId }) : null;
      if (customer) {
        onProgress?.(0, 1, `loading evaluation model ${customer.record.name} (ONNX)`);
        return runCustomerGateOnnx({
          ort: await loadOrt(),
          model: customer.model,
          record: customer.record,
          fingerprint: customer.fingerprint,
          document: customer.document,
          roundId: o.roundId,
          tensors,
          deployed,
          candidate,
          candidateAdapterSha256,
          runtime: 'onnxruntime-web/wasm (browser worker)',
          onProgress: (done, total, phase) => onProgress?.(done, total, `${customer.record.name} ${phase}: set ${done} of ${total}`),
        });
      }
      const applicability = referenceGateApplicability({ tensors });
      // Not the reference policy's layout: say so (no model load, no number).
      if (!applicability.applicable) return notApplicableGateReport({ roundId: o.roundId, candidateAdapterSha256, reason: applicability.reason });
      onProgress?.(0, 1, 'loading the reference policy (ONNX)');
      const bytes = (model ??= await fetchModel());
      const run = (b: OrtBackend) => {
        onProgress?.(0, 1, `running on ${b.runtime}`);
        return runReferenceGateOnnx({
          ort: b.ort,
          executionProviders: b.executionProviders,
          model: bytes,
          roundId: o.roundId,
          tensors,
          deployed,
          candidate,
          candidateAdapterSha256,
          runtime: b.runtime,
          counts: o.counts,
          onProgress: (done, total, phase) => onProgress?.(done, total, `${phase}: set ${done} of ${total}`),
        });
      };
      const chosen = await backendFor(bytes);
      if (chosen.executionProviders[0] !== 'webgpu') return run(chosen);
      try {
        return await run(chosen);
      } catch (err) {
        // A WebGPU device can be lost mid-run: this worker uses WASM from now on, and the report says why.
        backend = wasmBackend({ loadWasm: loadOrt, reason: `WebGPU run failed: ${shortMessage(err)}` });
        return run(await backend);
      }
    },
    async prepareEvalModel(o) {
      return prepareEvalModel({ vault, fleetId: o.fleetId, record: await bytesOf(o.record), model: await bytesOf(o.model), sealed: await bytesOf(o.scenarios), now: Date.now() });
    },
    async preparedEvalModel(o) {
      return preparedEvalModelSummary({ vault, fleetId: o.fleetId });
    },
    async forgetEvalModel(o) {
      await forgetEvalModel({ vault, fleetId: o.fleetId });
    },
  };
}
