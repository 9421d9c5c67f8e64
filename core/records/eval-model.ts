// The evaluation model record: the officer-signed (ML-DSA-65) statement that a fleet's reviews may use a
// customer's ONNX evaluation model and encrypted scenario set. It names the model's SHA-256 and contract
// (core/eval/customer-contract.ts), the SHA-256 of the scenario set's ciphertext and the ML-KEM-768 wraps
// of its content key, so a model or scenario set the server swapped is refused at review.
//
// body: "TG" 0x40 0x01 | modelId, orgId, fleetId str64 | name str(128) | modelSha256 [32] | modelBytes u64 |
//       obsDim u32 | actDim u32 | logStdPerState bool | modules list(256){ name str(200), in u32, out u32 } |
//       scenariosSha256 [32] | scenariosBytes u64 | wraps list(64){ recipient [32] = SHA-256(KEM public
//       key), kemCiphertext [1088], wrappedKey [48] } | createdAt u64
// Fingerprint domain `eval-model/v1`. Type 0x40 keeps clear of the numbered records and of 0x20/0x30.
//
// Scenario set confidentiality (the release payload pattern, core/crypto/kem.ts):
//   plaintext = canonical JSON of the validated set (core/eval/customer-scenarios.ts)
//   sealed    = AES-256-GCM(contentKey, random nonce, aad = context).encrypt(plaintext)
//   wraps     = ML-KEM-768 wrap of contentKey to each recipient officer KEM key, context as above
//   context   = "tensorguard/eval-scenarios/v1" 0x00 orgId 0x00 fleetId 0x00 modelId
// The officer's KEM key pair is derived from the officer's attestation root (HKDF-SHA256, info
// "tensorguard/officer-kem/v1", 64 bytes -> ML-KEM-768 keygen seed), so the CLI home and the PWA's key
// store — and every key backup — hold it without a new secret to manage. Only the CLI process and the
// PWA's eval worker, which hold the attestation root, can open a scenario set.
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 as sha256Hash } from '@noble/hashes/sha2.js';
import { ByteReader, ByteWriter } from '../codec/binary.ts';
import { fingerprint, sha256 } from '../codec/fingerprint.ts';
import { DecryptionError, FormatError, IntegrityError, expectBytes } from '../errors.ts';
import { bytesToHex, concatBytes, equalBytes, utf8ToBytes } from '../bytes.ts';
import { randomBytes } from '../random.ts';
import { KEM_SIZES, generateKemKeyPair, openPayload, sealPayload, unwrapContentKey, wrapContentKey, type KemKeyPair } from '../crypto/kem.ts';
import { openSignedRecord, signRecord } from './signed.ts';
import { MAX_EVAL_MODEL_BYTES, MAX_EVAL_MODEL_MODULES, type EvalModelContract } from '../eval/customer-contract.ts';
import { MAX_SCENARIO_SET_BYTES, encodeScenarioSetDocument, parseScenarioSetDocument, type ScenarioSetDocument } from '../eval/customer-scenarios.ts';

export const EVAL_MODEL_RECORD_TYPE = 0x40;
export const EVAL_MODEL_DOMAIN = 'eval-model/v1';
export const MAX_EVAL_MODEL_WRAPS = 64;
const MAX_BODY = 256 * 1024;
/** GCM nonce + tag around the plaintext. */
const SEAL_OVERHEAD = 12 + 16;
const KEM_DERIVE_INFO = utf8ToBytes('tensorguard/officer-kem/v1');

export interface EvalModelWrap {
  /** SHA-256 of the recipient's ML-KEM-768 public key. */
  recipient: Uint8Array;
  kemCiphertext: Uint8Array;
  wrappedKey: Uint8Array;
}

export interface EvalModelRecord {
  modelId: string;
  orgId: string;
  fleetId: string;
  name: string;
  modelSha256: Uint8Array;
  modelBytes: number;
  contract: EvalModelContract;
  /** SHA-256 of the sealed scenario set (the ciphertext the server stores). */
  scenariosSha256: Uint8Array;
  scenariosBytes: number;
  wraps: EvalModelWrap[];
  createdAt: number;
}

