// The model registry and the safety-decision summary (OpenAPI routes, @hono/zod-openapi):
//   GET  /registry/models            officer/admin/auditor: the organization's base models
//   POST /registry/models            officer: register a base model (fingerprint, task types, version)
//   GET  /registry/lineage?fleet=    officer/admin/auditor: every model version of a fleet with its lineage
//                                    round -> aggregate -> review (decision, gate metrics) -> release -> version
//   GET  /safety/decisions?fleet=&hours=  officer/admin/auditor: approvals and denials per hour, recent denials
// Lineage is derived from what the server already stores: the round row and its signed config (base
// model fingerprint, training stage), the round's decision, the stored release manifest bytes (whatever
// fields the manifest version carries beyond v1 — the gate metrics of manifest v2 — are passed through
// as `gate`), and the rollout rows of promotions and rollbacks (server/db/canary.ts).
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { NotFoundError } from '../../core/errors.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { ByteReader } from '../../core/codec/binary.ts';
import { readSignedEnvelope, RecordType } from '../../core/records/signed.ts';
import { decodeReleaseManifest, type ReleaseManifest } from '../../core/records/release-manifest.ts';
import { openRoundConfig } from '../../core/records/round-config.ts';
import { createBaseModel, listBaseModels, listLineage, type LineageRow } from '../db/registry.ts';
import { safetyDenials } from '../db/canary.ts';
import { getFleet } from '../db/fleets.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { MiB, SMALL_JSON_LIMIT, limitBody } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { onSafetyDecision } from './safety.ts';

const READERS = ['officer', 'admin', 'auditor'] as const;
const V1_FIELDS = new Set(['releaseId', 'orgId', 'fleetId', 'roundId', 'releaseVersion', 'kind', 'rollbackOf', 'adapterSha256', 'payloadSha256', 'canaryFraction', 'createdAt', 'wraps']);

/** A stored release manifest's body (its signature was verified when it was posted). */
export function storedReleaseManifest(bytes: Uint8Array): ReleaseManifest {
  const envelope = readSignedEnvelope({ reader: new ByteReader(bytes, 'release manifest'), type: RecordType.releaseManifest, maxBody: 8 * MiB });
  return decodeReleaseManifest({ bytes: envelope.body });
}

/** JSON-safe copy of manifest fields (bytes as hex). */
function jsonSafe(value: unknown): unknown {
  if (value instanceof Uint8Array) return bytesToHex(value);
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** The manifest fields beyond v1: the gate verdict and metrics of manifest v2 (null for a v1 manifest). */
export function gateOf(manifest: ReleaseManifest): Record<string, unknown> | null {
  const extra = Object.entries(manifest).filter(([k]) => !V1_FIELDS.has(k));
  return extra.length ? (jsonSafe(Object.fromEntries(extra)) as Record<string, unknown>) : null;
}

const Error = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');
const errors = {
  400: { description: 'malformed request', content: { 'application/json': { schema: Error } } },
  401: { description: 'not authenticated', content: { 'application/json': { schema: Error } } },
  403: { description: 'role missing', content: { 'application/json': { schema: Error } } },
  404: { description: 'not found', content: { 'application/json': { schema: Error } } },
} as const;

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const BaseModel = z
  .object({ id: z.string(), fingerprint: Hex64, name: z.string(), taskTypes: z.array(z.string()), version: z.string(), createdBy: z.string(), createdAt: z.number() })
  .openapi('BaseModel');
const BaseModelBody = z
  .strictObject({
    fingerprint: Hex64.openapi({ description: 'adapter fingerprint a round config names as baseAdapterSha256 (core/peft/adapter.ts)' }),
    name: z.string().min(1).max(100),
    taskTypes: z.array(z.string().min(1).max(64)).min(1).max(32),
    version: z.string().min(1).max(64),
  })
  .openapi('BaseModelRegistration');

const ModelVersion = z
  .object({
    modelVersion: z.number().int(),
    releaseId: z.string(),
    kind: z.enum(['release', 'rollback']),
    stage: z.enum(['canary', 'full', 'promoted', 'superseded']),
    canaryFraction: z.number(),
    wrappedRobots: z.number().int(),
    rollbackOf: z.number().int(),
    adapterSha256: Hex64,
    manifestFingerprint: Hex64,
    createdAt: z.number(),
    createdBy: z.string(),
    rollout: z.object({ kind: z.string(), fromReleaseId: z.string(), restoresVersion: z.number().nullable() }).nullable(),
    round: z.object({
      roundId: z.string(),
      state: z.string(),
      trainingStage: z.string().nullable(),
      quorum: z.number().int(),
      contributions: z.number().int(),
      openedAt: z.number(),
      finalizedAt: z.number().nullable(),
    }),
    aggregate: z.object({ sha256: z.string().nullable(), contributions: z.number().int() }),
    review: z.object({ decision: z.string().nullable(), decidedBy: z.string().nullable(), decidedAt: z.number().nullable(), gate: z.record(z.string(), z.unknown()).nullable() }),
    baseModel: z.object({ fingerprint: Hex64, id: z.string().nullable(), name: z.string().nullable(), version: z.string().nullable() }),
  })
  .openapi('ModelVersion');
const Lineage = z.object({ fleetId: z.string(), liveVersion: z.number().int().nullable(), versions: z.array(ModelVersion) }).openapi('Lineage');

const SafetyDecisions = z
  .object({
    fleetId: z.string().nullable(),
    since: z.number(),
    countingSince: z.number().openapi({ description: 'approvals are counted by this server process since it started; denials come from the audit log' }),
    approvals: z.number().int(),
    denials: z.number().int(),
    hourly: z.array(z.object({ hour: z.number(), approve: z.number().int(), deny: z.number().int() })),
    recentDenials: z.array(z.object({ seq: z.number(), robotId: z.string(), target: z.string(), at: z.number(), failed: z.array(z.string()), details: z.record(z.string(), z.unknown()) })),
  })
  .openapi('SafetyDecisions');

const FleetQuery = z.object({ fleet: z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/) });

