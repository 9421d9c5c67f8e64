// HE key records: POST /he-keys (officer-signed BFV public key, version N+1), GET /he-keys (every
// version with its revocation and the rounds pinned to it), GET /he-keys/current, GET /he-keys/:version,
// POST /he-keys/:version/revoke (officer-signed revocation), GET /he-keys/revocations. The server checks
// signers against the organization's officer keys so it does not store junk, but robots verify key
// records and revocations against the officer keys they pinned themselves.
// OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests and document them and
// the answers in GET /openapi.json (server/http/openapi-route.ts).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { IntegrityError, NotFoundError } from '../../core/errors.ts';
import { equalBytes } from '../../core/bytes.ts';
import { openKeyRevocation } from '../../core/records/revocation.ts';
import { openKeyRecord } from '../../core/records/key-record.ts';
import { getParamSet } from '../../core/he/params.ts';
import { listOfficerKeys } from '../db/fleets.ts';
import { addHeKey, addKeyRevocation, getCurrentHeKey, getHeKey, getKeyRevocation, listHeKeyVersions, listKeyRevocations, type HeKeyView } from '../db/he-keys.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { MiB, SMALL_JSON_LIMIT, b64, base64Field, hex, limitBody } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, createOpenApiRoutes, errorResponses, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

/** A key record holds a BFV public key (~64 KiB at N = 4096; records allow up to 1 MiB) in base64. */
const HE_KEY_BODY_LIMIT = 2 * MiB;

export const AddHeKeyBody = z
  .strictObject({ record: base64Field({ name: 'record', maxLength: HE_KEY_BODY_LIMIT }).openapi({ description: 'base64 officer-signed HE key record (core/records/key-record.ts)' }) })
  .openapi('HeKeyPublication');
export const RevokeBody = z
  .strictObject({ record: base64Field({ name: 'record', maxLength: 8 * 1024 }).openapi({ description: 'base64 officer-signed key revocation (core/records/revocation.ts)' }) })
  .openapi('HeKeyRevocationRequest');
const versionParam = z.coerce.number().int().min(1).max(0xffffffff);
const VersionParams = z.object({ version: versionParam.openapi({ type: 'integer', minimum: 1, maximum: 0xffffffff }) });

const HeKey = z
  .object({
    version: z.number().int(),
    record: z.string().openapi({ description: 'base64 signed key record' }),
    fingerprint: z.string().openapi({ description: 'hex SHA-256 fingerprint of the record' }),
    paramSetId: z.string(),
    createdAt: z.number(),
    revokedAt: z.number().nullable(),
  })
  .openapi('HeKey');
const HeKeyVersion = z
  .object({
    version: z.number().int(),
    fingerprint: z.string(),
    paramSetId: z.string(),
    createdAt: z.number(),
    revoked: z.object({ revokedAt: z.number(), reason: z.string(), fingerprint: z.string() }).nullable(),
    rounds: z.array(z.object({ roundId: z.string(), fleetId: z.string(), state: z.string(), createdAt: z.number() })),
  })
  .openapi('HeKeyVersion');
const HeKeyRevocation = z
  .object({ version: z.number().int(), record: z.string().openapi({ description: 'base64 signed revocation' }), fingerprint: z.string(), reason: z.string(), revokedAt: z.number() })
  .openapi('HeKeyRevocation');

function heKeyJson(k: HeKeyView, revokedAt: number | null) {
  return { version: k.version, record: b64(k.record), fingerprint: hex(k.fingerprint), paramSetId: k.paramSetId, createdAt: k.createdAt, revokedAt };
}

/** 409 `key_revoked` when the organization's key version carries an officer-signed revocation. */
export async function refuseRevokedKey(options: { deps: AppDeps; orgId: string; version: number }): Promise<void> {
  const revocation = await getKeyRevocation({ db: options.deps.db, orgId: options.orgId, version: options.version });
  if (revocation)
    throw httpError({ status: 409, code: 'key_revoked', message: `HE key version ${options.version} was revoked by an officer`, details: { version: options.version, revokedAt: revocation.revokedAt } });
}

export async function trustedOfficerKeys(options: { deps: AppDeps; orgId: string }): Promise<Uint8Array[]> {
  return (await listOfficerKeys({ db: options.deps.db, orgId: options.orgId })).map((k) => k.publicKey);
}