export function encodeEvalModelRecord(options: { record: EvalModelRecord }): Uint8Array {
  const m = options.record;
  if (typeof m.name !== 'string' || m.name.trim().length === 0) throw new TypeError('"name" expected non-empty string, got empty');
  if (!(m.modelBytes >= 1 && m.modelBytes <= MAX_EVAL_MODEL_BYTES)) throw new RangeError(`"modelBytes" expected 1..${MAX_EVAL_MODEL_BYTES}, got ${m.modelBytes}`);
  if (!(m.scenariosBytes > SEAL_OVERHEAD && m.scenariosBytes <= MAX_SCENARIO_SET_BYTES + SEAL_OVERHEAD))
    throw new RangeError(`"scenariosBytes" expected ${SEAL_OVERHEAD + 1}..${MAX_SCENARIO_SET_BYTES + SEAL_OVERHEAD}, got ${m.scenariosBytes}`);
  if (m.wraps.length === 0) throw new RangeError('"wraps" expected at least one recipient, got none');
  if (m.contract.modules.length === 0) throw new RangeError('"contract.modules" expected at least one module, got none');
  return new ByteWriter()
    .header(EVAL_MODEL_RECORD_TYPE, 1)
    .str(m.modelId, 64)
    .str(m.orgId, 64)
    .str(m.fleetId, 64)
    .str(m.name, 128)
    .fixed(m.modelSha256, 32)
    .u64(m.modelBytes)
    .u32(m.contract.obsDim)
    .u32(m.contract.actDim)
    .bool(m.contract.logStdPerState)
    .list(m.contract.modules, MAX_EVAL_MODEL_MODULES, (w, x) => {
      w.str(x.name, 200).u32(x.inFeatures).u32(x.outFeatures);
    })
    .fixed(m.scenariosSha256, 32)
    .u64(m.scenariosBytes)
    .list(m.wraps, MAX_EVAL_MODEL_WRAPS, (w, x) => {
      w.fixed(x.recipient, 32).fixed(x.kemCiphertext, KEM_SIZES.ciphertext).fixed(x.wrappedKey, KEM_SIZES.wrappedKey);
    })
    .u64(m.createdAt)
    .finish();
}

export function decodeEvalModelRecord(options: { bytes: Uint8Array }): EvalModelRecord {
  const r = new ByteReader(options.bytes, 'evaluation model record');
  r.header(EVAL_MODEL_RECORD_TYPE, [1]);
  const out: EvalModelRecord = {
    modelId: r.str(64, 'modelId'),
    orgId: r.str(64, 'orgId'),
    fleetId: r.str(64, 'fleetId'),
    name: r.str(128, 'name'),
    modelSha256: r.fixed(32, 'modelSha256'),
    modelBytes: r.u64('modelBytes'),
    contract: {
      obsDim: r.u32('obsDim'),
      actDim: r.u32('actDim'),
      logStdPerState: r.bool('logStdPerState'),
      modules: r.list(MAX_EVAL_MODEL_MODULES, (rr) => ({ name: rr.str(200, 'module'), inFeatures: rr.u32('inFeatures'), outFeatures: rr.u32('outFeatures') }), 'modules'),
    },
    scenariosSha256: r.fixed(32, 'scenariosSha256'),
    scenariosBytes: r.u64('scenariosBytes'),
    wraps: r.list(MAX_EVAL_MODEL_WRAPS, (rr) => ({ recipient: rr.fixed(32, 'recipient'), kemCiphertext: rr.fixed(KEM_SIZES.ciphertext, 'kemCiphertext'), wrappedKey: rr.fixed(KEM_SIZES.wrappedKey, 'wrappedKey') }), 'wraps'),
    createdAt: r.u64('createdAt'),
  };
  r.end();
  if (out.name.trim().length === 0) throw new FormatError('evaluation model record: name must not be empty');
  if (out.modelBytes < 1 || out.modelBytes > MAX_EVAL_MODEL_BYTES) throw new FormatError(`evaluation model record: modelBytes ${out.modelBytes} out of range`);
  if (out.scenariosBytes <= SEAL_OVERHEAD || out.scenariosBytes > MAX_SCENARIO_SET_BYTES + SEAL_OVERHEAD) throw new FormatError(`evaluation model record: scenariosBytes ${out.scenariosBytes} out of range`);
  if (out.wraps.length === 0) throw new FormatError('evaluation model record: no recipient for the scenario key');
  if (out.contract.modules.length === 0) throw new FormatError('evaluation model record: the contract has no module');
  return out;
}

