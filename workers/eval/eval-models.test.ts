// The eval worker's customer-model store against an in-memory key store: prepare verifies against the
// pinned officer key and the fleet, decrypts with the KEM key derived from the stored attestation root,
// keeps model + set (secret) and a summary (public); load re-verifies; forget removes exactly one fleet.
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { IntegrityError, UntrustedSignerError } from '../../core/errors.ts';
import { buildSignedEvalModel, deriveOfficerKemKeyPair } from '../../core/records/eval-model.ts';
import { validateEvalModel } from '../../core/eval/customer-contract.ts';
import { buildCustomerTestModel, testScenarioSetDocument } from '../../core/eval/customer-test-models.ts';
import type { OrtModuleLike } from '../../core/eval/runners.ts';
import { PUBLIC_IDS, SECRET_IDS } from '../keystore/officer-keys.ts';
import type { Vault } from '../keystore/vault.ts';
import { EVAL_MODEL_IDS, forgetEvalModel, loadPreparedEvalModel, prepareEvalModel, preparedEvalModelSummary } from './eval-models.ts';

function memoryVault(): Vault & { secrets: Map<string, Uint8Array> } {
  const secrets = new Map<string, Uint8Array>();
  const publics = new Map<string, unknown>();
  return {
    secrets,
    async putSecret(id, bytes) {
      secrets.set(id, new Uint8Array(bytes));
    },
    async getSecret(id) {
      return secrets.get(id) ?? null;
    },
    async hasSecret(id) {
      return secrets.has(id);
    },
    async putPublic(id, value) {
      publics.set(id, value);
    },
    async getPublic<T>(id: string) {
      return (publics.get(id) as T) ?? null;
    },
    async listPublics<T>(prefix: string) {
      return [...publics].filter(([k]) => k.startsWith(prefix)).map(([id, value]) => ({ id, value: value as T }));
    },
    async deletePrefix(prefix) {
      for (const k of [...secrets.keys()]) if (k.startsWith(prefix)) secrets.delete(k);
      for (const k of [...publics.keys()]) if (k.startsWith(prefix)) publics.delete(k);
    },
  };
}

describe('prepared evaluation models in the eval worker', () => {
  it('prepares, loads, refuses foreign signers and other fleets, and forgets one fleet only', async () => {
    ort.env.wasm.numThreads = 1;
    const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const root = new Uint8Array(32).fill(3);
    const vault = memoryVault();
    await vault.putPublic(PUBLIC_IDS.dsa, officer.publicKey);
    await vault.putSecret(SECRET_IDS.attestRoot, root);
    const model = buildCustomerTestModel({ label: 'worker', hidden: 16 });
    const contract = await validateEvalModel({ ort: ort as unknown as OrtModuleLike, model });
    const document = testScenarioSetDocument({ label: 'worker', count: 1 });
    const reg = (signer = officer, fleetId = 'flt_a') =>
      buildSignedEvalModel({ modelId: `em-${fleetId}`, orgId: 'org', fleetId, name: 'line', model, contract, document, recipients: [deriveOfficerKemKeyPair({ attestRoot: root }).publicKey], signer, createdAt: 1 });

    const a = reg();
    const summary = await prepareEvalModel({ vault, fleetId: 'flt_a', record: a.signed, model, sealed: a.sealed, now: 5 });
    expect(summary).toMatchObject({ id: 'em-flt_a', name: 'line', scenarioSetName: document.name, sets: [{ name: 'line-nominal', role: 'nominal', scenarios: 1 }, { name: 'line-site-b', role: 'site', scenarios: 1 }, { name: 'line-ood', role: 'ood', scenarios: 1 }] });
    expect(await preparedEvalModelSummary({ vault, fleetId: 'flt_a' })).toEqual(summary);
    const loaded = await loadPreparedEvalModel({ vault, fleetId: 'flt_a' });
    expect(loaded!.document).toEqual(JSON.parse(JSON.stringify(document)));
    expect(loaded!.model).toEqual(model);
    // The plaintext set is kept only as a key-store secret, never in the public summary.
    expect(JSON.stringify(summary)).not.toContain('initialJoints');

    // Another fleet's record for this fleet, a foreign signer: refused, nothing stored.
    const b = reg(officer, 'flt_b');
    await expect(prepareEvalModel({ vault, fleetId: 'flt_a', record: b.signed, model, sealed: b.sealed, now: 6 })).rejects.toThrow(IntegrityError);
    const mallory = reg(generateSigningKeyPair({ algorithm: 'ml-dsa-65' }), 'flt_c');
    await expect(prepareEvalModel({ vault, fleetId: 'flt_c', record: mallory.signed, model, sealed: mallory.sealed, now: 6 })).rejects.toThrow(UntrustedSignerError);
    expect(await loadPreparedEvalModel({ vault, fleetId: 'flt_c' })).toBeNull();

    // A swapped model in the store is caught when loading.
    await prepareEvalModel({ vault, fleetId: 'flt_b', record: b.signed, model, sealed: b.sealed, now: 7 });
    const stored = vault.secrets.get(EVAL_MODEL_IDS.secret('flt_b'))!;
    const at = Buffer.from(stored).indexOf(Buffer.from(model.subarray(0, 64))) + 100;
    expect(at).toBeGreaterThan(100);
    stored[at] = stored[at]! ^ 1;
    await expect(loadPreparedEvalModel({ vault, fleetId: 'flt_b' })).rejects.toThrow(IntegrityError);

    // Forgetting flt_a leaves flt_b's entries (ids end in "/", so no fleet id is a prefix of another's).
    await forgetEvalModel({ vault, fleetId: 'flt_a' });
    expect(await loadPreparedEvalModel({ vault, fleetId: 'flt_a' })).toBeNull();
    expect(await preparedEvalModelSummary({ vault, fleetId: 'flt_b' })).not.toBeNull();
  }, 60_000);
});
