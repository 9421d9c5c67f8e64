// `tensorguard officer eval-model …` and the customer-model path of `officer review`.
//
//   eval-model register --fleet F --onnx model.onnx --scenarios set.json [--name N]
//     model.onnx ──onnxruntime-web session──▶ contract (core/eval/customer-contract.ts) | refused, naming the mismatch
//     set.json ──zod──▶ scenario set ──AES-256-GCM, key wrapped (ML-KEM-768) to this officer's KEM key──▶ ciphertext
//     record (model SHA-256, contract, ciphertext SHA-256, wraps) ──ML-DSA-65──▶ POST /v1/evaluation-models
//   eval-model list --fleet F        the fleet's models (active / registered / retired)
//   eval-model retire --id ID --reason R
//   review --eval-model ID|reference  (default: the fleet's active model, else the reference task)
//     GET record, model, ciphertext ──openEvalModelRecord (this officer's key)──▶ blob hashes ──▶ unwrap
//     in this process ──▶ runCustomerGateOnnx: the reference gate's code on the customer's model and sets
// The scenario set's plaintext and key exist only in this process, never on disk or on the server.
import { readFile, stat } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { sessionClient } from '../session-client.ts';
import { loadOfficerSecrets } from './officer.ts';
import { bytesToHex, fromBase64, toBase64 } from '../../core/bytes.ts';
import type { OfficerSecrets } from '../../core/records/officer-secrets.ts';
import type { RoundConfig } from '../../core/records/round-config.ts';
import type { PeftAdapter } from '../../core/peft/adapter.ts';
import type { OrtModuleLike } from '../../core/eval/runners.ts';
import type { GateReport, GateSetCounts } from '../../core/eval/reference-gate.ts';
import { MAX_EVAL_MODEL_BYTES, validateEvalModel } from '../../core/eval/customer-contract.ts';
import { MAX_SCENARIO_SET_BYTES, parseScenarioSetDocument, type ScenarioSetDocument } from '../../core/eval/customer-scenarios.ts';
import { runCustomerGateOnnx } from '../../core/eval/customer-gate.ts';
import { buildSignedEvalModel, deriveOfficerKemKeyPair, openEvalModelRecord, openScenarioSet, verifyEvalModelBlobs, type EvalModelRecord } from '../../core/records/eval-model.ts';

interface EvalModelItem {
  id: string;
  fleetId: string;
  name: string;
  fingerprint: string;
  modelSha256: string;
  modelBytes: number;
  scenariosSha256: string;
  state: 'active' | 'registered' | 'retired';
  createdAt: number;
  retiredAt: number | null;
  retireReason: string | null;
}

/** onnxruntime-web with its WASM backend on one thread (the runtime of the PWA's eval worker), in Node. */
async function loadOrt(): Promise<OrtModuleLike> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  return ort as unknown as OrtModuleLike;
}

async function readBounded(path: string, max: number, what: string): Promise<Uint8Array> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new CliError(`cannot read the ${what} ${path}`, 'not_found');
  }
  if (size > max) throw new CliError(`the ${what} ${path} is ${size} bytes, at most ${max}`, 'oversize');
  return new Uint8Array(await readFile(path));
}

/** `officer eval-model register`: validate, encrypt, sign and register a customer evaluation model. */
export async function officerEvalModelRegister(ctx: CommandContext, opts: { fleet: string; onnx: string; scenarios: string; name?: string }): Promise<Record<string, unknown>> {
  const { session, api } = await sessionClient(ctx);
  const model = await readBounded(opts.onnx, MAX_EVAL_MODEL_BYTES, 'ONNX model');
  const contract = await validateEvalModel({ ort: await loadOrt(), model });
  const document = parseScenarioSetDocument({ json: await readBounded(opts.scenarios, MAX_SCENARIO_SET_BYTES, 'scenario set') });
  const name = (opts.name ?? document.name).trim();
  if (!name || name.length > 128) throw new CliError('--name must be 1..128 characters', 'invalid_argument');
  const secrets = await loadOfficerSecrets(ctx);
  const kem = deriveOfficerKemKeyPair({ attestRoot: secrets.attestRoot });
  const built = buildSignedEvalModel({
    modelId: `em-${randomUUID()}`,
    orgId: session.orgId,
    fleetId: opts.fleet,
    name,
    model,
    contract,
    document,
    recipients: [kem.publicKey],
    signer: secrets.dsa,
    createdAt: Date.now(),
  });
  const res = await api.json<EvalModelItem>('POST', '/v1/evaluation-models', { record: toBase64(built.signed), model: toBase64(model), scenarios: toBase64(built.sealed) });
  return {
    id: res.id,
    fleetId: res.fleetId,
    name: res.name,
    state: res.state,
    fingerprint: bytesToHex(built.fingerprint),
    modelSha256: res.modelSha256,
    scenariosSha256: res.scenariosSha256,
    contract: { obsDim: contract.obsDim, actDim: contract.actDim, logStdPerState: contract.logStdPerState, modules: contract.modules.map((m) => `${m.name} [${m.outFeatures}, ${m.inFeatures}]`) },
    scenarioSets: document.sets.map((s) => ({ name: s.name, role: s.role, scenarios: s.scenarios.length })),
  };
}

