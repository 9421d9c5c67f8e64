// Canary rollout (OpenAPI routes, @hono/zod-openapi):
//   POST /releases/:id/telemetry     robot (signed): one window of runs with the release — runs, errors,
//                                    p99 latency, safety events; only robots the release carries a key for
//   GET  /releases/:id/canary        officer/admin/auditor: canary robots, telemetry, rollback triggers
//   GET  /fleets/:id/rollout-policy  officer/admin/auditor: the fleet's rollback thresholds (or the defaults)
//   PUT  /fleets/:id/rollout-policy  officer: set them
//   POST /releases/:id/promote       officer: the signed next version, same adapter, wrapped for every robot
//   POST /fleets/:id/rollback        officer: a signed rollback manifest (kind rollback, rollbackOf = N)
// Triggers are computed by core/registry/canary.ts over each robot's summed windows (worst p99). The
// server checks what it can without reading an adapter: officer signature, org and fleet, the adapter
// SHA-256 equal to the promoted release's / the restored version's, payload hash, version = latest + 1.
// Robots check signature, version and hash themselves (cli/commands/robot.ts robotPull).
// Validation failures, error bodies and security declarations are the shared ones of
// server/http/openapi-route.ts.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ConflictError, IntegrityError, NotFoundError } from '../../core/errors.ts';
import { bytesToHex, equalBytes } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { openReleaseManifest, type ReleaseManifest } from '../../core/records/release-manifest.ts';
import { DEFAULT_ROLLBACK_THRESHOLDS, rollbackTriggers, type CanaryTelemetry } from '../../core/registry/canary.ts';
import { createStagedRelease, getRolloutPolicy, insertTelemetry, listRollouts, listTelemetry, putRolloutPolicy } from '../db/canary.ts';
import { getRelease, listReleases, latestRelease, type ReleaseView } from '../db/releases.ts';
import { listDeliveries } from '../db/decisions.ts';
import { getFleet } from '../db/fleets.ts';
import { getRound } from '../db/rounds.ts';
import { listRobots } from '../db/robots.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth, robotOf } from '../http/auth.ts';
import { MiB, SMALL_JSON_LIMIT, base64Field, limitBody } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, createOpenApiRoutes, errorResponses, security } from '../http/openapi-route.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { trustedOfficerKeys } from './he-keys.ts';
import { storedReleaseManifest } from './registry.ts';

const READERS = ['officer', 'admin', 'auditor'] as const;
const STAGED_BODY_LIMIT = 80 * MiB;
const Id = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/);

const TelemetryBody = z
  .strictObject({
    runs: z.number().int().min(1).max(1e9).openapi({ description: 'episodes or commands run with the release in this window' }),
    errors: z.number().int().min(0).max(1e9),
    latencyP99Ms: z.number().min(0).max(3_600_000),
    safetyEvents: z.number().int().min(0).max(1e6),
  })
  .refine((b) => b.errors <= b.runs, { message: '"errors" expected at most "runs"', path: ['errors'] })
  .openapi('CanaryTelemetry');
const Thresholds = z
  .strictObject({ maxErrorRate: z.number().min(0).max(1), maxP99Ms: z.number().min(0).max(3_600_000), maxSafetyEvents: z.number().int().min(0).max(1e6) })
  .openapi('RollbackThresholds');
const Policy = Thresholds.extend({ source: z.enum(['default', 'fleet']), updatedAt: z.number().nullable() }).openapi('RolloutPolicy');
const SignedBody = z.strictObject({ manifest: base64Field({ name: 'manifest', maxLength: 8 * MiB }), payload: base64Field({ name: 'payload', maxLength: 56 * MiB }) }).openapi('SignedStagedRelease');
const Staged = z.object({ releaseId: z.string(), fleetId: z.string(), releaseVersion: z.number().int(), kind: z.string(), wrappedRobots: z.number().int(), fingerprint: z.string() }).openapi('StagedRelease');
const Trigger = z.object({ name: z.string(), value: z.number(), threshold: z.number(), robots: z.array(z.string()) });
const CanaryStatus = z
  .object({
    releaseId: z.string(),
    fleetId: z.string(),
    releaseVersion: z.number().int(),
    kind: z.string(),
    canaryFraction: z.number(),
    stage: z.enum(['canary', 'full', 'promoted', 'rolled_back', 'superseded']),
    liveVersion: z.number().int(),
    adapterSha256: z.string(),
    thresholds: Policy,
    robots: z.array(z.object({ robotId: z.string(), name: z.string(), canary: z.boolean(), wrapped: z.boolean(), status: z.string().nullable(), deliveredAt: z.number().nullable(), runs: z.number(), errors: z.number(), latencyP99Ms: z.number(), safetyEvents: z.number() })),
    telemetry: z.array(z.object({ robotId: z.string(), runs: z.number(), errors: z.number(), latencyP99Ms: z.number(), safetyEvents: z.number(), reportedAt: z.number() })),
    verdict: z.object({ rollback: z.boolean(), triggers: z.array(Trigger), totals: z.object({ robots: z.number(), runs: z.number(), errors: z.number(), errorRate: z.number(), worstP99Ms: z.number(), safetyEvents: z.number() }) }),
    followUps: z.array(z.object({ releaseId: z.string(), kind: z.string(), restoresVersion: z.number().nullable(), createdAt: z.number() })),
  })
  .openapi('CanaryStatus');