function modelVersions(rows: LineageRow[], models: Map<string, { id: string; name: string; version: string }>): z.infer<typeof ModelVersion>[] {
  const promotedFrom = new Set(rows.filter((r) => r.rollout?.kind === 'promotion').map((r) => r.rollout!.fromReleaseId));
  const latest = rows[0]?.release.releaseVersion;
  return rows.map((row) => {
    const m = storedReleaseManifest(row.release.manifest);
    let baseFp = '';
    let trainingStage: string | null = null;
    try {
      const cfg = openRoundConfig({ bytes: row.round.config }).record as { baseAdapterSha256: Uint8Array; stage?: string };
      baseFp = bytesToHex(cfg.baseAdapterSha256);
      trainingStage = cfg.stage ?? null;
    } catch {
      /* a config this build cannot read: lineage still shows the release */
    }
    const model = models.get(baseFp);
    const stage = promotedFrom.has(m.releaseId) ? 'promoted' : row.release.releaseVersion !== latest ? 'superseded' : m.canaryFraction < 1 ? 'canary' : 'full';
    return {
      modelVersion: m.releaseVersion,
      releaseId: m.releaseId,
      kind: m.kind,
      stage,
      canaryFraction: m.canaryFraction,
      wrappedRobots: m.wraps.length,
      rollbackOf: m.rollbackOf,
      adapterSha256: bytesToHex(m.adapterSha256),
      manifestFingerprint: bytesToHex(row.release.fingerprint),
      createdAt: row.release.createdAt,
      createdBy: row.release.createdBy,
      rollout: row.rollout,
      round: {
        roundId: row.round.roundId,
        state: row.round.state,
        trainingStage,
        quorum: row.round.quorum,
        contributions: row.round.contributionCount,
        openedAt: row.round.createdAt,
        finalizedAt: row.round.finalizedAt,
      },
      aggregate: { sha256: row.round.aggregateSha256, contributions: row.round.contributionCount },
      review: { decision: row.decision?.kind ?? null, decidedBy: row.decision?.createdBy ?? null, decidedAt: row.decision?.createdAt ?? null, gate: gateOf(m) },
      baseModel: { fingerprint: baseFp || '0'.repeat(64), id: model?.id ?? null, name: model?.name ?? null, version: model?.version ?? null },
    };
  });
}

