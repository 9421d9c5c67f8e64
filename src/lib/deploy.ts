// Deployment views' JSON (GET /v1/registry/lineage, /v1/releases/:id/canary, /v1/safety/decisions) and
// the promotion/rollback flow: the signing worker re-opens the release it signed and signs the next
// version; the page posts it. Nothing here sees a key: the worker returns signed bytes only.
import { getJson, postJson } from './api.ts';
import { moving, signingWorker } from './workers.ts';
import { releaseRobots } from './robots.ts';
import { fromBase64, toBase64 } from '../../core/bytes.ts';
import type { RobotJson } from './types.ts';

export interface ModelVersionJson {
  modelVersion: number;
  releaseId: string;
  kind: 'release' | 'rollback';
  stage: 'canary' | 'full' | 'promoted' | 'superseded';
  canaryFraction: number;
  wrappedRobots: number;
  rollbackOf: number;
  adapterSha256: string;
  manifestFingerprint: string;
  createdAt: number;
  createdBy: string;
  rollout: { kind: string; fromReleaseId: string; restoresVersion: number | null } | null;
  round: { roundId: string; state: string; trainingStage: string | null; quorum: number; contributions: number; openedAt: number; finalizedAt: number | null };
  aggregate: { sha256: string | null; contributions: number };
  review: { decision: string | null; decidedBy: string | null; decidedAt: number | null; gate: { gate?: { status: string; metrics: Array<{ name: string; value: number }>; failed: string[]; override: { reason: string } | null }; formatVersion?: number } | null };
  baseModel: { fingerprint: string; id: string | null; name: string | null; version: string | null };
}
export interface LineageJson {
  fleetId: string;
  liveVersion: number | null;
  versions: ModelVersionJson[];
}
export interface BaseModelJson {
  id: string;
  fingerprint: string;
  name: string;
  taskTypes: string[];
  version: string;
  createdAt: number;
}
export interface TriggerJson {
  name: 'error_rate' | 'latency_p99' | 'safety_events';
  value: number;
  threshold: number;
  robots: string[];
}
export interface CanaryJson {
  releaseId: string;
  fleetId: string;
  releaseVersion: number;
  kind: string;
  canaryFraction: number;
  stage: 'canary' | 'full' | 'promoted' | 'rolled_back' | 'superseded';
  liveVersion: number;
  adapterSha256: string;
  thresholds: { maxErrorRate: number; maxP99Ms: number; maxSafetyEvents: number; source: 'default' | 'fleet'; updatedAt: number | null };
  robots: Array<{ robotId: string; name: string; canary: boolean; wrapped: boolean; status: string | null; deliveredAt: number | null; runs: number; errors: number; latencyP99Ms: number; safetyEvents: number }>;
  telemetry: Array<{ robotId: string; runs: number; errors: number; latencyP99Ms: number; safetyEvents: number; reportedAt: number }>;
  verdict: { rollback: boolean; triggers: TriggerJson[]; totals: { robots: number; runs: number; errors: number; errorRate: number; worstP99Ms: number; safetyEvents: number } };
  followUps: Array<{ releaseId: string; kind: string; restoresVersion: number | null; createdAt: number }>;
}
export interface SafetyDecisionsJson {
  fleetId: string | null;
  since: number;
  countingSince: number;
  approvals: number;
  denials: number;
  hourly: Array<{ hour: number; approve: number; deny: number }>;
  recentDenials: Array<{ seq: number; robotId: string; target: string; at: number; failed: string[]; details: Record<string, unknown> }>;
}

export const TRIGGER_LABELS: Record<TriggerJson['name'], string> = { error_rate: 'Error rate', latency_p99: 'p99 latency (ms)', safety_events: 'Safety events' };

/**
 * Signs and posts a promotion of `releaseId` or a rollback of its fleet to version `toVersion`, as the
 * fleet's next version. Returns the server's answer (the staged release's id and version).
 */
export async function signAndPostStaged(options: { kind: 'promotion'; releaseId: string; liveVersion: number } | { kind: 'rollback'; fleetId: string; toReleaseId: string; liveVersion: number }): Promise<{ releaseId: string; releaseVersion: number; kind: string; wrappedRobots: number }> {
  const sourceId = options.kind === 'promotion' ? options.releaseId : options.toReleaseId;
  const source = await getJson<{ fleetId: string; manifest: string; payload: string }>(`/v1/releases/${encodeURIComponent(sourceId)}`);
  const robots = releaseRobots(await getJson<RobotJson[]>(`/v1/robots?fleet=${encodeURIComponent(source.fleetId)}`));
  const manifest = fromBase64(source.manifest);
  const payload = fromBase64(source.payload);
  const signed = await signingWorker().signStagedRelease(moving({ kind: options.kind, source: { manifest, payload }, releaseVersion: options.liveVersion + 1, robots }, [manifest, payload]));
  const path = options.kind === 'promotion' ? `/v1/releases/${encodeURIComponent(options.releaseId)}/promote` : `/v1/fleets/${encodeURIComponent(options.fleetId)}/rollback`;
  return postJson(path, { manifest: toBase64(signed.manifest), payload: toBase64(signed.payload) });
}