/** `officer eval-model list`: a fleet's evaluation models, newest first. */
export async function officerEvalModelList(ctx: CommandContext, opts: { fleet: string }): Promise<EvalModelItem[]> {
  const { api } = await sessionClient(ctx);
  return api.json<EvalModelItem[]>('GET', `/v1/evaluation-models?fleet=${encodeURIComponent(opts.fleet)}`);
}

/** `officer eval-model retire`. */
export async function officerEvalModelRetire(ctx: CommandContext, opts: { id: string; reason: string }): Promise<EvalModelItem> {
  const { api } = await sessionClient(ctx);
  if (!opts.reason.trim()) throw new CliError('--reason must not be empty', 'invalid_argument');
  return api.json<EvalModelItem>('POST', `/v1/evaluation-models/${encodeURIComponent(opts.id)}/retire`, { reason: opts.reason });
}

export interface LoadedEvalModel {
  record: EvalModelRecord;
  fingerprint: Uint8Array;
  model: Uint8Array;
  document: ScenarioSetDocument;
}

/**
 * The customer evaluation model a review of `config` uses: `--eval-model ID`, or the fleet's active model;
 * null for `--eval-model reference` or a fleet without one. Everything the server returns is checked
 * against this officer's own signing key and the round (org, fleet), then the scenario set is decrypted.
 */
export async function loadReviewEvalModel(ctx: CommandContext, opts: { config: RoundConfig; secrets: OfficerSecrets; evalModel?: string }): Promise<LoadedEvalModel | null> {
  if (opts.evalModel === 'reference') return null;
  const { session, api } = await sessionClient(ctx);
  let id = opts.evalModel;
  if (!id) {
    const models = await api.json<EvalModelItem[]>('GET', `/v1/evaluation-models?fleet=${encodeURIComponent(opts.config.fleetId)}`);
    id = models.find((m) => m.state === 'active')?.id;
    if (!id) return null;
  }
  const item = await api.json<EvalModelItem & { record: string }>('GET', `/v1/evaluation-models/${encodeURIComponent(id)}`);
  if (item.state === 'retired' && !opts.evalModel) throw new CliError(`evaluation model ${id} is retired`, 'eval_model_retired');
  const { record, fingerprint } = openEvalModelRecord({ bytes: fromBase64(item.record), trustedKeys: [opts.secrets.dsa.publicKey] });
  if (record.modelId !== id || record.orgId !== session.orgId || record.fleetId !== opts.config.fleetId)
    throw new CliError(`evaluation model ${id} is signed for fleet ${record.fleetId} of organization ${record.orgId}, not this round's fleet ${opts.config.fleetId}`, 'eval_model_fleet');
  ctx.log(`Evaluation model ${record.name} (${bytesToHex(fingerprint).slice(0, 16)}…): downloading the model and the encrypted scenario set`);
  const model = await api.binary('GET', `/v1/evaluation-models/${encodeURIComponent(id)}/model`);
  const sealed = await api.binary('GET', `/v1/evaluation-models/${encodeURIComponent(id)}/scenarios`);
  verifyEvalModelBlobs({ record, model, sealed });
  const document = openScenarioSet({ record, sealed, kem: deriveOfficerKemKeyPair({ attestRoot: opts.secrets.attestRoot }) });
  return { record, fingerprint, model, document };
}

/**
 * The gate of `officer review`: the customer's model when the fleet has one (or --eval-model names one),
 * else `reference` (the reference-task gate of cli/commands/officer.ts).
 */
export async function reviewGateWithEvalModel(
  ctx: CommandContext,
  opts: {
    config: RoundConfig;
    secrets: OfficerSecrets;
    evalModel?: string;
    deployed: PeftAdapter;
    candidate: PeftAdapter;
    candidateAdapterSha256: string;
    counts?: Partial<GateSetCounts>;
    reference: () => Promise<GateReport>;
  },
): Promise<GateReport> {
  const loaded = await loadReviewEvalModel(ctx, opts);
  if (!loaded) return opts.reference();
  const total = loaded.document.sets.length * 2;
  const bar = ctx.progress(`Evaluation gate: ${loaded.record.name} (sets)`, total);
  try {
    return await runCustomerGateOnnx({
      ort: await loadOrt(),
      model: loaded.model,
      record: loaded.record,
      fingerprint: loaded.fingerprint,
      document: loaded.document,
      roundId: opts.config.roundId,
      tensors: opts.config.tensors,
      deployed: opts.deployed,
      candidate: opts.candidate,
      candidateAdapterSha256: opts.candidateAdapterSha256,
      runtime: 'onnxruntime-web/wasm (node)',
      onProgress: (done) => bar.update(done),
    });
  } finally {
    bar.stop();
  }
}
