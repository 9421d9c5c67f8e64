// Releases: POST /releases (officer-signed manifest + AES-GCM payload), GET /releases?fleet=,
// GET /releases/latest (robot: its fleet's highest version), GET /releases/:id,
// POST /releases/:id/report (robot: applied or failed), GET /releases/:id/status (per robot).
//
// POST /releases takes an `Idempotency-Key` (server/http/idempotency.ts): the PWA's outbox resends a
// release signed offline until it gets an answer, and a resend gets the first answer, never a second
// release. A release is its round's decision: a round already released or rejected is 409
// `round_decided` (server/db/decisions.ts). A robot fetching a release is recorded as its delivery.
//
// The server checks what it can without reading anything: signer among the org's officer keys, org,
// fleet, round finalized and of that fleet, payload SHA-256, version = previous + 1. Robots check the
// signature against their pinned keys, the version, and the adapter hash themselves.
//
// OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests and document them and
// the answers in GET /openapi.json (server/http/openapi-route.ts). POST /releases/:id/report looks the
// release up (404) before its body is validated, as before: a robot of another fleet learns nothing.
import type { Context, MiddlewareHandler } from 'hono';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { IntegrityError, NotFoundError } from '../../core/errors.ts';
import { equalBytes, bytesToHex } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { openReleaseManifest, decodeReleaseManifest } from '../../core/records/release-manifest.ts';
import { readSignedEnvelope, RecordType } from '../../core/records/signed.ts';
import { ByteReader } from '../../core/codec/binary.ts';
import { getFleet } from '../db/fleets.ts';
import { getRound } from '../db/rounds.ts';
import { createRelease, getRelease, latestRelease, listReleases, type ReleaseView } from '../db/releases.ts';
import { listDeliveries, recordDelivery, reportDelivery } from '../db/decisions.ts';
import { listRobots } from '../db/robots.ts';
import { appendAudit } from '../db/audit.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth, robotOf } from '../http/auth.ts';
import { MiB, SMALL_JSON_LIMIT, b64, base64Field, hex, idParam, limitBody } from '../http/body.ts';
import {
  AUTH_ERRORS,
  BODY_ERRORS,
  IdempotencyHeaders,
  createOpenApiRoutes,
  errorResponses,
  idempotencyOf,
  idempotent,
  jsonBody,
  jsonResponse,
  malformedFromZod,
  security,
} from '../http/openapi-route.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { trustedOfficerKeys } from './he-keys.ts';
import { settleIfDue } from './rounds.ts';

/** A release payload is an encrypted adapter (10 M fp32 parameters = 40 MB) plus a manifest of up to 8 MiB, base64. */
const RELEASE_BODY_LIMIT = 80 * MiB;
const CreateReleaseBody = z
  .strictObject({
    manifest: base64Field({ name: 'manifest', maxLength: 8 * MiB }).openapi({ description: 'base64 officer-signed release manifest (core/records/release-manifest.ts)' }),
    payload: base64Field({ name: 'payload', maxLength: 56 * MiB }).openapi({ description: 'base64 AES-256-GCM encrypted adapter' }),
  })
  .openapi('SignedRelease');

const ReportBody = z
  .strictObject({
    status: z.enum(['applied', 'failed']),
    adapterSha256: z.string().regex(/^[0-9a-f]{64}$/).optional().openapi({ description: 'hex SHA-256 of the applied adapter; must be the one the release names' }),
    detail: z.string().max(500).optional(),
  })
  .openapi('ReleaseReport');

const ReleaseSummary = z
  .object({
    releaseId: z.string(),
    fleetId: z.string(),
    releaseVersion: z.number().int(),
    kind: z.string().openapi({ description: 'release or rollback' }),
    fingerprint: z.string().openapi({ description: 'hex fingerprint of the signed manifest' }),
    payloadSha256: z.string(),
    createdAt: z.number(),
  })
  .openapi('ReleaseSummary');
const ReleaseWithPayload = ReleaseSummary.extend({
  manifest: z.string().openapi({ description: 'base64 signed release manifest' }),
  payload: z.string().openapi({ description: 'base64 encrypted adapter' }),
}).openapi('Release');
const ReleaseStatus = ReleaseSummary.extend({
  robots: z.array(
    z.object({
      robotId: z.string(),
      name: z.string(),
      wrapped: z.boolean().openapi({ description: 'the release carries a content key for this robot' }),
      revokedAt: z.number().nullable(),
      deliveredAt: z.number().nullable(),
      status: z.string().nullable(),
      detail: z.string().nullable(),
      reportedAt: z.number().nullable(),
    }),
  ),
}).openapi('ReleaseStatus');
const ReleaseParams = z.object({ id: idParam });

/** The body of a stored release manifest (its signature was verified when it was posted). */
function storedManifest(bytes: Uint8Array) {
  const envelope = readSignedEnvelope({ reader: new ByteReader(bytes, 'release manifest'), type: RecordType.releaseManifest, maxBody: 8 * MiB });
  return decodeReleaseManifest({ bytes: envelope.body });
}

