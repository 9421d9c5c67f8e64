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
import { Hono } from 'hono';
import { z } from 'zod';
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
import { runIdempotent } from '../http/idempotency.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth, robotOf } from '../http/auth.ts';
import { MiB, SMALL_JSON_LIMIT, b64, base64Field, hex, idParam, limitBody, readJson } from '../http/body.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { trustedOfficerKeys } from './he-keys.ts';
import { settleIfDue } from './rounds.ts';

/** A release payload is an encrypted adapter (10 M fp32 parameters = 40 MB) plus a manifest of up to 8 MiB, base64. */
const RELEASE_BODY_LIMIT = 80 * MiB;
const CreateReleaseBody = z.strictObject({
  manifest: base64Field({ name: 'manifest', maxLength: 8 * MiB }),
  payload: base64Field({ name: 'payload', maxLength: 56 * MiB }),
});

const ReportBody = z.strictObject({
  status: z.enum(['applied', 'failed']),
  adapterSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  detail: z.string().max(500).optional(),
});

/** The body of a stored release manifest (its signature was verified when it was posted). */
function storedManifest(bytes: Uint8Array) {
  const envelope = readSignedEnvelope({ reader: new ByteReader(bytes, 'release manifest'), type: RecordType.releaseManifest, maxBody: 8 * MiB });
  return decodeReleaseManifest({ bytes: envelope.body });
}

function releaseSummary(r: ReleaseView) {
  return { releaseId: r.releaseId, fleetId: r.fleetId, releaseVersion: r.releaseVersion, kind: r.kind, fingerprint: hex(r.fingerprint), payloadSha256: r.payloadSha256, createdAt: r.createdAt };
}

export function createReleaseRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  async function withPayload(r: ReleaseView) {
    const payload = await deps.blobs.get(r.payloadSha256);
    if (!payload) throw new Error(`release payload blob ${r.payloadSha256} is missing`);
    return { ...releaseSummary(r), manifest: b64(r.manifest), payload: b64(payload) };
  }

  routes.post('/releases', limitBody({ maxSize: RELEASE_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } }), async (c) => {
    const orgId = c.get('principal').orgId;
    return runIdempotent({
      deps,
      c,
      orgId,
      handle: async (idempotency) => {
        const body = await readJson(c, CreateReleaseBody);
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
    });
  });

  routes.get('/releases', requireAuth({ deps, person: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const fleetId = idParam.parse(c.req.query('fleet'));
    if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
    return c.json((await listReleases({ db: deps.db, orgId, fleetId })).map(releaseSummary));
  });

  routes.get('/releases/latest', requireAuth({ deps, robot: true }), async (c) => {
    const robot = robotOf(c);
    const release = await latestRelease({ db: deps.db, orgId: robot.orgId, fleetId: robot.fleetId });
    if (!release) throw new NotFoundError('the fleet has no release yet');
    const json = await withPayload(release);
    await recordDelivery({ db: deps.db, orgId: robot.orgId, releaseId: release.releaseId, robotId: robot.robotId, now: deps.now() });
    return c.json(json);
  });

  routes.get('/releases/:id', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const principal = c.get('principal');
    const release = await getRelease({ db: deps.db, orgId: principal.orgId, releaseId: idParam.parse(c.req.param('id')) });
    if (!release || (principal.kind === 'robot' && principal.fleetId !== release.fleetId)) throw new NotFoundError('release not found');
    const json = await withPayload(release);
    if (principal.kind === 'robot') await recordDelivery({ db: deps.db, orgId: principal.orgId, releaseId: release.releaseId, robotId: principal.robotId, now: deps.now() });
    return c.json(json);
  });

  routes.post('/releases/:id/report', limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, robot: true }), async (c) => {
    const robot = robotOf(c);
    const release = await getRelease({ db: deps.db, orgId: robot.orgId, releaseId: idParam.parse(c.req.param('id')) });
    if (!release || release.fleetId !== robot.fleetId) throw new NotFoundError('release not found');
    const body = ReportBody.parse(JSON.parse(new TextDecoder().decode(c.get('rawBody'))));
    const manifest = storedManifest(release.manifest);
    if (body.status === 'applied' && body.adapterSha256 !== undefined && body.adapterSha256 !== bytesToHex(manifest.adapterSha256))
      throw new IntegrityError('the reported adapter SHA-256 is not the one the release names');
    await reportDelivery({ db: deps.db, orgId: robot.orgId, releaseId: release.releaseId, robotId: robot.robotId, status: body.status, detail: body.detail ?? null, now: deps.now() });
    return c.body(null, 204);
  });

  routes.get('/releases/:id/status', requireAuth({ deps, person: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const release = await getRelease({ db: deps.db, orgId, releaseId: idParam.parse(c.req.param('id')) });
    if (!release) throw new NotFoundError('release not found');
    const wrapped = new Set(storedManifest(release.manifest).wraps.map((w) => w.robotId));
    const deliveries = new Map((await listDeliveries({ db: deps.db, orgId, releaseId: release.releaseId })).map((d) => [d.robotId, d]));
    const robots = await listRobots({ db: deps.db, orgId, fleetId: release.fleetId });
    return c.json({
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
    });
  });

  return routes;
}
