// GET /openapi.json against the app it describes. There is no OpenAPI validator among the dependencies,
// so the document is checked structurally against OpenAPI 3.1: version, info, every path item has
// operations with described responses, path templates match their path parameters, every $ref
// resolves, every security requirement names a declared scheme, component names are legal. Then
// against the app: every route of the app is documented, and documented once (a route file written
// with OpenAPIHono is not also listed in server/http/openapi.ts); the OpenAPIHono route files declare
// security, request schemas and typed error answers; real answers of those routes parse with the very
// zod schemas the document was generated from; and a zod validation failure answers the typed 400
// `malformed` naming the field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { ZodType } from 'zod';
import { toBase64 } from '../../core/bytes.ts';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, makeRoundConfig, robotRequest, setupOfficer, type TestRobot, type TestServer } from '../../server/testing/harness.ts';
import { API_ROUTES, openApiPath } from '../../server/http/openapi.ts';
import type { AppDeps, AppEnv } from '../../server/http/context.ts';
import { createFleetRoutes } from '../../server/routes/fleets.ts';
import { createOfficerKeyRoutes } from '../../server/routes/officer-keys.ts';
import { createRobotRoutes } from '../../server/routes/robots.ts';
import { createHeKeyRoutes } from '../../server/routes/he-keys.ts';
import { createRoundRoutes } from '../../server/routes/rounds.ts';
import { createDecisionRoutes } from '../../server/routes/decisions.ts';
import { createAuditRoutes } from '../../server/routes/audit.ts';
import { createCellRoutes } from '../../server/routes/cells.ts';
import { createCanaryRoutes } from '../../server/routes/canary.ts';
import { createPeopleRoutes } from '../../server/routes/people.ts';
import { createSafetyRoutes } from '../../server/routes/safety.ts';
import { createReleaseRoutes } from '../../server/routes/releases.ts';
import { routeKeys } from './fixture.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const PARAMETER_LOCATIONS = new Set(['query', 'header', 'path', 'cookie']);
const COMPONENT_NAME = /^[a-zA-Z0-9._-]+$/;

type Json = Record<string, any>;

/** Every problem this function finds makes the document invalid OpenAPI 3.1 (or useless as one). */
function structuralProblems(doc: Json): string[] {
  const problems: string[] = [];
  if (doc.openapi !== '3.1.0') problems.push(`openapi is ${JSON.stringify(doc.openapi)}, not 3.1.0`);
  if (typeof doc.info?.title !== 'string' || typeof doc.info?.version !== 'string') problems.push('info.title and info.version must be strings');
  if (!doc.paths || typeof doc.paths !== 'object') return [...problems, 'no paths object'];
  const schemes = doc.components?.securitySchemes ?? {};
  for (const [kind, group] of Object.entries<Json>(doc.components ?? {}))
    for (const name of Object.keys(group)) if (!COMPONENT_NAME.test(name)) problems.push(`components.${kind}.${name}: illegal name`);

  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    if (!path.startsWith('/')) problems.push(`${path}: a path must start with /`);
    const ops = METHODS.filter((m) => item[m] !== undefined);
    if (ops.length === 0) problems.push(`${path}: no operation`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const method of ops) {
      const op = item[method] as Json;
      const where = `${method.toUpperCase()} ${path}`;
      const responses = Object.entries<Json>(op.responses ?? {});
      if (responses.length === 0) problems.push(`${where}: no responses`);
      for (const [status, response] of responses) {
        if (status !== 'default' && !/^[1-5](\d\d|XX)$/.test(status)) problems.push(`${where}: response key ${status}`);
        if (response.$ref === undefined && typeof response.description !== 'string') problems.push(`${where} ${status}: response without a description`);
        for (const [media, content] of Object.entries<Json>(response.content ?? {})) if (!content || typeof content !== 'object') problems.push(`${where} ${status} ${media}: bad media type object`);
      }
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])] as Json[];
      const seen = new Set<string>();
      for (const p of params) {
        if (p.$ref !== undefined) continue;
        if (typeof p.name !== 'string' || !PARAMETER_LOCATIONS.has(p.in)) problems.push(`${where}: parameter ${JSON.stringify(p)} needs a name and a valid "in"`);
        if (seen.has(`${p.in} ${p.name}`)) problems.push(`${where}: parameter ${p.in} ${p.name} twice`);
        seen.add(`${p.in} ${p.name}`);
        if (p.in === 'path' && p.required !== true) problems.push(`${where}: path parameter ${p.name} must be required`);
        if (p.in === 'path' && !templated.includes(p.name)) problems.push(`${where}: path parameter ${p.name} is not in the template`);
        if (p.schema === undefined && p.content === undefined) problems.push(`${where}: parameter ${p.name} without schema or content`);
      }
      for (const name of templated) if (!params.some((p) => p.in === 'path' && p.name === name)) problems.push(`${where}: template parameter {${name}} is not declared`);
      if (op.requestBody !== undefined && op.requestBody.$ref === undefined && Object.keys(op.requestBody.content ?? {}).length === 0) problems.push(`${where}: request body without content`);
      for (const requirement of (op.security ?? []) as Json[])
        for (const name of Object.keys(requirement)) if (!(name in schemes)) problems.push(`${where}: security scheme ${name} is not declared`);
      if (op.operationId !== undefined) {
        if (operationIds.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} twice`);
        operationIds.add(op.operationId);
      }
    }
  }

  // Every $ref is a local JSON pointer that resolves (RFC 6901).
  const resolve = (ref: string): unknown => {
    if (!ref.startsWith('#/')) return undefined;
    let node: unknown = doc;
    for (const raw of ref.slice(2).split('/')) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      if (node === null || typeof node !== 'object' || !(key in (node as Json))) return undefined;
      node = (node as Json)[key];
    }
    return node;
  };
  const walk = (node: unknown, at: string) => {
    if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${at}/${i}`));
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && typeof v === 'string' && resolve(v) === undefined) problems.push(`${at}: $ref ${v} does not resolve`);
        walk(v, `${at}/${k}`);
      }
    }
  };
  walk(doc, '#');
  return problems;
}

