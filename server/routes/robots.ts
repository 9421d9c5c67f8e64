// Robots and their enrollment: POST /fleets/:id/enrollment-tokens, POST /enroll, GET /robots,
// GET /robots/me, DELETE /robots/:id (revoke).
//
// An enrollment token is one-time, valid 24 h, stored hashed; the officer puts it in the enrollment
// bundle with its tokenId as the bundle id. The robot posts it once with its public keys and the
// attestation (HMAC by the bundle's attest key, which the server never sees); the server stores the
// attestation and returns it in contribution manifests, where the officer checks it.
// OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests and document them and
// the answers in GET /openapi.json (server/http/openapi-route.ts).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { AuthenticationError, NotFoundError } from '../../core/errors.ts';
import { SIGNATURE_SIZES } from '../../core/crypto/sign.ts';
import { KEM_SIZES } from '../../core/crypto/kem.ts';
import { getFleet } from '../db/fleets.ts';
import { createEnrollmentToken, enrollRobot, getRobot, listRobots, revokeRobot, type RobotView } from '../db/robots.ts';
import { newId, newToken, parseToken, secretMatches } from '../auth/tokens.ts';
import { actorOf, requireAuth, robotOf } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, b64, base64Field, idParam, limitBody, NO_BODY_LIMIT } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, createOpenApiRoutes, errorResponses, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { robotRevoked } from '../http/robot-session.ts';

export const ENROLLMENT_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;

export const EnrollBody = z
  .strictObject({
    token: z.string().min(16).max(256).openapi({ description: 'the one-time enrollment token of the bundle' }),
    name: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9 ._:-]*$/, 'letters, digits, space and . _ : - only'),
    dsaPublicKey: base64Field({ name: 'dsaPublicKey', length: SIGNATURE_SIZES['ml-dsa-44'].publicKey }).openapi({ description: 'base64 ML-DSA-44 public key' }),
    kemPublicKey: base64Field({ name: 'kemPublicKey', length: KEM_SIZES.publicKey }).openapi({ description: 'base64 ML-KEM-768 public key' }),
    attestation: base64Field({ name: 'attestation', length: 32 }).openapi({ description: 'base64 HMAC-SHA-256 by the bundle’s attest key' }),
  })
  .openapi('RobotEnrollment');

export const RobotSchema = z
  .object({
    id: z.string(),
    fleetId: z.string(),
    name: z.string(),
    enrollmentId: z.string(),
    dsaPublicKey: z.string().openapi({ description: 'base64' }),
    kemPublicKey: z.string().openapi({ description: 'base64' }),
    attestation: z.string().openapi({ description: 'base64' }),
    enrolledAt: z.number(),
    revokedAt: z.number().nullable(),
  })
  .openapi('Robot');

const EnrollmentToken = z
  .object({ tokenId: z.string(), token: z.string().openapi({ description: 'shown once; goes into the enrollment bundle' }), expiresAt: z.number(), fleetId: z.string(), orgId: z.string() })
  .openapi('EnrollmentToken');
const IdParams = z.object({ id: idParam });

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

export function createRobotRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();
  const small = limitBody({ maxSize: SMALL_JSON_LIMIT });

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/fleets/{id}/enrollment-tokens',
      tags: ['robots'],
      summary: 'A one-time robot enrollment token (valid 24 h)',
      description: 'Who may call it: admin, officer. A request body, if any, is ignored.',
      security: security({ person: true }),
      middleware: [small, requireAuth({ deps, person: { roles: ['admin', 'officer'] } })] as const,
      request: { params: IdParams },
      responses: { 201: jsonResponse('the token', EnrollmentToken), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet not found', 413: true }) },
    }),
    async (c) => {
      const principal = c.get('principal');
      const fleetId = c.req.valid('param').id;
      const fleet = await getFleet({ db: deps.db, orgId: principal.orgId, fleetId });
      if (!fleet) throw new NotFoundError('fleet not found');
      const now = deps.now();
      const { id, token, secretHash } = newToken({ prefix: 'enr' });
      const expiresAt = now + ENROLLMENT_TOKEN_TTL_MS;
      await createEnrollmentToken({ db: deps.db, orgId: principal.orgId, fleetId, actor: actorOf(c), id, secretHash, now, expiresAt });
      return c.json({ tokenId: id, token, expiresAt, fleetId, orgId: principal.orgId }, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/enroll',
      tags: ['robots'],
      summary: 'Enroll a robot with a one-time token',
      description: 'Who may call it: anyone holding an enrollment token (the token in the body is the credential).',
      security: [],
      middleware: [small] as const,
      request: { body: jsonBody(EnrollBody) },
      responses: {
        201: jsonResponse('enrolled', z.object({ robotId: z.string(), fleetId: z.string(), orgId: z.string() })),
        ...errorResponses({ ...BODY_ERRORS, 401: '`unauthenticated`: the token is invalid, expired or already used' }),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
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
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/robots/me',
      tags: ['robots'],
      summary: 'The calling robot',
      description: 'Who may call it: robot.',
      security: security({ robot: true }),
      middleware: [requireAuth({ deps, robot: true })] as const,
      responses: { 200: jsonResponse('the robot', RobotSchema), ...errorResponses(AUTH_ERRORS) },
    }),
    async (c) => c.json(robotJson(robotOf(c).robot), 200),
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/robots',
      tags: ['robots'],
      summary: 'List robots',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      request: { query: z.object({ fleet: idParam.optional().openapi({ description: 'only this fleet’s robots' }) }) },
      responses: { 200: jsonResponse('robots, revoked ones included', z.array(RobotSchema)), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet not found' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const fleetId = c.req.valid('query').fleet;
      if (fleetId !== undefined && !(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
      const robots = await listRobots({ db: deps.db, orgId, fleetId });
      return c.json(robots.map(robotJson), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/robots/{id}',
      tags: ['robots'],
      summary: 'One robot',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      request: { params: IdParams },
      responses: { 200: jsonResponse('the robot', RobotSchema), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'robot not found' }) },
    }),
    async (c) => {
      const robot = await getRobot({ db: deps.db, orgId: c.get('principal').orgId, robotId: c.req.valid('param').id });
      if (!robot) throw new NotFoundError('robot not found');
      return c.json(robotJson(robot), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'delete',
      path: '/robots/{id}',
      tags: ['robots'],
      summary: 'Revoke a robot',
      description: 'Who may call it: admin, officer.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: NO_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['admin', 'officer'] } })] as const,
      request: { params: IdParams },
      responses: { 204: { description: 'revoked' }, ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'robot not found', 413: true }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const robotId = c.req.valid('param').id;
      const robot = await getRobot({ db: deps.db, orgId, robotId });
      if (!robot) throw new NotFoundError('robot not found');
      await revokeRobot({ db: deps.db, orgId, robotId, actor: actorOf(c), now: deps.now() });
      // The robot's safety sessions end now in this process (server/http/robot-session.ts).
      robotRevoked(robotId);
      return c.body(null, 204);
    },
  );

  return routes;
}
