// Robots and their enrollment: POST /fleets/:id/enrollment-tokens, POST /enroll, GET /robots,
// GET /robots/me, DELETE /robots/:id (revoke).
//
// An enrollment token is one-time, valid 24 h, stored hashed; the officer puts it in the enrollment
// bundle with its tokenId as the bundle id. The robot posts it once with its public keys and the
// attestation (HMAC by the bundle's attest key, which the server never sees); the server stores the
// attestation and returns it in contribution manifests, where the officer checks it.
import { Hono } from 'hono';
import { z } from 'zod';
import { AuthenticationError, NotFoundError } from '../../core/errors.ts';
import { SIGNATURE_SIZES } from '../../core/crypto/sign.ts';
import { KEM_SIZES } from '../../core/crypto/kem.ts';
import { getFleet } from '../db/fleets.ts';
import { createEnrollmentToken, enrollRobot, getRobot, listRobots, revokeRobot, type RobotView } from '../db/robots.ts';
import { newId, newToken, parseToken, secretMatches } from '../auth/tokens.ts';
import { actorOf, requireAuth, robotOf } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, b64, base64Field, idParam, limitBody, readJson, NO_BODY_LIMIT } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const ENROLLMENT_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;

export const EnrollBody = z.strictObject({
  token: z.string().min(16).max(256),
  name: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9 ._:-]*$/, 'letters, digits, space and . _ : - only'),
  dsaPublicKey: base64Field({ name: 'dsaPublicKey', length: SIGNATURE_SIZES['ml-dsa-44'].publicKey }),
  kemPublicKey: base64Field({ name: 'kemPublicKey', length: KEM_SIZES.publicKey }),
  attestation: base64Field({ name: 'attestation', length: 32 }),
});

export function robotJson(r: RobotView) {
  return {
    id: r.id,
    fleetId: r.fleetId,
    name: r.name,
    enrollmentId: r.enrollmentId,
    dsaPublicKey: b64(r.dsaPublicKey),
    kemPublicKey: b64(r.kemPublicKey),
    attestation: b64(r.attestation),
    enrolledAt: r.enrolledAt,
    revokedAt: r.revokedAt,
  };
}

export function createRobotRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();
  const small = limitBody({ maxSize: SMALL_JSON_LIMIT });

  routes.post('/fleets/:id/enrollment-tokens', small, requireAuth({ deps, person: { roles: ['admin', 'officer'] } }), async (c) => {
    const principal = c.get('principal');
    const fleetId = idParam.parse(c.req.param('id'));
    const fleet = await getFleet({ db: deps.db, orgId: principal.orgId, fleetId });
    if (!fleet) throw new NotFoundError('fleet not found');
    const now = deps.now();
    const { id, token, secretHash } = newToken({ prefix: 'enr' });
    const expiresAt = now + ENROLLMENT_TOKEN_TTL_MS;
    await createEnrollmentToken({ db: deps.db, orgId: principal.orgId, fleetId, actor: actorOf(c), id, secretHash, now, expiresAt });
    return c.json({ tokenId: id, token, expiresAt, fleetId, orgId: principal.orgId }, 201);
  });

  routes.post('/enroll', small, async (c) => {
    const body = await readJson(c, EnrollBody);
    const parsed = parseToken({ token: body.token });
    if (!parsed || !parsed.id.startsWith('enr_')) throw new AuthenticationError('enrollment token is invalid, expired or already used');
    const robot = await enrollRobot({
      db: deps.db,
      tokenId: parsed.id,
      checkSecret: (secretHash) => secretMatches({ secret: parsed.secret, secretHash }),
      robotId: newId({ prefix: 'rbt' }),
      name: body.name,
      dsaPublicKey: body.dsaPublicKey,
      kemPublicKey: body.kemPublicKey,
      attestation: body.attestation,
      now: deps.now(),
    });
    return c.json({ robotId: robot.id, fleetId: robot.fleetId, orgId: robot.orgId }, 201);
  });

  routes.get('/robots/me', requireAuth({ deps, robot: true }), async (c) => {
    return c.json(robotJson(robotOf(c).robot));
  });

  routes.get('/robots', requireAuth({ deps, person: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const fleetParam = c.req.query('fleet');
    let fleetId: string | undefined;
    if (fleetParam !== undefined) {
      fleetId = idParam.parse(fleetParam);
      if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
    }
    const robots = await listRobots({ db: deps.db, orgId, fleetId });
    return c.json(robots.map(robotJson));
  });

  routes.get('/robots/:id', requireAuth({ deps, person: true }), async (c) => {
    const robot = await getRobot({ db: deps.db, orgId: c.get('principal').orgId, robotId: idParam.parse(c.req.param('id')) });
    if (!robot) throw new NotFoundError('robot not found');
    return c.json(robotJson(robot));
  });

  routes.delete('/robots/:id', limitBody({ maxSize: NO_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['admin', 'officer'] } }), async (c) => {
    const orgId = c.get('principal').orgId;
    const robotId = idParam.parse(c.req.param('id'));
    const robot = await getRobot({ db: deps.db, orgId, robotId });
    if (!robot) throw new NotFoundError('robot not found');
    await revokeRobot({ db: deps.db, orgId, robotId, actor: actorOf(c), now: deps.now() });
    return c.body(null, 204);
  });

  return routes;
}
