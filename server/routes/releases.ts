// Releases: POST /releases (officer-signed manifest + AES-GCM payload), GET /releases?fleet=,
// GET /releases/latest (robot: its fleet's highest version), GET /releases/:id.
//
// The server checks what it can without reading anything: signer among the org's officer keys, org,
// fleet, round finalized and of that fleet, payload SHA-256, version = previous + 1. Robots check the
// signature against their pinned keys, the version, and the adapter hash themselves.
import { Hono } from 'hono';
import { z } from 'zod';
import { IntegrityError, NotFoundError } from '../../core/errors.ts';
import { equalBytes } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { openReleaseManifest } from '../../core/records/release-manifest.ts';
import { getFleet } from '../db/fleets.ts';
import { getRound } from '../db/rounds.ts';
import { createRelease, getRelease, latestRelease, listReleases, type ReleaseView } from '../db/releases.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth, robotOf } from '../http/auth.ts';
import { MiB, b64, base64Field, hex, idParam, limitBody, readJson } from '../http/body.ts';
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
    });
    return c.json(releaseSummary(release), 201);
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
    return c.json(await withPayload(release));
  });

  routes.get('/releases/:id', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const principal = c.get('principal');
    const release = await getRelease({ db: deps.db, orgId: principal.orgId, releaseId: idParam.parse(c.req.param('id')) });
    if (!release || (principal.kind === 'robot' && principal.fleetId !== release.fleetId)) throw new NotFoundError('release not found');
    return c.json(await withPayload(release));
  });

  return routes;
}