/** The OpenAPIHono route files this issue converted, created without running anything (no request is made). */
const CONVERTED = {
  fleets: createFleetRoutes,
  'officer-keys': createOfficerKeyRoutes,
  robots: createRobotRoutes,
  'he-keys': createHeKeyRoutes,
  rounds: createRoundRoutes,
  decisions: createDecisionRoutes,
  audit: createAuditRoutes,
  cells: createCellRoutes,
  canary: createCanaryRoutes,
  releases: createReleaseRoutes,
  people: createPeopleRoutes,
  safety: createSafetyRoutes,
};

interface RouteDef {
  file: string;
  method: string;
  /** `/v1/...` with {param} templates. */
  path: string;
  route: Json;
}

function convertedRoutes(): RouteDef[] {
  const out: RouteDef[] = [];
  for (const [file, create] of Object.entries(CONVERTED)) {
    const routes = create({ deps: {} as AppDeps }) as OpenAPIHono<AppEnv>;
    for (const d of routes.openAPIRegistry.definitions) if (d.type === 'route') out.push({ file, method: d.route.method, path: `/v1${d.route.path}`, route: d.route as Json });
  }
  return out;
}

describe('GET /openapi.json', () => {
  let server: TestServer;
  let doc: Json;
  let token: string;
  let robot: TestRobot;
  let fleetId: string;
  let roundId: string;
  const defs = convertedRoutes();

  beforeAll(async () => {
    server = await createTestServer();
    const admin = await bootstrap({ server });
    token = admin.token;
    fleetId = (await createFleet({ server, token, name: 'documented' })).id;
    robot = await enrollRobot({ server, token, fleetId });
    const officer = await setupOfficer({ server, token, orgId: admin.org.id });
    const made = makeRoundConfig({ officer: officer.officer, orgId: admin.org.id, fleetId, keyFingerprint: officer.keyFingerprint, now: server.clock.now });
    const opened = await api({ server, method: 'POST', path: '/v1/rounds', token, body: { config: toBase64(made.bytes) } });
    expect(opened.status).toBe(201);
    roundId = made.config.roundId;
    doc = (await api({ server, method: 'GET', path: '/openapi.json' })).body;
  }, 60_000);
  afterAll(() => server.close());

  it('is structurally valid OpenAPI 3.1: operations with described responses, declared parameters, resolving $refs', () => {
    expect(structuralProblems(doc)).toEqual([]);
    // The checker itself finds what it claims to find.
    const broken = structuredClone(doc);
    const anyOp = broken.paths['/v1/fleets/{id}'].get;
    anyOp.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/NoSuchSchema' };
    anyOp.parameters = [];
    anyOp.security = [{ nobody: [] }];
    broken.paths['/v1/empty'] = {};
    const found = structuralProblems(broken).join('\n');
    expect(found).toMatch(/NoSuchSchema does not resolve/);
    expect(found).toMatch(/\{id\} is not declared/);
    expect(found).toMatch(/scheme nobody is not declared/);
    expect(found).toMatch(/\/v1\/empty: no operation/);
  });

  it('documents every route of the app, each once', () => {
    const missing = routeKeys(server.app).filter((key) => {
      const [method, template] = key.split(' ') as [string, string];
      return !doc.paths[openApiPath(template)]?.[method.toLowerCase()];
    });
    expect(missing).toEqual([]);
    const selfDocumented = new Set(defs.map((d) => `${d.method} ${d.path}`));
    const twice = API_ROUTES.filter((r) => selfDocumented.has(`${r.method} ${openApiPath(r.path)}`)).map((r) => `${r.method} ${r.path}`);
    expect(twice, 'routes of OpenAPIHono files also listed in API_ROUTES').toEqual([]);
    expect(defs.length).toBeGreaterThanOrEqual(50);
  });

  it('declares security, request schemas and typed errors for every route of the converted files', () => {
    const problems: string[] = [];
    for (const d of defs) {
      const op = doc.paths[d.path]?.[d.method] as Json | undefined;
      const where = `${d.method.toUpperCase()} ${d.path} (${d.file}.ts)`;
      if (!op) {
        problems.push(`${where}: not in the document`);
        continue;
      }
      if (!Array.isArray(op.security)) problems.push(`${where}: no security declaration`);
      const schemes = new Set((op.security as Json[] | undefined)?.flatMap((r) => Object.keys(r)) ?? []);
      const robotOnly = /Who may call it: (a )?robot/.test(op.description ?? '');
      if (['/v1/enroll', '/v1/bootstrap', '/v1/sessions'].includes(d.path) && d.method === 'post') {
        // Enrollment (the token in its body), bootstrap (once, while there is no user) and sign-in take no credential.
        if (schemes.size !== 0) problems.push(`${where}: takes no credential but declares ${[...schemes].join(', ')}`);
      } else {
        if (!robotOnly && !(schemes.has('bearer') && schemes.has('sessionCookie'))) problems.push(`${where}: people routes declare bearer and sessionCookie`);
        const robots = /robot/i.test(op.description ?? '');
        const signed = ['robotId', 'robotTimestamp', 'robotNonce', 'robotSignature'].every((s) => schemes.has(s));
        if (robots !== signed) problems.push(`${where}: robot signature headers ${signed ? 'declared for a route robots cannot call' : 'missing'}`);
      }
      const success = Object.entries<Json>(op.responses).filter(([s]) => /^2/.test(s));
      if (success.length === 0) problems.push(`${where}: no success response`);
      for (const [status, r] of success) {
        if (status === '204') continue;
        const media = Object.entries<Json>(r.content ?? {});
        if (media.length === 0 || media.some(([, c]) => !c.schema || Object.keys(c.schema).length === 0)) problems.push(`${where} ${status}: no response schema`);
      }
      const errors = Object.entries<Json>(op.responses).filter(([s]) => /^[45]/.test(s) || s === 'default');
      if (!errors.some(([s]) => /^4/.test(s))) problems.push(`${where}: no 4xx answers documented`);
      for (const [status, r] of errors) if (r.content?.['application/json']?.schema?.$ref !== '#/components/schemas/ApiError') problems.push(`${where} ${status}: error body is not ApiError`);
      const templated = [...d.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      for (const name of templated) {
        const p = (op.parameters as Json[]).find((x) => x.in === 'path' && x.name === name);
        if (!p?.schema?.pattern && p?.schema?.type !== 'integer') problems.push(`${where}: path parameter ${name} is not constrained`);
      }
      if (['post', 'put', 'patch'].includes(d.method) && op.requestBody) {
        const schema = op.requestBody.content?.['application/json']?.schema;
        if (!schema || Object.keys(schema).length === 0) problems.push(`${where}: request body without a schema`);
      }
    }
    expect(problems).toEqual([]);
    expect(doc.paths['/v1/fleets'].post.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/FleetCreation');
    expect(doc.components.schemas.FleetCreation.properties.name.pattern).toBeTruthy();
    expect(doc.paths['/v1/rounds/{id}/aggregate/ciphertext'].get.responses['200'].content['application/octet-stream']).toBeTruthy();
    expect(doc.paths['/v1/releases'].post.parameters.some((p: Json) => p.in === 'header' && p.name === 'idempotency-key')).toBe(true);
    expect(doc.paths['/v1/audit/leaves'].get.parameters.map((p: Json) => p.name).sort()).toEqual(['end', 'start']);
    expect(doc.components.securitySchemes.robotSignature).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-tg-signature' });
  });

  it('answers with bodies that parse with the documented response schemas', async () => {
    const schemaOf = (method: string, path: string, status: string): ZodType => {
      const def = defs.find((d) => d.method === method && d.path === path);
      const schema = def?.route.responses?.[status]?.content?.['application/json']?.schema as ZodType | undefined;
      if (!schema) throw new Error(`no ${status} schema for ${method} ${path}`);
      return schema;
    };
    const person: Array<[string, string]> = [
      ['/v1/fleets', '/v1/fleets'],
      [`/v1/fleets/${fleetId}`, '/v1/fleets/{id}'],
      ['/v1/officer-keys', '/v1/officer-keys'],
      [`/v1/robots?fleet=${fleetId}`, '/v1/robots'],
      [`/v1/robots/${robot.id}`, '/v1/robots/{id}'],
      ['/v1/he-keys', '/v1/he-keys'],
      ['/v1/he-keys/current', '/v1/he-keys/current'],
      ['/v1/he-keys/1', '/v1/he-keys/{version}'],
      ['/v1/he-keys/revocations', '/v1/he-keys/revocations'],
      ['/v1/rounds', '/v1/rounds'],
      [`/v1/rounds/${roundId}`, '/v1/rounds/{id}'],
      [`/v1/rounds/${roundId}/contributions`, '/v1/rounds/{id}/contributions'],
      [`/v1/rounds/${roundId}/decision`, '/v1/rounds/{id}/decision'],
      ['/v1/audit?limit=5', '/v1/audit'],
      ['/v1/audit/key', '/v1/audit/key'],
      ['/v1/audit/checkpoint', '/v1/audit/checkpoint'],
      ['/v1/audit/leaves?start=0&end=3', '/v1/audit/leaves'],
      ['/v1/audit/proof/inclusion?index=0&size=3', '/v1/audit/proof/inclusion'],
      ['/v1/audit/proof/consistency?from=1&to=3', '/v1/audit/proof/consistency'],
      [`/v1/dp/ledger?fleet=${fleetId}`, '/v1/dp/ledger'],
      [`/v1/releases?fleet=${fleetId}`, '/v1/releases'],
      [`/v1/fleets/${fleetId}/cells`, '/v1/fleets/{id}/cells'],
      [`/v1/fleets/${fleetId}/rollout-policy`, '/v1/fleets/{id}/rollout-policy'],
    ];
    const failures: string[] = [];
    for (const [url, template] of person) {
      const res = await api({ server, method: 'GET', path: url, token });
      if (res.status !== 200) failures.push(`GET ${url}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      else {
        const parsed = schemaOf('get', template, '200').safeParse(res.body);
        if (!parsed.success) failures.push(`GET ${url}: ${parsed.error.message.slice(0, 300)}`);
      }
    }
    const me = await robotRequest({ server, robot, method: 'GET', path: '/v1/robots/me' });
    expect(me.status).toBe(200);
    const parsedMe = schemaOf('get', '/v1/robots/me', '200').safeParse(me.body);
    if (!parsedMe.success) failures.push(`GET /v1/robots/me: ${parsedMe.error.message}`);
    // And the checks can fail: a body missing a field does not parse.
    expect(schemaOf('get', '/v1/fleets/{id}', '200').safeParse({ id: fleetId }).success).toBe(false);
    expect(failures).toEqual([]);
  }, 60_000);

  it('turns a zod validation failure into 400 `malformed` naming the field', async () => {
    const body = await api({ server, method: 'POST', path: '/v1/fleets', token, body: { name: '', envelope: { canaryFraction: 2 } } });
    expect(body.status).toBe(400);
    expect(body.body.error).toMatchObject({ code: 'malformed', details: { field: 'name' } });
    expect(body.body.error.message).toMatch(/^name: .*; envelope\.canaryFraction: /);
    const nested = await api({ server, method: 'POST', path: '/v1/fleets', token, body: { name: 'ok', envelope: { serverOperations: ['sum', 'decrypt'] } } });
    expect(nested.body.error).toMatchObject({ code: 'malformed', details: { field: 'envelope.serverOperations[1]' } });
    const query = await api({ server, method: 'GET', path: '/v1/robots?fleet=not%20an%20id', token });
    expect(query.status).toBe(400);
    expect(query.body.error).toMatchObject({ code: 'malformed', details: { field: 'fleet' } });
    const param = await api({ server, method: 'GET', path: `/v1/fleets/${fleetId}/cells/-bad`, token });
    expect(param.status).toBe(400);
    expect(param.body.error).toMatchObject({ code: 'malformed', details: { field: 'cellId' } });
    const version = await api({ server, method: 'GET', path: '/v1/he-keys/0', token });
    expect(version.body.error).toMatchObject({ code: 'malformed', details: { field: 'version' } });
    // Authentication still comes first: an anonymous malformed request is 401, not 400.
    expect((await api({ server, method: 'POST', path: '/v1/fleets', body: { name: '' } })).status).toBe(401);
    // A JSON body sent as something else is refused as such.
    const text = await server.app.request('/v1/fleets', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, body: '{"name":"x"}' });
    expect(text.status).toBe(415);
    expect((await text.json()).error.code).toBe('unsupported_media_type');
  });
});