function releaseSummary(r: ReleaseView) {
  return { releaseId: r.releaseId, fleetId: r.fleetId, releaseVersion: r.releaseVersion, kind: r.kind, fingerprint: hex(r.fingerprint), payloadSha256: r.payloadSha256, createdAt: r.createdAt };
}

export function createReleaseRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();

  async function withPayload(r: ReleaseView) {
    const payload = await deps.blobs.get(r.payloadSha256);
    if (!payload) throw new Error(`release payload blob ${r.payloadSha256} is missing`);
    return { ...releaseSummary(r), manifest: b64(r.manifest), payload: b64(payload) };
  }

  /** The calling robot's release named in the path, looked up before the body is read (404 otherwise). */
  const reportedRelease = new WeakMap<Context, ReleaseView>();
  const releaseOfRobot: MiddlewareHandler<AppEnv> = async (c, next) => {
    const robot = robotOf(c);
    const params = ReleaseParams.safeParse(c.req.param());
    if (!params.success) throw malformedFromZod(params.error);
    const release = await getRelease({ db: deps.db, orgId: robot.orgId, releaseId: params.data.id });
    if (!release || release.fleetId !== robot.fleetId) throw new NotFoundError('release not found');
    reportedRelease.set(c, release);
    await next();
  };

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/releases',
      tags: ['releases'],
      summary: 'Publish a signed release of a finalized round',
      description: 'Who may call it: officer (person). Takes an Idempotency-Key.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: RELEASE_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } }), idempotent({ deps })] as const,
      request: { headers: IdempotencyHeaders, body: jsonBody(CreateReleaseBody) },
      responses: {
        201: jsonResponse('published (a replay carries Idempotent-Replayed: true)', ReleaseSummary),
        ...errorResponses({
          ...AUTH_ERRORS,
          ...BODY_ERRORS,
          400: '`malformed`, or `integrity`: another organization, a payload hash that does not match, a round of another fleet',
          401: 'not authenticated, or the manifest is not signed by an officer key of the organization',
          404: 'the manifest names an unknown fleet or round',
          409: '`round_not_finalized`, `round_decided` (first decision in details), `release_version_conflict`, `release_exists`',
          422: '`idempotency_key_reused`: the key came with another request',
        }),
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const idempotency = idempotencyOf(c);
      const body = c.req.valid('json');
      const opened = openReleaseManifest({ bytes: body.manifest, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
      const m = opened.record;
      if (m.orgId !== orgId) throw new IntegrityError('release manifest names another organization', { orgId: m.orgId });
      if (!equalBytes(sha256(body.payload), m.payloadSha256)) throw new IntegrityError('payload SHA-256 does not match the manifest payloadSha256');
      const fleet = await getFleet({ db: deps.db, orgId, fleetId: m.fleetId });
      if (!fleet) throw new NotFoundError(`fleet ${JSON.stringify(m.fleetId)} not found`);
      const found = await getRound({ db: deps.db, orgId, roundId: m.roundId });
      if (!found) throw new NotFoundError(`round ${JSON.stringify(m.roundId)} not found`);
      const round = await settleIfDue({ deps, round: found });
      if (round.fleetId !== fleet.id) throw new IntegrityError('the release round belongs to another fleet');
      if (round.state !== 'finalized') throw httpError({ status: 409, code: 'round_not_finalized', message: `the round is ${round.state}; only a finalized round can be released` });
      const payloadSha256 = await deps.blobs.put(body.payload);
      const release = await createRelease({
        db: deps.db,
        orgId,
        actor: actorOf(c),
        pk: newId({ prefix: 'rel' }),
        decisionId: newId({ prefix: 'dec' }),
        releaseId: m.releaseId,
        fleetId: fleet.id,
        roundPk: round.pk,
        roundId: round.roundId,
        releaseVersion: m.releaseVersion,
        kind: m.kind,
        manifest: body.manifest,
        fingerprint: opened.fingerprint,
        payloadSha256,
        now: deps.now(),
        idempotency: idempotency && { ...idempotency, response: (r) => JSON.stringify(releaseSummary(r)) },
      });
      // A release over a failed evaluation gate is audited with the officer's signed reason (issue 5).
      if (m.gate?.override)
        await appendAudit({ db: deps.db, orgId, actor: actorOf(c), action: 'release.gate_override', target: m.releaseId, details: { roundId: m.roundId, releaseVersion: m.releaseVersion, gateStatus: m.gate.status, failed: m.gate.failed.slice(0, 32), reason: m.gate.override.reason.slice(0, 2000) }, now: deps.now() });
      return c.json(releaseSummary(release), 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/releases',
      tags: ['releases'],
      summary: 'Releases of a fleet, newest first',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      request: { query: z.object({ fleet: idParam }) },
      responses: { 200: jsonResponse('the releases', z.array(ReleaseSummary)), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet not found' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const fleetId = c.req.valid('query').fleet;
      if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
      return c.json((await listReleases({ db: deps.db, orgId, fleetId })).map(releaseSummary), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/releases/latest',
      tags: ['releases'],
      summary: 'The newest release of the calling robot’s fleet, with its payload (recorded as delivered)',
      description: 'Who may call it: robot.',
      security: security({ robot: true }),
      middleware: [requireAuth({ deps, robot: true })] as const,
      request: { headers: z.object({ 'if-none-match': z.string().max(200).optional().openapi({ description: 'the ETag of the release the robot already has: 304 while it is still the newest' }) }) },
      responses: {
        200: { ...jsonResponse('the release', ReleaseWithPayload), headers: z.object({ ETag: z.string().openapi({ description: 'the release id, quoted' }) }) },
        304: { description: 'the release named by If-None-Match is still the newest (no payload sent, no delivery recorded)' },
        ...errorResponses({ ...AUTH_ERRORS, 404: 'the fleet has no release yet' }),
      },
    }),
    async (c) => {
      const robot = robotOf(c);
      const release = await latestRelease({ db: deps.db, orgId: robot.orgId, fleetId: robot.fleetId });
      if (!release) throw new NotFoundError('the fleet has no release yet');
      // A polling robot (`robot agent`) sends the ETag it holds: unchanged means no multi-MB payload again.
      const etag = `"${release.releaseId}"`;
      c.header('ETag', etag);
      if (c.req.valid('header')['if-none-match'] === etag) return c.body(null, 304);
      const json = await withPayload(release);
      await recordDelivery({ db: deps.db, orgId: robot.orgId, releaseId: release.releaseId, robotId: robot.robotId, now: deps.now() });
      return c.json(json, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/releases/{id}',
      tags: ['releases'],
      summary: 'One release with its payload (for a robot, recorded as delivered)',
      description: 'Who may call it: any person of the organization; a robot of its fleet.',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      request: { params: ReleaseParams },
      responses: { 200: jsonResponse('the release', ReleaseWithPayload), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'release not found (or of another fleet, for a robot)' }) },
    }),
    async (c) => {
      const principal = c.get('principal');
      const release = await getRelease({ db: deps.db, orgId: principal.orgId, releaseId: c.req.valid('param').id });
      if (!release || (principal.kind === 'robot' && principal.fleetId !== release.fleetId)) throw new NotFoundError('release not found');
      const json = await withPayload(release);
      if (principal.kind === 'robot') await recordDelivery({ db: deps.db, orgId: principal.orgId, releaseId: release.releaseId, robotId: principal.robotId, now: deps.now() });
      return c.json(json, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/releases/{id}/report',
      tags: ['releases'],
      summary: 'A robot reports applying (or failing to apply) a release',
      description: 'Who may call it: a robot of the release’s fleet.',
      security: security({ robot: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, robot: true }), releaseOfRobot] as const,
      request: { params: ReleaseParams, body: jsonBody(ReportBody) },
      responses: {
        204: { description: 'recorded' },
        ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 400: '`malformed`, or `integrity`: the adapter SHA-256 is not the one the release names', 404: 'release not found (or of another fleet)' }),
      },
    }),
    async (c) => {
      const robot = robotOf(c);
      const release = reportedRelease.get(c)!;
      const body = c.req.valid('json');
      const manifest = storedManifest(release.manifest);
      if (body.status === 'applied' && body.adapterSha256 !== undefined && body.adapterSha256 !== bytesToHex(manifest.adapterSha256))
        throw new IntegrityError('the reported adapter SHA-256 is not the one the release names');
      await reportDelivery({ db: deps.db, orgId: robot.orgId, releaseId: release.releaseId, robotId: robot.robotId, status: body.status, detail: body.detail ?? null, now: deps.now() });
      return c.body(null, 204);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/releases/{id}/status',
      tags: ['releases'],
      summary: 'Delivery status of a release, per robot of its fleet',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      request: { params: ReleaseParams },
      responses: { 200: jsonResponse('the status', ReleaseStatus), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'release not found' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const release = await getRelease({ db: deps.db, orgId, releaseId: c.req.valid('param').id });
      if (!release) throw new NotFoundError('release not found');
      const wrapped = new Set(storedManifest(release.manifest).wraps.map((w) => w.robotId));
      const deliveries = new Map((await listDeliveries({ db: deps.db, orgId, releaseId: release.releaseId })).map((d) => [d.robotId, d]));
      const robots = await listRobots({ db: deps.db, orgId, fleetId: release.fleetId });
      return c.json(
        {
          ...releaseSummary(release),
          robots: robots.map((r) => {
            const d = deliveries.get(r.id);
            return {
              robotId: r.id,
              name: r.name,
              wrapped: wrapped.has(r.id),
              revokedAt: r.revokedAt,
              deliveredAt: d?.deliveredAt ?? null,
              status: d?.status ?? null,
              detail: d?.detail ?? null,
              reportedAt: d?.reportedAt ?? null,
            };
          }),
        },
        200,
      );
    },
  );

  return routes;
}