/** Each robot's windows summed (worst p99), the unit the triggers look at. */
export function perRobotTelemetry(rows: ReadonlyArray<CanaryTelemetry & { reportedAt?: number }>): CanaryTelemetry[] {
  const by = new Map<string, CanaryTelemetry>();
  for (const r of rows) {
    const t = by.get(r.robotId) ?? { robotId: r.robotId, runs: 0, errors: 0, latencyP99Ms: 0, safetyEvents: 0 };
    t.runs += r.runs;
    t.errors += r.errors;
    t.safetyEvents += r.safetyEvents;
    t.latencyP99Ms = Math.max(t.latencyP99Ms, r.latencyP99Ms);
    by.set(r.robotId, t);
  }
  return [...by.values()].sort((a, b) => (a.robotId < b.robotId ? -1 : 1));
}

export function createCanaryRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();

  async function policyOf(orgId: string, fleetId: string) {
    const p = await getRolloutPolicy({ db: deps.db, orgId, fleetId });
    return p
      ? { maxErrorRate: p.maxErrorRate, maxP99Ms: p.maxP99Ms, maxSafetyEvents: p.maxSafetyEvents, source: 'fleet' as const, updatedAt: p.updatedAt }
      : { ...DEFAULT_ROLLBACK_THRESHOLDS, source: 'default' as const, updatedAt: null };
  }

  async function releaseOr404(orgId: string, releaseId: string): Promise<ReleaseView> {
    const r = await getRelease({ db: deps.db, orgId, releaseId });
    if (!r) throw new NotFoundError('release not found');
    return r;
  }

  /** Opens a posted staged manifest: officer signature, org, fleet, payload hash; stores the payload. */
  async function openStaged(orgId: string, fleetId: string, body: { manifest: Uint8Array; payload: Uint8Array }) {
    const opened = openReleaseManifest({ bytes: body.manifest, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
    const m = opened.record;
    if (m.orgId !== orgId) throw new IntegrityError('release manifest names another organization', { orgId: m.orgId });
    if (m.fleetId !== fleetId) throw new IntegrityError('release manifest names another fleet', { fleetId: m.fleetId });
    if (!equalBytes(sha256(body.payload), m.payloadSha256)) throw new IntegrityError('payload SHA-256 does not match the manifest payloadSha256');
    return { m, fingerprint: opened.fingerprint };
  }

  async function store(c: Parameters<typeof actorOf>[0], orgId: string, m: ReleaseManifest, fingerprint: Uint8Array, manifest: Uint8Array, payload: Uint8Array, rollout: { kind: 'promotion' | 'rollback'; fromReleaseId: string; restoresVersion: number | null }) {
    const round = await getRound({ db: deps.db, orgId, roundId: m.roundId });
    if (!round || round.fleetId !== m.fleetId) throw new NotFoundError(`round ${JSON.stringify(m.roundId)} of the fleet not found`);
    const payloadSha256 = await deps.blobs.put(payload);
    await createStagedRelease({
      db: deps.db,
      orgId,
      actor: actorOf(c),
      pk: newId({ prefix: 'rel' }),
      release: { releaseId: m.releaseId, fleetId: m.fleetId, roundPk: round.pk, roundId: round.roundId, releaseVersion: m.releaseVersion, kind: m.kind, manifest, fingerprint, payloadSha256 },
      rollout,
      now: deps.now(),
    });
  }

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/releases/{id}/telemetry',
      tags: ['canary'],
      summary: 'Robot: report one window of canary telemetry for a release it runs',
      description: 'Who may call it: a robot of the release’s fleet that the release carries a key for.',
      security: security({ robot: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, robot: true })] as const,
      request: { params: z.object({ id: Id }), body: { required: true, content: { 'application/json': { schema: TelemetryBody } } } },
      responses: {
        201: { description: 'recorded', content: { 'application/json': { schema: z.object({ releaseId: z.string(), robotId: z.string(), reportedAt: z.number() }) } } },
        ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 404: 'release not found (or of another fleet)', 409: '`conflict`: the release carries no key for this robot' }),
      },
    }),
    async (c) => {
      const robot = robotOf(c);
      const release = await getRelease({ db: deps.db, orgId: robot.orgId, releaseId: c.req.valid('param').id });
      if (!release || release.fleetId !== robot.fleetId) throw new NotFoundError('release not found');
      const body = c.req.valid('json');
      if (!storedReleaseManifest(release.manifest).wraps.some((w) => w.robotId === robot.robotId))
        throw new ConflictError('this release carries no key for the robot: it cannot be running it', { releaseId: release.releaseId });
      const reportedAt = deps.now();
      await insertTelemetry({ db: deps.db, orgId: robot.orgId, id: newId({ prefix: 'tel' }), releaseId: release.releaseId, row: { robotId: robot.robotId, ...body, reportedAt } });
      return c.json({ releaseId: release.releaseId, robotId: robot.robotId, reportedAt }, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/releases/{id}/canary',
      tags: ['canary'],
      summary: 'Canary status of a release: robots, telemetry, rollback triggers',
      description: 'Who may call it: officer, admin, auditor.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: { roles: READERS } })] as const,
      request: { params: z.object({ id: Id }) },
      responses: { 200: { description: 'status', content: { 'application/json': { schema: CanaryStatus } } }, ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'release not found' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const release = await releaseOr404(orgId, c.req.valid('param').id);
      const m = storedReleaseManifest(release.manifest);
      const [robots, deliveries, telemetry, thresholds, followUps, latest] = await Promise.all([
        listRobots({ db: deps.db, orgId, fleetId: release.fleetId }),
        listDeliveries({ db: deps.db, orgId, releaseId: release.releaseId }),
        listTelemetry({ db: deps.db, orgId, releaseId: release.releaseId }),
        policyOf(orgId, release.fleetId),
        listRollouts({ db: deps.db, orgId, fromReleaseId: release.releaseId }),
        latestRelease({ db: deps.db, orgId, fleetId: release.fleetId }),
      ]);
      const wrapped = new Set(m.wraps.map((w) => w.robotId));
      // The canary of a canary release is exactly the robots it wraps for (core/round/release.ts).
      const canary = new Set(m.canaryFraction < 1 ? [...wrapped] : []);
      const perRobot = new Map(perRobotTelemetry(telemetry).map((t) => [t.robotId, t]));
      const delivered = new Map(deliveries.map((d) => [d.robotId, d]));
      const verdict = rollbackTriggers({ telemetry: [...perRobot.values()], thresholds });
      const liveVersion = latest?.releaseVersion ?? release.releaseVersion;
      const stage: z.infer<typeof CanaryStatus>['stage'] = followUps.some((f) => f.kind === 'rollback')
        ? 'rolled_back'
        : followUps.some((f) => f.kind === 'promotion')
          ? 'promoted'
          : liveVersion !== release.releaseVersion
            ? 'superseded'
            : m.canaryFraction < 1
              ? 'canary'
              : 'full';
      return c.json(
        {
          releaseId: release.releaseId,
          fleetId: release.fleetId,
          releaseVersion: release.releaseVersion,
          kind: m.kind,
          canaryFraction: m.canaryFraction,
          stage,
          liveVersion,
          adapterSha256: bytesToHex(m.adapterSha256),
          thresholds,
          robots: robots
            .filter((r) => !r.revokedAt || wrapped.has(r.id))
            .map((r) => {
              const t = perRobot.get(r.id);
              const d = delivered.get(r.id);
              return { robotId: r.id, name: r.name, canary: canary.has(r.id), wrapped: wrapped.has(r.id), status: d?.status ?? null, deliveredAt: d?.deliveredAt ?? null, runs: t?.runs ?? 0, errors: t?.errors ?? 0, latencyP99Ms: t?.latencyP99Ms ?? 0, safetyEvents: t?.safetyEvents ?? 0 };
            }),
          telemetry,
          verdict,
          followUps: followUps.map((f) => ({ releaseId: f.releaseId, kind: f.kind, restoresVersion: f.restoresVersion, createdAt: f.createdAt })),
        },
        200,
      );
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/fleets/{id}/rollout-policy',
      tags: ['canary'],
      summary: "A fleet's rollback thresholds",
      description: 'Who may call it: officer, admin, auditor.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: { roles: READERS } })] as const,
      request: { params: z.object({ id: Id }) },
      responses: { 200: { description: 'thresholds', content: { 'application/json': { schema: Policy } } }, ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet not found' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const fleetId = c.req.valid('param').id;
      if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
      return c.json(await policyOf(orgId, fleetId), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'put',
      path: '/fleets/{id}/rollout-policy',
      tags: ['canary'],
      summary: "Set a fleet's rollback thresholds",
      description: 'Who may call it: officer (person).',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { params: z.object({ id: Id }), body: { required: true, content: { 'application/json': { schema: Thresholds } } } },
      responses: { 200: { description: 'stored', content: { 'application/json': { schema: Policy } } }, ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 404: 'fleet not found' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const fleetId = c.req.valid('param').id;
      if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
      await putRolloutPolicy({ db: deps.db, orgId, fleetId, thresholds: c.req.valid('json'), actor: actorOf(c), now: deps.now() });
      return c.json(await policyOf(orgId, fleetId), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/releases/{id}/promote',
      tags: ['canary'],
      summary: 'Officer: promote a canary release (signed next version wrapping the same adapter for every robot)',
      description: 'Who may call it: officer (person).',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: STAGED_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { params: z.object({ id: Id }), body: { required: true, content: { 'application/json': { schema: SignedBody } } } },
      responses: {
        201: { description: 'promoted', content: { 'application/json': { schema: Staged } } },
        ...errorResponses({
          ...AUTH_ERRORS,
          ...BODY_ERRORS,
          400: '`malformed`, or `integrity`: another organization or fleet, a payload hash, kind, round or adapter that does not fit',
          401: 'not authenticated, or the manifest is not signed by an officer key of the organization',
          404: 'the promoted release (or its round) not found',
          409: 'version conflict: not the next release version',
        }),
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const source = await releaseOr404(orgId, c.req.valid('param').id);
      const body = c.req.valid('json');
      const { m, fingerprint } = await openStaged(orgId, source.fleetId, body);
      const src = storedReleaseManifest(source.manifest);
      if (m.kind !== 'release' || m.roundId !== src.roundId || !equalBytes(m.adapterSha256, src.adapterSha256))
        throw new IntegrityError('a promotion must be a release of the same round and adapter as the promoted release');
      if (m.canaryFraction !== 1) throw new IntegrityError('a promotion wraps for the whole fleet (canaryFraction 1)');
      await store(c, orgId, m, fingerprint, body.manifest, body.payload, { kind: 'promotion', fromReleaseId: source.releaseId, restoresVersion: null });
      return c.json({ releaseId: m.releaseId, fleetId: m.fleetId, releaseVersion: m.releaseVersion, kind: m.kind, wrappedRobots: m.wraps.length, fingerprint: bytesToHex(fingerprint) }, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/fleets/{id}/rollback',
      tags: ['canary'],
      summary: "Officer: a signed rollback (kind rollback, rollbackOf = N) restoring version N's adapter as the next version",
      description: 'Who may call it: officer (person).',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: STAGED_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { params: z.object({ id: Id }), body: { required: true, content: { 'application/json': { schema: SignedBody } } } },
      responses: {
        201: { description: 'rollback stored', content: { 'application/json': { schema: Staged } } },
        ...errorResponses({
          ...AUTH_ERRORS,
          ...BODY_ERRORS,
          400: '`malformed`, or `integrity`: another organization or fleet, a payload hash, kind, round or adapter that does not fit',
          401: 'not authenticated, or the manifest is not signed by an officer key of the organization',
          404: 'fleet, restored version or round not found',
          409: 'version conflict: not the next release version',
        }),
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const fleetId = c.req.valid('param').id;
      if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
      const body = c.req.valid('json');
      const { m, fingerprint } = await openStaged(orgId, fleetId, body);
      if (m.kind !== 'rollback') throw new IntegrityError('a rollback manifest must be of kind rollback');
      const all = await listReleases({ db: deps.db, orgId, fleetId });
      const restored = all.find((r) => r.releaseVersion === m.rollbackOf);
      if (!restored) throw new NotFoundError(`the fleet has no release version ${m.rollbackOf} to roll back to`);
      if (!equalBytes(storedReleaseManifest(restored.manifest).adapterSha256, m.adapterSha256)) throw new IntegrityError(`the rollback does not carry version ${m.rollbackOf}'s adapter`);
      const live = all[0]!;
      await store(c, orgId, m, fingerprint, body.manifest, body.payload, { kind: 'rollback', fromReleaseId: live.releaseId, restoresVersion: m.rollbackOf });
      return c.json({ releaseId: m.releaseId, fleetId, releaseVersion: m.releaseVersion, kind: m.kind, wrappedRobots: m.wraps.length, fingerprint: bytesToHex(fingerprint) }, 201);
    },
  );

  return routes;
}