export function evalModelFingerprint(options: { record: EvalModelRecord }): Uint8Array {
  return fingerprint({ domain: EVAL_MODEL_DOMAIN, bytes: encodeEvalModelRecord(options) });
}

export function signEvalModelRecord(options: { record: EvalModelRecord; secretKey: Uint8Array; publicKey: Uint8Array }): Uint8Array {
  return signRecord({
    type: EVAL_MODEL_RECORD_TYPE,
    domain: EVAL_MODEL_DOMAIN,
    body: encodeEvalModelRecord({ record: options.record }),
    algorithm: 'ml-dsa-65',
    secretKey: options.secretKey,
    publicKey: options.publicKey,
    maxBody: MAX_BODY,
  });
}

/**
 * Parses and verifies a signed evaluation model record (ML-DSA-65; a signer among `trustedKeys` when
 * given: SignatureInvalidError / UntrustedSignerError otherwise).
 */
export function openEvalModelRecord(options: { bytes: Uint8Array; trustedKeys?: readonly Uint8Array[] }): { record: EvalModelRecord; fingerprint: Uint8Array; signerPublicKey: Uint8Array } {
  const { envelope, fingerprint: fp } = openSignedRecord({
    bytes: options.bytes,
    type: EVAL_MODEL_RECORD_TYPE,
    domain: EVAL_MODEL_DOMAIN,
    algorithm: 'ml-dsa-65',
    maxBody: MAX_BODY,
    trustedKeys: options.trustedKeys,
    what: 'evaluation model record',
  });
  return { record: decodeEvalModelRecord({ bytes: envelope.body }), fingerprint: fp, signerPublicKey: envelope.signerPublicKey };
}

/** The officer's ML-KEM-768 key pair, derived from the attestation root (see the header). */
export function deriveOfficerKemKeyPair(options: { attestRoot: Uint8Array }): KemKeyPair {
  const root = expectBytes('attestRoot', options.attestRoot, 32);
  return generateKemKeyPair({ seed: hkdf(sha256Hash, root, undefined, KEM_DERIVE_INFO, 64) });
}

export function kemRecipientId(options: { publicKey: Uint8Array }): Uint8Array {
  return sha256(expectBytes('publicKey', options.publicKey, KEM_SIZES.publicKey));
}

function scenarioContext(ids: { orgId: string; fleetId: string; modelId: string }): Uint8Array {
  return concatBytes(utf8ToBytes('tensorguard/eval-scenarios/v1'), new Uint8Array([0]), utf8ToBytes(ids.orgId), new Uint8Array([0]), utf8ToBytes(ids.fleetId), new Uint8Array([0]), utf8ToBytes(ids.modelId));
}

/** Encrypts a validated scenario set under a fresh content key wrapped to every recipient KEM key. */
export function sealScenarioSet(options: { document: ScenarioSetDocument; orgId: string; fleetId: string; modelId: string; recipients: readonly Uint8Array[] }): { sealed: Uint8Array; wraps: EvalModelWrap[] } {
  if (options.recipients.length === 0 || options.recipients.length > MAX_EVAL_MODEL_WRAPS)
    throw new RangeError(`"recipients" expected 1..${MAX_EVAL_MODEL_WRAPS} KEM public keys, got ${options.recipients.length}`);
  const context = scenarioContext(options);
  const contentKey = randomBytes(32);
  const plaintext = encodeScenarioSetDocument({ document: options.document });
  const sealed = sealPayload({ key: contentKey, plaintext, aad: context });
  const wraps = options.recipients.map((pk) => ({ recipient: kemRecipientId({ publicKey: pk }), ...wrapContentKey({ contentKey, recipientPublicKey: pk, context }) }));
  contentKey.fill(0);
  return { sealed, wraps };
}