export function createRegistryRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw result.error; // ZodError: a 400 `malformed` naming the field (server/http/errors.ts)
    },
  });

  // Approvals are not audited (only denials are), so they are counted here per fleet and hour.
  const startedAt = deps.now();
  const approvals = new Map<string, Map<number, number>>();
  onSafetyDecision((e) => {
    if (e.decision !== 'approve') return;
    const key = `${e.orgId}/${e.fleetId}`;
    const hour = Math.floor(deps.now() / 3_600_000) * 3_600_000;
    const m = approvals.get(key) ?? new Map<number, number>();
    m.set(hour, (m.get(hour) ?? 0) + 1);
    if (m.size > 24 * 31) m.delete(Math.min(...m.keys()));
    approvals.set(key, m);
  });

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/registry/models',
      tags: ['registry'],
      summary: 'List base models',
      middleware: [requireAuth({ deps, person: { roles: READERS } })] as const,
      responses: { 200: { description: 'base models', content: { 'application/json': { schema: z.array(BaseModel) } } }, ...errors },
    }),
    async (c) => c.json(await listBaseModels({ db: deps.db, orgId: c.get('principal').orgId }), 200),
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/registry/models',
      tags: ['registry'],
      summary: 'Register a base model',
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { body: { required: true, content: { 'application/json': { schema: BaseModelBody } } } },
      responses: { 201: { description: 'registered', content: { 'application/json': { schema: BaseModel } } }, 409: { description: 'fingerprint already registered', content: { 'application/json': { schema: Error } } }, ...errors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const model = await createBaseModel({ db: deps.db, orgId: c.get('principal').orgId, id: newId({ prefix: 'bm' }), actor: actorOf(c), model: body, now: deps.now() });
      return c.json(model, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/registry/lineage',
      tags: ['registry'],
      summary: "A fleet's model versions with their lineage and gate metrics",
      middleware: [requireAuth({ deps, person: { roles: READERS } })] as const,
      request: { query: FleetQuery },
      responses: { 200: { description: 'lineage, newest version first', content: { 'application/json': { schema: Lineage } } }, ...errors },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const fleetId = c.req.valid('query').fleet;
      if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
      const models = new Map((await listBaseModels({ db: deps.db, orgId })).map((m) => [m.fingerprint, m]));
      const rows = await listLineage({ db: deps.db, orgId, fleetId });
      return c.json({ fleetId, liveVersion: rows[0]?.release.releaseVersion ?? null, versions: modelVersions(rows, models) }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/safety/decisions',
      tags: ['safety'],
      summary: 'Command safety decisions: approvals and denials per hour, the most recent denials',
      middleware: [requireAuth({ deps, person: { roles: READERS } })] as const,
      request: {
        query: z.object({
          fleet: FleetQuery.shape.fleet.optional(),
          hours: z.coerce.number().int().min(1).max(24 * 31).default(24),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
      },
      responses: { 200: { description: 'decision summary', content: { 'application/json': { schema: SafetyDecisions } } }, ...errors },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const { fleet, hours, limit } = c.req.valid('query');
      if (fleet && !(await getFleet({ db: deps.db, orgId, fleetId: fleet }))) throw new NotFoundError('fleet not found');
      const since = Math.floor((deps.now() - hours * 3_600_000) / 3_600_000) * 3_600_000;
      const denied = await safetyDenials({ db: deps.db, orgId, fleetId: fleet, since, limit });
      const hourly = new Map<number, { approve: number; deny: number }>();
      for (const [key, m] of approvals) {
        if (!key.startsWith(`${orgId}/`) || (fleet && key !== `${orgId}/${fleet}`)) continue;
        for (const [hour, n] of m) if (hour >= since) hourly.set(hour, { approve: (hourly.get(hour)?.approve ?? 0) + n, deny: hourly.get(hour)?.deny ?? 0 });
      }
      for (const h of denied.hourly) hourly.set(h.hour, { approve: hourly.get(h.hour)?.approve ?? 0, deny: h.count });
      const rows = [...hourly.entries()].sort((a, b) => a[0] - b[0]).map(([hour, v]) => ({ hour, ...v }));
      return c.json(
        {
          fleetId: fleet ?? null,
          since,
          countingSince: startedAt,
          approvals: rows.reduce((s, r) => s + r.approve, 0),
          denials: denied.total,
          hourly: rows,
          recentDenials: denied.recent.map((d) => ({ ...d, failed: Array.isArray(d.details.failed) ? (d.details.failed as string[]) : [] })),
        },
        200,
      );
    },
  );

  return routes;
}