export function createHeKeyRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/he-keys',
      tags: ['keys'],
      summary: 'Publish an officer-signed HE key record (recent re-authentication)',
      description: 'Who may call it: officer (person) who proved the password within 5 minutes.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: HE_KEY_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] }, reauth: true })] as const,
      request: { body: jsonBody(AddHeKeyBody) },
      responses: {
        201: jsonResponse('published', z.object({ version: z.number().int(), fingerprint: z.string() })),
        ...errorResponses({
          ...AUTH_ERRORS,
          ...BODY_ERRORS,
          400: '`malformed`, or `integrity`: another organization or an unknown parameter set',
          401: 'not authenticated, or `bad_signature` / `untrusted_signer`: not signed by an officer key of the organization',
          409: '`key_version_conflict`: the version is not the current one + 1',
        }),
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const body = c.req.valid('json');
      const opened = openKeyRecord({ bytes: body.record, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
      if (opened.record.orgId !== orgId) throw new IntegrityError('key record names another organization', { orgId: opened.record.orgId });
      getParamSet({ id: opened.record.paramSetId }); // IntegrityError for an unknown parameter set
      await addHeKey({
        db: deps.db,
        orgId,
        actor: actorOf(c),
        id: newId({ prefix: 'hek' }),
        version: opened.record.keyVersion,
        record: body.record,
        fingerprint: opened.fingerprint,
        paramSetId: opened.record.paramSetId,
        parmsId: opened.record.parmsId,
        now: deps.now(),
      });
      return c.json({ version: opened.record.keyVersion, fingerprint: hex(opened.fingerprint) }, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/he-keys',
      tags: ['keys'],
      summary: 'HE key versions with their revocations and the rounds pinned to them',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      responses: { 200: jsonResponse('key versions, oldest first', z.array(HeKeyVersion)), ...errorResponses(AUTH_ERRORS) },
    }),
    async (c) => {
      const versions = await listHeKeyVersions({ db: deps.db, orgId: c.get('principal').orgId });
      return c.json(
        versions.map((v) => ({
          version: v.version,
          fingerprint: hex(v.fingerprint),
          paramSetId: v.paramSetId,
          createdAt: v.createdAt,
          revoked: v.revocation ? { revokedAt: v.revocation.revokedAt, reason: v.revocation.reason, fingerprint: hex(v.revocation.fingerprint) } : null,
          rounds: v.rounds,
        })),
        200,
      );
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/he-keys/revocations',
      tags: ['keys'],
      summary: 'Signed HE key revocations',
      description: 'Who may call it: any person of the organization; its robots.',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      responses: { 200: jsonResponse('revocations', z.array(HeKeyRevocation)), ...errorResponses(AUTH_ERRORS) },
    }),
    async (c) => {
      const revocations = await listKeyRevocations({ db: deps.db, orgId: c.get('principal').orgId });
      return c.json(
        revocations.map((r) => ({ version: r.version, record: b64(r.record), fingerprint: hex(r.fingerprint), reason: r.reason, revokedAt: r.revokedAt })),
        200,
      );
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/he-keys/current',
      tags: ['keys'],
      summary: 'The current HE key record',
      description: 'Who may call it: any person of the organization; its robots.',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      responses: { 200: jsonResponse('the newest key version', HeKey), ...errorResponses({ ...AUTH_ERRORS, 404: 'no HE key registered yet' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const key = await getCurrentHeKey({ db: deps.db, orgId });
      if (!key) throw new NotFoundError('no HE key registered yet');
      return c.json(heKeyJson(key, (await getKeyRevocation({ db: deps.db, orgId, version: key.version }))?.revokedAt ?? null), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/he-keys/{version}',
      tags: ['keys'],
      summary: 'One HE key record',
      description: 'Who may call it: any person of the organization; its robots.',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      request: { params: VersionParams },
      responses: { 200: jsonResponse('the key version', HeKey), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'no such key version' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const version = c.req.valid('param').version;
      const key = await getHeKey({ db: deps.db, orgId, version });
      if (!key) throw new NotFoundError(`HE key version ${version} not found`);
      return c.json(heKeyJson(key, (await getKeyRevocation({ db: deps.db, orgId, version }))?.revokedAt ?? null), 200);
    },
  );

  // Checked in order: signature by a registered officer key (401), organization and version match the
  // request and the stored record's fingerprint (400 `integrity`), the key exists (404), not yet
  // revoked (409 `key_already_revoked`).
  routes.openapi(
    createRoute({
      method: 'post',
      path: '/he-keys/{version}/revoke',
      tags: ['keys'],
      summary: 'Revoke an HE key version (recent re-authentication)',
      description: 'Who may call it: officer (person) who proved the password within 5 minutes.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] }, reauth: true })] as const,
      request: { params: VersionParams, body: jsonBody(RevokeBody) },
      responses: {
        201: jsonResponse('revoked', z.object({ version: z.number().int(), fingerprint: z.string(), revokedAt: z.number() })),
        ...errorResponses({
          ...AUTH_ERRORS,
          ...BODY_ERRORS,
          400: '`malformed`, or `integrity`: the revocation names another organization, version or key record',
          401: 'not authenticated, or the revocation is not signed by an officer key of the organization',
          404: 'no such key version',
          409: '`key_already_revoked`',
        }),
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const version = c.req.valid('param').version;
      const body = c.req.valid('json');
      const opened = openKeyRevocation({ bytes: body.record, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
      const r = opened.record;
      if (r.orgId !== orgId) throw new IntegrityError('revocation names another organization', { orgId: r.orgId });
      if (r.keyVersion !== version) throw new IntegrityError(`revocation names key version ${r.keyVersion}, not ${version}`);
      const key = await getHeKey({ db: deps.db, orgId, version });
      if (!key) throw new NotFoundError(`HE key version ${version} not found`);
      if (!equalBytes(key.fingerprint, r.heKeyFingerprint)) throw new IntegrityError('revocation names another key record than the one stored for this version');
      const stored = await addKeyRevocation({
        db: deps.db,
        orgId,
        actor: actorOf(c),
        id: newId({ prefix: 'hkr' }),
        version,
        record: body.record,
        fingerprint: opened.fingerprint,
        reason: r.reason,
        revokedAt: r.revokedAt,
        now: deps.now(),
      });
      return c.json({ version, fingerprint: hex(stored.fingerprint), revokedAt: stored.revokedAt }, 201);
    },
  );

  return routes;
}