/**
 * Checks blobs against the signed record: the model's and the ciphertext's SHA-256 and sizes.
 * IntegrityError names which one is not what the officer signed.
 */
export function verifyEvalModelBlobs(options: { record: EvalModelRecord; model?: Uint8Array; sealed?: Uint8Array }): void {
  const { record, model, sealed } = options;
  if (model !== undefined && (model.length !== record.modelBytes || !equalBytes(sha256(model), record.modelSha256)))
    throw new IntegrityError(`the evaluation model is not the one the officer signed (SHA-256 ${bytesToHex(sha256(model))}, signed ${bytesToHex(record.modelSha256)})`);
  if (sealed !== undefined && (sealed.length !== record.scenariosBytes || !equalBytes(sha256(sealed), record.scenariosSha256)))
    throw new IntegrityError(`the scenario set ciphertext is not the one the officer signed (SHA-256 ${bytesToHex(sha256(sealed))}, signed ${bytesToHex(record.scenariosSha256)})`);
}

/**
 * Decrypts the scenario set of a verified record with an officer's KEM key pair: the ciphertext must be
 * the signed one (IntegrityError), wrapped to this key (DecryptionError), unaltered (DecryptionError),
 * and a valid scenario set (FormatError).
 */
export function openScenarioSet(options: { record: EvalModelRecord; sealed: Uint8Array; kem: KemKeyPair }): ScenarioSetDocument {
  const { record, sealed, kem } = options;
  verifyEvalModelBlobs({ record, sealed });
  const me = kemRecipientId({ publicKey: kem.publicKey });
  const wrap = record.wraps.find((w) => equalBytes(w.recipient, me));
  if (!wrap) throw new DecryptionError('the scenario set is not encrypted to this officer key');
  const context = scenarioContext(record);
  const contentKey = unwrapContentKey({ kemCiphertext: wrap.kemCiphertext, wrappedKey: wrap.wrappedKey, secretKey: kem.secretKey, context });
  try {
    return parseScenarioSetDocument({ json: openPayload({ key: contentKey, sealed, aad: context }) });
  } finally {
    contentKey.fill(0);
  }
}

/**
 * Builds a complete registration: seals the scenario set to the recipients, describes the model, and
 * signs the record. `model` must already have passed validateEvalModel (its `contract`).
 */
export function buildSignedEvalModel(options: {
  modelId: string;
  orgId: string;
  fleetId: string;
  name: string;
  model: Uint8Array;
  contract: EvalModelContract;
  document: ScenarioSetDocument;
  recipients: readonly Uint8Array[];
  signer: { publicKey: Uint8Array; secretKey: Uint8Array };
  createdAt: number;
}): { record: EvalModelRecord; signed: Uint8Array; sealed: Uint8Array; fingerprint: Uint8Array } {
  const { sealed, wraps } = sealScenarioSet({ document: options.document, orgId: options.orgId, fleetId: options.fleetId, modelId: options.modelId, recipients: options.recipients });
  const record: EvalModelRecord = {
    modelId: options.modelId,
    orgId: options.orgId,
    fleetId: options.fleetId,
    name: options.name,
    modelSha256: sha256(options.model),
    modelBytes: options.model.length,
    contract: options.contract,
    scenariosSha256: sha256(sealed),
    scenariosBytes: sealed.length,
    wraps,
    createdAt: options.createdAt,
  };
  const signed = signEvalModelRecord({ record, secretKey: options.signer.secretKey, publicKey: options.signer.publicKey });
  return { record, signed, sealed, fingerprint: evalModelFingerprint({ record }) };
}
