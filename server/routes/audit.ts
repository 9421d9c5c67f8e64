// Audit and privacy ledgers. The audit log is one RFC 6962 Merkle log per organization
// (server/db/audit.ts); admins and auditors read it and verify it independently:
//   GET  /audit?after=SEQ&limit=N                 entries in write order (admin, auditor)
//   GET  /audit/leaves?start=I&end=J              leaf bytes [I, J), J - I <= 1000 (admin, auditor)
//   GET  /audit/checkpoint                        the signed tree head, C2SP checkpoint (admin, auditor)
//   GET  /audit/proof/inclusion?index=I&size=N    audit path of leaf I in the tree of N leaves
//   GET  /audit/proof/consistency?from=M&to=N     consistency proof between tree sizes M and N
//   GET  /audit/key                               the server's checkpoint public key (pin it once)
//   POST /audit/events                            officer-side key-lifecycle steps (officer)
//   GET  /dp/ledger?fleet=                        per-robot DP ledger (people)
// OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests and document them and
// the answers in GET /openapi.json (server/http/openapi-route.ts).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { NotFoundError } from '../../core/errors.ts';
import { auditLogOrigin, checkpointKeyId } from '../../core/audit/checkpoint.ts';
import { consistencyPlan, inclusionPlan, planNodes, resolvePlan } from '../../core/audit/merkle.ts';
import { canonicalJson } from '../../core/audit/leaf.ts';
import { appendAudit, auditTreeSize, ensureAuditTree, listAudit, readAuditLeaves, readAuditNodes } from '../db/audit.ts';
import { getFleet } from '../db/fleets.ts';
import { listDpLedger } from '../db/rounds.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, b64, hex, idParam, limitBody } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, createOpenApiRoutes, errorResponses, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const AuditQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const MAX_LEAVES_PER_REQUEST = 1000;
const count = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const LeavesQuery = z.object({ start: count, end: count });
export const InclusionQuery = z.object({ index: count, size: count });
export const ConsistencyQuery = z.object({ from: count, to: count });

/** Officer-side steps the server cannot see itself (recovery happens on the officers' machines). */
export const OFFICER_AUDIT_ACTIONS = ['officer.recovery.add', 'officer.recovery.export', 'officer.recovery.restore', 'officer.recovery.remove'] as const;
export const AuditEventBody = z
  .strictObject({
    action: z.enum(OFFICER_AUDIT_ACTIONS),
    target: z.string().min(1).max(128),
    details: z
      .record(z.string().max(64), z.union([z.string().max(256), z.number(), z.boolean(), z.null(), z.array(z.string().max(128)).max(64)]))
      .default({})
      .openapi({ description: 'at most 4096 bytes of canonical JSON' }),
  })
  .openapi('OfficerAuditEvent');

const AuditEntry = z
  .object({
    seq: z.number().int(),
    index: z.number().int().nullable().openapi({ description: 'leaf index in the Merkle log (null until the tree catches up)' }),
    actor: z.object({ type: z.string(), id: z.string() }),
    action: z.string(),
    target: z.string(),
    details: z.record(z.string(), z.unknown()),
    leafHash: z.string(),
    at: z.number(),
  })
  .openapi('AuditEntry');
const AuditPage = z.object({ entries: z.array(AuditEntry), next: z.number().int().nullable().openapi({ description: 'pass as `after` for the next page' }) }).openapi('AuditPage');
const AuditKey = z
  .object({ algorithm: z.literal('ml-dsa-65'), publicKey: z.string().openapi({ description: 'base64' }), origin: z.string(), keyName: z.string(), keyId: z.string().openapi({ description: 'hex' }) })
  .openapi('AuditKey');
const Checkpoint = z
  .object({ checkpoint: z.string().openapi({ description: 'C2SP signed note' }), origin: z.string(), size: z.number().int(), rootHash: z.string(), keyId: z.string() })
  .openapi('AuditCheckpoint');
const Leaves = z
  .object({ start: z.number().int(), end: z.number().int(), leaves: z.array(z.object({ index: z.number().int(), seq: z.number().int(), data: z.string().openapi({ description: 'the leaf bytes: canonical JSON of the entry' }), leafHash: z.string() })) })
  .openapi('AuditLeaves');
