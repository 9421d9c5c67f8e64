// The model registry's storage: base models (fingerprint, task types, version) and the raw rows a
// lineage is derived from — releases with their rounds, the rounds' decisions and the rollouts
// (promotion, rollback) that followed. Derivation (manifest fields, gate metrics) is the route's job.
import { and, asc, desc, eq, inArray } from 'drizzle-orm';
import { registryBaseModels, releaseRollouts, releases, roundDecisions, rounds } from './schema.ts';
import { isUniqueViolation, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';

export interface BaseModelView {
  id: string;
  fingerprint: string;
  name: string;
  taskTypes: string[];
  version: string;
  createdBy: string;
  createdAt: number;
}

function baseModelView(r: typeof registryBaseModels.$inferSelect): BaseModelView {
  return { id: r.id, fingerprint: r.fingerprint, name: r.name, taskTypes: r.taskTypes as string[], version: r.version, createdBy: r.createdBy, createdAt: r.createdAt };
}

/** Registers a base model; a fingerprint is registered once per organization (409 `base_model_exists`). */
export async function createBaseModel(options: { db: Database; orgId: string; id: string; actor: AuditActor; model: { fingerprint: string; name: string; taskTypes: string[]; version: string }; now: number }): Promise<BaseModelView> {
  const row = { id: options.id, orgId: options.orgId, ...options.model, createdBy: options.actor.id, createdAt: options.now };
  try {
    await options.db.transaction(async (tx) => {
      await tx.insert(registryBaseModels).values(row).run();
      await appendAudit({ db: tx, orgId: options.orgId, actor: options.actor, action: 'registry.base_model', target: options.id, details: { ...options.model }, now: options.now });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'base_model_exists', message: `a base model with fingerprint ${options.model.fingerprint} is already registered` });
    throw error;
  }
  return baseModelView(row);
}

export async function listBaseModels(options: { db: Executor; orgId: string }): Promise<BaseModelView[]> {
  const rows = await options.db.select().from(registryBaseModels).where(eq(registryBaseModels.orgId, options.orgId)).orderBy(asc(registryBaseModels.createdAt)).all();
  return rows.map(baseModelView);
}

export interface LineageRow {
  release: { releaseId: string; fleetId: string; releaseVersion: number; kind: string; manifest: Uint8Array; fingerprint: Uint8Array; payloadSha256: string; createdBy: string; createdAt: number };
  round: { roundId: string; state: string; config: Uint8Array; quorum: number; contributionCount: number; aggregateSha256: string | null; createdAt: number; finalizedAt: number | null };
  decision: { kind: string; createdBy: string; createdAt: number } | null;
  rollout: { kind: string; fromReleaseId: string; restoresVersion: number | null } | null;
}

/** Every release of a fleet (newest first) with its round, the round's decision and how it was staged. */
export async function listLineage(options: { db: Executor; orgId: string; fleetId: string }): Promise<LineageRow[]> {
  const rows = await options.db
    .select({ release: releases, round: rounds })
    .from(releases)
    .innerJoin(rounds, eq(rounds.id, releases.roundPk))
    .where(and(eq(releases.orgId, options.orgId), eq(releases.fleetId, options.fleetId)))
    .orderBy(desc(releases.releaseVersion))
    .all();
  if (rows.length === 0) return [];
  const roundPks = [...new Set(rows.map((r) => r.round.id))];
  const decisions = await options.db.select().from(roundDecisions).where(and(eq(roundDecisions.orgId, options.orgId), inArray(roundDecisions.roundPk, roundPks))).all();
  const byRound = new Map(decisions.map((d) => [d.roundPk, d]));
  const rollouts = await options.db
    .select()
    .from(releaseRollouts)
    .where(and(eq(releaseRollouts.orgId, options.orgId), inArray(releaseRollouts.releaseId, rows.map((r) => r.release.releaseId))))
    .all();
  const byRelease = new Map(rollouts.map((r) => [r.releaseId, r]));
  return rows.map(({ release: rel, round }) => {
    const d = byRound.get(round.id);
    const ro = byRelease.get(rel.releaseId);
    return {
      release: {
        releaseId: rel.releaseId,
        fleetId: rel.fleetId,
        releaseVersion: rel.releaseVersion,
        kind: rel.kind,
        manifest: toBytes(rel.manifest),
        fingerprint: toBytes(rel.fingerprint),
        payloadSha256: rel.payloadSha256,
        createdBy: rel.createdBy,
        createdAt: rel.createdAt,
      },
      round: {
        roundId: round.roundId,
        state: round.state,
        config: toBytes(round.config),
        quorum: round.quorum,
        contributionCount: round.contributionCount,
        aggregateSha256: round.aggregateSha256,
        createdAt: round.createdAt,
        finalizedAt: round.finalizedAt,
      },
      decision: d ? { kind: d.kind, createdBy: d.createdBy, createdAt: d.createdAt } : null,
      rollout: ro ? { kind: ro.kind, fromReleaseId: ro.fromReleaseId, restoresVersion: ro.restoresVersion } : null,
    };
  });
}
