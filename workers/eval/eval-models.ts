// Customer evaluation models inside the eval worker: the only place in the PWA where a scenario set is
// decrypted. The UI thread downloads what the server holds (the signed record, the ONNX model, the
// scenario set ciphertext: nothing secret) and moves it here; this module checks the record against the
// officer's own pinned ML-DSA-65 key, the blobs against the record, unwraps the content key with the
// officer's ML-KEM-768 key (derived from the attestation root in the key store, core/records/eval-model.ts)
// and keeps the model and the decrypted set in the key store (encrypted at rest, workers/keystore/vault.ts)
// so the review can run the gate offline. The UI gets a summary: names, hashes, set names and counts.
//
//   record + model + ciphertext ──openEvalModelRecord(pinned key)──▶ verifyEvalModelBlobs ──▶ openScenarioSet
//   ──▶ vault secret "eval-model/<fleet>/" (record | model | canonical scenario JSON) ──▶ EvalModelSummary
//   review: vault ──▶ loadPreparedEvalModel (record re-verified) ──▶ runCustomerGateOnnx
import { ByteReader, ByteWriter } from '../../core/codec/binary.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { IntegrityError, TensorGuardError } from '../../core/errors.ts';
import { encodeScenarioSetDocument, parseScenarioSetDocument, type ScenarioSetDocument } from '../../core/eval/customer-scenarios.ts';
import { deriveOfficerKemKeyPair, openEvalModelRecord, openScenarioSet, verifyEvalModelBlobs, type EvalModelRecord } from '../../core/records/eval-model.ts';
import { MAX_EVAL_MODEL_BYTES } from '../../core/eval/customer-contract.ts';
import { MAX_SCENARIO_SET_BYTES } from '../../core/eval/customer-scenarios.ts';
import { PUBLIC_IDS, attestRoot } from '../keystore/officer-keys.ts';
import type { Vault } from '../keystore/vault.ts';

const TYPE_PREPARED_EVAL_MODEL = 0x22;
export const EVAL_MODEL_IDS = {
  // The trailing "/" keeps deletePrefix to exactly this fleet (no fleet id is a prefix of another's entry).
  secret: (fleetId: string) => `eval-model/${fleetId}/`,
  summary: (fleetId: string) => `eval-model-summary/${fleetId}/`,
} as const;

/** What the UI may know about a prepared evaluation model. */
export interface EvalModelSummary {
  id: string;
  fleetId: string;
  name: string;
  fingerprint: string;
  modelSha256: string;
  scenariosSha256: string;
  scenarioSetName: string;
  sets: Array<{ name: string; role: string; scenarios: number }>;
  modules: string[];
  preparedAt: number;
}

export interface PreparedEvalModel {
  record: EvalModelRecord;
  fingerprint: Uint8Array;
  model: Uint8Array;
  document: ScenarioSetDocument;
}

async function pinnedOfficerKey(vault: Vault): Promise<Uint8Array> {
  const key = await vault.getPublic<Uint8Array>(PUBLIC_IDS.dsa);
  if (!key) throw new TensorGuardError({ code: 'no_officer_keys', status: 409, message: 'no officer signing key on this device: run the key ceremony or import a backup' });
  return key;
}

function summaryOf(p: PreparedEvalModel, preparedAt: number): EvalModelSummary {
  return {
    id: p.record.modelId,
    fleetId: p.record.fleetId,
    name: p.record.name,
    fingerprint: bytesToHex(p.fingerprint),
    modelSha256: bytesToHex(p.record.modelSha256),
    scenariosSha256: bytesToHex(p.record.scenariosSha256),
    scenarioSetName: p.document.name,
    sets: p.document.sets.map((s) => ({ name: s.name, role: s.role, scenarios: s.scenarios.length })),
    modules: p.record.contract.modules.map((m) => `${m.name} [${m.outFeatures}, ${m.inFeatures}]`),
    preparedAt,
  };
}

/** Verifies and decrypts a fleet's evaluation model and keeps it in the key store for reviews of that fleet. */
export async function prepareEvalModel(options: { vault: Vault; fleetId: string; record: Uint8Array; model: Uint8Array; sealed: Uint8Array; now: number }): Promise<EvalModelSummary> {
  const { vault } = options;
  const opened = openEvalModelRecord({ bytes: options.record, trustedKeys: [await pinnedOfficerKey(vault)] });
  if (opened.record.fleetId !== options.fleetId) throw new IntegrityError(`the evaluation model record is for fleet ${opened.record.fleetId}, not ${options.fleetId}`);
  verifyEvalModelBlobs({ record: opened.record, model: options.model, sealed: options.sealed });
  const document = openScenarioSet({ record: opened.record, sealed: options.sealed, kem: deriveOfficerKemKeyPair({ attestRoot: await attestRoot(vault) }) });
  const stored = new ByteWriter()
    .header(TYPE_PREPARED_EVAL_MODEL, 1)
    .bytes(options.record, 256 * 1024)
    .bytes(options.model, MAX_EVAL_MODEL_BYTES)
    .bytes(encodeScenarioSetDocument({ document }), MAX_SCENARIO_SET_BYTES)
    .finish();
  const summary = summaryOf({ ...opened, model: options.model, document }, options.now);
  await vault.putSecret(EVAL_MODEL_IDS.secret(options.fleetId), stored);
  await vault.putPublic(EVAL_MODEL_IDS.summary(options.fleetId), summary);
  return summary;
}

/** The prepared model of a fleet, re-verified against the pinned officer key; null when none was prepared. */
export async function loadPreparedEvalModel(options: { vault: Vault; fleetId: string }): Promise<PreparedEvalModel | null> {
  const stored = await options.vault.getSecret(EVAL_MODEL_IDS.secret(options.fleetId));
  if (!stored) return null;
  const r = new ByteReader(stored, 'prepared evaluation model');
  r.header(TYPE_PREPARED_EVAL_MODEL, [1]);
  const recordBytes = r.bytes(256 * 1024, 'record');
  const model = r.bytes(MAX_EVAL_MODEL_BYTES, 'model');
  const document = parseScenarioSetDocument({ json: r.bytes(MAX_SCENARIO_SET_BYTES, 'scenarios') });
  r.end();
  const opened = openEvalModelRecord({ bytes: recordBytes, trustedKeys: [await pinnedOfficerKey(options.vault)] });
  verifyEvalModelBlobs({ record: opened.record, model });
  return { record: opened.record, fingerprint: opened.fingerprint, model, document };
}

export async function preparedEvalModelSummary(options: { vault: Vault; fleetId: string }): Promise<EvalModelSummary | null> {
  return options.vault.getPublic<EvalModelSummary>(EVAL_MODEL_IDS.summary(options.fleetId));
}

/** Forgets a fleet's prepared model (e.g. after it was retired): reviews use the reference task again. */
export async function forgetEvalModel(options: { vault: Vault; fleetId: string }): Promise<void> {
  await options.vault.deletePrefix(EVAL_MODEL_IDS.secret(options.fleetId));
  await options.vault.deletePrefix(EVAL_MODEL_IDS.summary(options.fleetId));
}
