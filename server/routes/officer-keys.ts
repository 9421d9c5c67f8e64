// Officer keys: POST /officer-keys (an officer registers its ML-DSA-65 public key), GET /officer-keys.
// These are the keys the server checks officer-signed records against; robots pin theirs out of band.
// OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests and document them and
// the answers in GET /openapi.json (server/http/openapi-route.ts).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { SIGNATURE_SIZES } from '../../core/crypto/sign.ts';
import { addOfficerKey, listOfficerKeys } from '../db/fleets.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, b64, base64Field, limitBody } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, createOpenApiRoutes, errorResponses, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const AddKeyBody = z
  .strictObject({ publicKey: base64Field({ name: 'publicKey', length: SIGNATURE_SIZES['ml-dsa-65'].publicKey }).openapi({ description: 'base64 ML-DSA-65 public key (1952 bytes)' }) })
  .openapi('OfficerKeyRegistration');

const OfficerKey = z
  .object({ id: z.string(), publicKey: z.string().openapi({ description: 'base64 ML-DSA-65 public key' }), createdBy: z.string(), createdAt: z.number() })
  .openapi('OfficerKey');

export function createOfficerKeyRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/officer-keys',
      tags: ['keys'],
      summary: 'Register an officer ML-DSA-65 public key',
      description: 'Who may call it: officer (person).',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { body: jsonBody(AddKeyBody) },
      responses: {
        201: jsonResponse('registered', z.object({ id: z.string() })),
        ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 409: '`officer_key_exists`: the key is already registered' }),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const result = await addOfficerKey({
        db: deps.db,
        orgId: c.get('principal').orgId,
        actor: actorOf(c),
        id: newId({ prefix: 'ofk' }),
        publicKey: body.publicKey,
        now: deps.now(),
      });
      return c.json(result, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/officer-keys',
      tags: ['keys'],
      summary: 'Officer public keys',
      description: 'Who may call it: any person of the organization; robots of the organization.',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      responses: { 200: jsonResponse('the organization’s officer keys', z.array(OfficerKey)), ...errorResponses(AUTH_ERRORS) },
    }),
    async (c) => {
      const keys = await listOfficerKeys({ db: deps.db, orgId: c.get('principal').orgId });
      return c.json(
        keys.map((k) => ({ id: k.id, publicKey: b64(k.publicKey), createdBy: k.createdBy, createdAt: k.createdAt })),
        200,
      );
    },
  );

  return routes;
}
