// Storage of customer evaluation models (server/routes/evaluation-models.ts): one row per officer-signed
// record, the blobs (ONNX model, scenario set ciphertext) in the blob store by SHA-256. Every query is
// scoped by org_id; a fleet's active model is its newest row that is not retired.
import { and, desc, eq, isNull } from 'drizzle-orm';
import { evaluationModels } from './schema.ts';
import { isUniqueViolation, toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';

export interface EvaluationModelView {
  id: string;
  fleetId: string;
  name: string;
  fingerprint: string;
  signerKeySha256: string;
  modelSha256: string;
  modelBytes: number;
  scenariosSha256: string;
  scenariosBytes: number;
  createdBy: string;
  createdAt: number;
  retiredBy: string | null;
  retiredAt: number | null;
  retireReason: string | null;
  record: Uint8Array;
}

function view(r: typeof evaluationModels.$inferSelect): EvaluationModelView {
  return {
    id: r.modelId,
    fleetId: r.fleetId,
    name: r.name,
    fingerprint: r.fingerprint,
    signerKeySha256: r.signerKeySha256,
    modelSha256: r.modelSha256,
    modelBytes: r.modelBytes,
    scenariosSha256: r.scenariosSha256,
    scenariosBytes: r.scenariosBytes,
    createdBy: r.createdBy,
    createdAt: r.createdAt,
    retiredBy: r.retiredBy,
    retiredAt: r.retiredAt,
    retireReason: r.retireReason,
    record: toBytes(r.record),
  };
}

/** Inserts a registered model and its audit leaf in one transaction; 409 `eval_model_exists` for a known id or record. */
export async function createEvaluationModel(options: {
  db: Database;
  orgId: string;
  actor: AuditActor;
  pk: string;
  model: Omit<EvaluationModelView, 'createdBy' | 'createdAt' | 'retiredBy' | 'retiredAt' | 'retireReason'>;
  now: number;
}): Promise<EvaluationModelView> {
  const { model: m, now } = options;
  const row = {
    id: options.pk,
    orgId: options.orgId,
    modelId: m.id,
    fleetId: m.fleetId,
    name: m.name,
    record: toBuffer(m.record),
    fingerprint: m.fingerprint,
    signerKeySha256: m.signerKeySha256,
    modelSha256: m.modelSha256,
    modelBytes: m.modelBytes,
    scenariosSha256: m.scenariosSha256,
    scenariosBytes: m.scenariosBytes,
    createdBy: options.actor.id,
    createdAt: now,
  };
  try {
    await options.db.transaction(async (tx) => {
      await tx.insert(evaluationModels).values(row).run();
      await appendAudit({
        db: tx,
        orgId: options.orgId,
        actor: options.actor,
        action: 'evaluation_model.register',
        target: m.id,
        details: { fleetId: m.fleetId, name: m.name, fingerprint: m.fingerprint, modelSha256: m.modelSha256, scenariosSha256: m.scenariosSha256 },
        now,
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'eval_model_exists', message: `evaluation model ${m.id} (or this signed record) is already registered` });
    throw error;
  }
  return view({ ...row, retiredBy: null, retiredAt: null, retireReason: null });
}

export async function getEvaluationModel(options: { db: Executor; orgId: string; modelId: string }): Promise<EvaluationModelView | null> {
  const row = await options.db
    .select()
    .from(evaluationModels)
    .where(and(eq(evaluationModels.orgId, options.orgId), eq(evaluationModels.modelId, options.modelId)))
    .get();
  return row ? view(row) : null;
}

/** A fleet's models, newest first. */
export async function listEvaluationModels(options: { db: Executor; orgId: string; fleetId: string }): Promise<EvaluationModelView[]> {
  const rows = await options.db
    .select()
    .from(evaluationModels)
    .where(and(eq(evaluationModels.orgId, options.orgId), eq(evaluationModels.fleetId, options.fleetId)))
    .orderBy(desc(evaluationModels.createdAt), desc(evaluationModels.id))
    .all();
  return rows.map(view);
}

/** Retires a model (it stays listed and downloadable for past reviews, but is no longer the fleet's active model). */
export async function retireEvaluationModel(options: { db: Database; orgId: string; actor: AuditActor; modelId: string; reason: string; now: number }): Promise<EvaluationModelView | null> {
  const { db, orgId, now } = options;
  return db.transaction(async (tx) => {
    const updated = await tx
      .update(evaluationModels)
      .set({ retiredBy: options.actor.id, retiredAt: now, retireReason: options.reason })
      .where(and(eq(evaluationModels.orgId, orgId), eq(evaluationModels.modelId, options.modelId), isNull(evaluationModels.retiredAt)))
      .returning()
      .all();
    if (updated.length === 0) return null;
    await appendAudit({ db: tx, orgId, actor: options.actor, action: 'evaluation_model.retire', target: options.modelId, details: { fleetId: updated[0]!.fleetId, reason: options.reason }, now });
    return view(updated[0]!);
  });
}
