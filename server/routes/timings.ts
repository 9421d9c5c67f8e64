// The round latency breakdown (OpenAPI routes, @hono/zod-openapi):
//   POST /rounds/:id/timings   a robot of the round's fleet (signed request) or an officer reports the
//                              stages it measured: { stages: [{ stage, durationMs }] }
//   GET  /rounds/:id/timings   any person of the organization: per-stage count, p50, p95, max, total,
//                              and the critical-path estimate (core/round/latency.ts)
//
// Who may report what (core/round/latency.ts STAGES_BY_ACTOR): robots train, compress, encrypt, upload
// (only once they have a contribution in the round) and apply (only when a release of the round
// carries a key for them); officers decrypt and review (only once the round is finalized); the server
// records aggregate itself when it finalizes the round (server/db/rounds.ts). Order of checks: auth,
// body shape (zod), stages allowed for the caller's kind (400 naming the field), the round in the
// caller's org and, for a robot, its fleet (404), the precondition above (409), then the write: every
// stage or none, a stage this actor already reported is 409 `stage_already_reported` (first write wins),
// with an audit leaf `round.timings` (server/db/round-timings.ts).
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { LATENCY_STAGES, MAX_STAGE_DURATION_MS, latencyBreakdown, validateStageReport, type StageActorKind } from '../../core/round/latency.ts';
import { listStageTimings, recordStageTimings } from '../db/round-timings.ts';
import { hasContribution } from '../db/rounds.ts';
import { listReleases } from '../db/releases.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { KiB, limitBody } from '../http/body.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { loadRound } from './rounds.ts';
import { storedReleaseManifest } from './registry.ts';

/** Eight stages at most, a few dozen bytes each. */
const TIMINGS_BODY_LIMIT = 4 * KiB;
const CONTRIBUTE_STAGES = new Set(['train', 'compress', 'encrypt', 'upload']);

const Error = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
const errors = {
  400: { description: 'malformed report, or a stage the caller does not measure', content: { 'application/json': { schema: Error } } },
  401: { description: 'not authenticated', content: { 'application/json': { schema: Error } } },
  403: { description: 'role missing', content: { 'application/json': { schema: Error } } },
  404: { description: 'round not found (or of another fleet)', content: { 'application/json': { schema: Error } } },
} as const;

const Stage = z.enum(LATENCY_STAGES);
const Params = z.object({ id: z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/) });
export const StageTimingsBody = z
  .strictObject({
    stages: z
      .array(
        z.strictObject({
          stage: Stage,
          durationMs: z.number().min(0).lt(MAX_STAGE_DURATION_MS).openapi({ description: 'measured duration in milliseconds, [0, 24 h)' }),
        }),
      )
      .min(1)
      .max(LATENCY_STAGES.length),
  })
  .openapi('StageTimingsReport');

const StageStats = z.object({ stage: Stage, count: z.number().int(), p50Ms: z.number().nullable(), p95Ms: z.number().nullable(), maxMs: z.number().nullable(), totalMs: z.number() });
const Breakdown = z
  .object({
    roundId: z.string(),
    state: z.string(),
    stages: z.array(StageStats),
    criticalPath: z.object({
      totalMs: z.number(),
      segments: z.array(z.object({ segment: z.string(), stages: z.array(Stage), actorKind: z.string(), actorId: z.string().nullable(), ms: z.number() })),
    }),
    reports: z.number().int(),
    actors: z.object({ robot: z.number().int(), officer: z.number().int(), server: z.number().int() }),
  })
  .openapi('RoundLatencyBreakdown');

export function createTimingRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw result.error; // ZodError: a 400 `malformed` naming the field (server/http/errors.ts)
    },
  });

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/rounds/{id}/timings',
      tags: ['rounds'],
      summary: 'Report measured stage durations of a round (robot of its fleet: train, compress, encrypt, upload, apply; officer: decrypt, review)',
      middleware: [limitBody({ maxSize: TIMINGS_BODY_LIMIT }), requireAuth({ deps, robot: true, person: { roles: ['officer'] } })] as const,
      request: { params: Params, body: { required: true, content: { 'application/json': { schema: StageTimingsBody } } } },
      responses: {
        201: { description: 'recorded', content: { 'application/json': { schema: z.object({ roundId: z.string(), actorKind: z.string(), stages: z.array(Stage) }) } } },
        409: { description: 'stage already reported by this actor, or the round is not at that point for the caller', content: { 'application/json': { schema: Error } } },
        413: { description: 'body over 4 KiB', content: { 'application/json': { schema: Error } } },
        ...errors,
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const actorKind: Exclude<StageActorKind, 'server'> = principal.kind === 'robot' ? 'robot' : 'officer';
      const stages = validateStageReport({ actorKind, stages: c.req.valid('json').stages });
      const round = await loadRound({ deps, c }); // 404 for another org, or a robot of another fleet
      if (principal.kind === 'robot') {
        if (stages.some((s) => CONTRIBUTE_STAGES.has(s.stage)) && !(await hasContribution({ db: deps.db, roundPk: round.pk, robotId: principal.robotId })))
          throw httpError({ status: 409, code: 'not_a_contributor', message: 'this robot has no contribution in the round: it has no train, compress, encrypt or upload stage to report' });
        if (stages.some((s) => s.stage === 'apply')) {
          const ofRound = (await listReleases({ db: deps.db, orgId: round.orgId, fleetId: round.fleetId })).filter((r) => r.roundPk === round.pk);
          if (!ofRound.some((r) => storedReleaseManifest(r.manifest).wraps.some((w) => w.robotId === principal.robotId)))
            throw httpError({ status: 409, code: 'no_release_for_robot', message: 'no release of this round carries a key for this robot: it cannot have applied one' });
        }
      } else if (round.state !== 'finalized') {
        throw httpError({ status: 409, code: 'round_not_finalized', message: `the round is ${round.state}; decrypt and review are reported for a finalized round` });
      }
      await recordStageTimings({
        db: deps.db,
        orgId: round.orgId,
        round,
        actorKind,
        actorId: principal.kind === 'robot' ? principal.robotId : principal.userId,
        audit: actorOf(c),
        stages,
        now: deps.now(),
      });
      return c.json({ roundId: round.roundId, actorKind, stages: stages.map((s) => s.stage) }, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/rounds/{id}/timings',
      tags: ['rounds'],
      summary: "The round's latency breakdown: per stage count, p50, p95, max, total, and the critical-path estimate",
      middleware: [requireAuth({ deps, person: true })] as const,
      request: { params: Params },
      responses: { 200: { description: 'breakdown', content: { 'application/json': { schema: Breakdown } } }, ...errors },
    }),
    async (c) => {
      const round = await loadRound({ deps, c });
      const timings = await listStageTimings({ db: deps.db, orgId: round.orgId, roundPk: round.pk });
      return c.json({ roundId: round.roundId, state: round.state, ...latencyBreakdown({ timings }) }, 200);
    },
  );

  return routes;
}