const InclusionProof = z.object({ index: z.number().int(), size: z.number().int(), leafHash: z.string(), proof: z.array(z.string()) }).openapi('InclusionProof');
const ConsistencyProof = z.object({ from: z.number().int(), to: z.number().int(), proof: z.array(z.string()) }).openapi('ConsistencyProof');
const DpLedger = z
  .object({
    entries: z.array(z.object({ robotId: z.string(), roundId: z.string(), epsilonAfter: z.number(), delta: z.number(), at: z.number() })),
    totals: z.array(z.object({ robotId: z.string(), rounds: z.number().int(), epsilon: z.number() })),
  })
  .openapi('DpLedger');
const BEYOND = '`beyond_tree` (details.size) or `malformed`';

function beyond(what: string, value: number, size: number) {
  return httpError({ status: 400, code: 'beyond_tree', message: `${what} ${value} is beyond the tree of ${size} leaves`, details: { size } });
}

export function createAuditRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();
  const readers = requireAuth({ deps, person: { roles: ['admin', 'auditor'] } });
  const READERS = 'Who may call it: admin, auditor.';

  /** The tree size after bringing the organization's stored tree up to date. */
  const currentSize = async (orgId: string) => {
    await ensureAuditTree({ db: deps.db, orgId });
    return auditTreeSize({ db: deps.db, orgId });
  };

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/audit',
      tags: ['audit'],
      summary: 'Audit records in write order',
      description: READERS,
      security: security({ person: true }),
      middleware: [readers] as const,
      request: { query: AuditQuery },
      responses: { 200: jsonResponse('a page of entries', AuditPage), ...errorResponses({ 400: true, ...AUTH_ERRORS }) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const entries = await listAudit({ db: deps.db, orgId: c.get('principal').orgId, after: q.after, limit: q.limit });
      return c.json({ entries, next: entries.length === q.limit ? entries[entries.length - 1]!.seq : null }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/audit/key',
      tags: ['audit'],
      summary: 'The server’s audit checkpoint public key (pin it once)',
      description: READERS,
      security: security({ person: true }),
      middleware: [readers] as const,
      responses: { 200: jsonResponse('the key', AuditKey), ...errorResponses({ ...AUTH_ERRORS, 503: '`audit_key_missing`: the server has no audit key configured' }) },
    }),
    async (c) => {
      const key = deps.audit.requireKey();
      const origin = auditLogOrigin({ orgId: c.get('principal').orgId });
      return c.json({ algorithm: 'ml-dsa-65' as const, publicKey: b64(key.publicKey), origin, keyName: origin, keyId: hex(checkpointKeyId({ keyName: origin, publicKey: key.publicKey })) }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/audit/checkpoint',
      tags: ['audit'],
      summary: 'A signed tree head (C2SP checkpoint)',
      description: READERS,
      security: security({ person: true }),
      middleware: [readers] as const,
      responses: { 200: jsonResponse('the checkpoint', Checkpoint), ...errorResponses({ ...AUTH_ERRORS, 503: '`audit_key_missing`: the server has no audit key configured' }) },
    }),
    async (c) => {
      const signed = await deps.audit.checkpoint({ db: deps.db, orgId: c.get('principal').orgId, now: deps.now() });
      return c.json({ checkpoint: signed.note, origin: signed.origin, size: signed.size, rootHash: hex(signed.rootHash), keyId: hex(signed.keyId) }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/audit/leaves',
      tags: ['audit'],
      summary: `Audit leaves [start, end), at most ${MAX_LEAVES_PER_REQUEST}`,
      description: READERS,
      security: security({ person: true }),
      middleware: [readers] as const,
      request: { query: LeavesQuery },
      responses: { 200: jsonResponse('the leaves', Leaves), ...errorResponses({ 400: BEYOND, ...AUTH_ERRORS }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const q = c.req.valid('query');
      if (q.end < q.start) throw new RangeError(`"end" expected >= start ${q.start}, got ${q.end}`);
      if (q.end - q.start > MAX_LEAVES_PER_REQUEST) throw new RangeError(`"end" expected at most start + ${MAX_LEAVES_PER_REQUEST}, got ${q.end}`);
      const size = await currentSize(orgId);
      if (q.end > size) throw beyond('end', q.end, size);
      const leaves = await readAuditLeaves({ db: deps.db, orgId, start: q.start, end: q.end });
      return c.json({ start: q.start, end: q.end, leaves }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/audit/proof/inclusion',
      tags: ['audit'],
      summary: 'Inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962)',
      description: READERS,
      security: security({ person: true }),
      middleware: [readers] as const,
      request: { query: InclusionQuery },
      responses: { 200: jsonResponse('the audit path, hex', InclusionProof), ...errorResponses({ 400: BEYOND, ...AUTH_ERRORS }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const q = c.req.valid('query');
      const current = await currentSize(orgId);
      if (q.size > current) throw beyond('size', q.size, current);
      if (q.index >= q.size) throw new RangeError(`"index" expected < size ${q.size}, got ${q.index}`);
      const plan = inclusionPlan({ index: q.index, size: q.size });
      const node = await readAuditNodes({ db: deps.db, orgId, nodes: [...planNodes(plan), { level: 0, index: q.index }] });
      return c.json({ index: q.index, size: q.size, leafHash: hex(node({ level: 0, index: q.index })), proof: resolvePlan({ plan, node }).map(hex) }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/audit/proof/consistency',
      tags: ['audit'],
      summary: 'Consistency proof between tree sizes `from` and `to` (RFC 6962)',
      description: READERS,
      security: security({ person: true }),
      middleware: [readers] as const,
      request: { query: ConsistencyQuery },
      responses: { 200: jsonResponse('the proof, hex', ConsistencyProof), ...errorResponses({ 400: BEYOND, ...AUTH_ERRORS }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const q = c.req.valid('query');
      const current = await currentSize(orgId);
      if (q.to > current) throw beyond('to', q.to, current);
      if (q.from > q.to) throw new RangeError(`"from" expected <= to ${q.to}, got ${q.from}`);
      const plan = consistencyPlan({ from: q.from, to: q.to });
      const node = await readAuditNodes({ db: deps.db, orgId, nodes: planNodes(plan) });
      return c.json({ from: q.from, to: q.to, proof: resolvePlan({ plan, node }).map(hex) }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/audit/events',
      tags: ['audit'],
      summary: 'Record an officer-side key-lifecycle step (recovery)',
      description: 'Who may call it: officer (person).',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { body: jsonBody(AuditEventBody) },
      responses: { 201: jsonResponse('appended', z.object({ index: z.number().int().openapi({ description: 'leaf index of the new entry' }) })), ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const body = c.req.valid('json');
      if (canonicalJson(body.details).length > 4096) throw new RangeError('"details" expected at most 4096 bytes of JSON');
      const now = deps.now();
      const { leafIndex } = await deps.db.transaction((tx) => appendAudit({ db: tx, orgId, actor: actorOf(c), action: body.action, target: body.target, details: body.details, now }));
      return c.json({ index: leafIndex }, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/dp/ledger',
      tags: ['audit'],
      summary: 'Differential-privacy budget ledger of a fleet, with each robot’s total',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      request: { query: z.object({ fleet: idParam }) },
      responses: { 200: jsonResponse('the ledger', DpLedger), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet not found' }) },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const fleetId = c.req.valid('query').fleet;
      if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
      const entries = await listDpLedger({ db: deps.db, orgId, fleetId });
      // epsilonAfter is cumulative per robot (every earlier round composed), so a robot's total is its latest.
      const totals = new Map<string, { robotId: string; rounds: number; epsilon: number }>();
      for (const e of entries) {
        const t = totals.get(e.robotId) ?? { robotId: e.robotId, rounds: 0, epsilon: 0 };
        t.rounds += 1;
        t.epsilon = e.epsilonAfter;
        totals.set(e.robotId, t);
      }
      return c.json({ entries, totals: [...totals.values()] }, 200);
    },
  );

  return routes;
}
