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
import { Hono } from 'hono';
import { z } from 'zod';
import { NotFoundError } from '../../core/errors.ts';
import { auditLogOrigin, checkpointKeyId } from '../../core/audit/checkpoint.ts';
import { consistencyPlan, inclusionPlan, planNodes, resolvePlan } from '../../core/audit/merkle.ts';
import { canonicalJson } from '../../core/audit/leaf.ts';
import { appendAudit, auditTreeSize, ensureAuditTree, listAudit, readAuditLeaves, readAuditNodes } from '../db/audit.ts';
import { getFleet } from '../db/fleets.ts';
import { listDpLedger } from '../db/rounds.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, b64, hex, idParam, limitBody, readJson } from '../http/body.ts';
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
export const AuditEventBody = z.strictObject({
  action: z.enum(OFFICER_AUDIT_ACTIONS),
  target: z.string().min(1).max(128),
  details: z.record(z.string().max(64), z.union([z.string().max(256), z.number(), z.boolean(), z.null(), z.array(z.string().max(128)).max(64)])).default({}),
});

function beyond(what: string, value: number, size: number) {
  return httpError({ status: 400, code: 'beyond_tree', message: `${what} ${value} is beyond the tree of ${size} leaves`, details: { size } });
}

export function createAuditRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();
  const readers = requireAuth({ deps, person: { roles: ['admin', 'auditor'] } });

  /** The tree size after bringing the organization's stored tree up to date. */
  const currentSize = async (orgId: string) => {
    await ensureAuditTree({ db: deps.db, orgId });
    return auditTreeSize({ db: deps.db, orgId });
  };

  routes.get('/audit', readers, async (c) => {
    const q = AuditQuery.parse({ after: c.req.query('after'), limit: c.req.query('limit') });
    const entries = await listAudit({ db: deps.db, orgId: c.get('principal').orgId, after: q.after, limit: q.limit });
    return c.json({ entries, next: entries.length === q.limit ? entries[entries.length - 1]!.seq : null });
  });

  routes.get('/audit/key', readers, async (c) => {
    const key = deps.audit.requireKey();
    const origin = auditLogOrigin({ orgId: c.get('principal').orgId });
    return c.json({ algorithm: 'ml-dsa-65', publicKey: b64(key.publicKey), origin, keyName: origin, keyId: hex(checkpointKeyId({ keyName: origin, publicKey: key.publicKey })) });
  });

  routes.get('/audit/checkpoint', readers, async (c) => {
    const signed = await deps.audit.checkpoint({ db: deps.db, orgId: c.get('principal').orgId, now: deps.now() });
    return c.json({ checkpoint: signed.note, origin: signed.origin, size: signed.size, rootHash: hex(signed.rootHash), keyId: hex(signed.keyId) });
  });

  routes.get('/audit/leaves', readers, async (c) => {
    const orgId = c.get('principal').orgId;
    const q = LeavesQuery.parse({ start: c.req.query('start'), end: c.req.query('end') });
    if (q.end < q.start) throw new RangeError(`"end" expected >= start ${q.start}, got ${q.end}`);
    if (q.end - q.start > MAX_LEAVES_PER_REQUEST) throw new RangeError(`"end" expected at most start + ${MAX_LEAVES_PER_REQUEST}, got ${q.end}`);
    const size = await currentSize(orgId);
    if (q.end > size) throw beyond('end', q.end, size);
    const leaves = await readAuditLeaves({ db: deps.db, orgId, start: q.start, end: q.end });
    return c.json({ start: q.start, end: q.end, leaves });
  });

  routes.get('/audit/proof/inclusion', readers, async (c) => {
    const orgId = c.get('principal').orgId;
    const q = InclusionQuery.parse({ index: c.req.query('index'), size: c.req.query('size') });
    const current = await currentSize(orgId);
    if (q.size > current) throw beyond('size', q.size, current);
    if (q.index >= q.size) throw new RangeError(`"index" expected < size ${q.size}, got ${q.index}`);
    const plan = inclusionPlan({ index: q.index, size: q.size });
    const node = await readAuditNodes({ db: deps.db, orgId, nodes: [...planNodes(plan), { level: 0, index: q.index }] });
    return c.json({ index: q.index, size: q.size, leafHash: hex(node({ level: 0, index: q.index })), proof: resolvePlan({ plan, node }).map(hex) });
  });

  routes.get('/audit/proof/consistency', readers, async (c) => {
    const orgId = c.get('principal').orgId;
    const q = ConsistencyQuery.parse({ from: c.req.query('from'), to: c.req.query('to') });
    const current = await currentSize(orgId);
    if (q.to > current) throw beyond('to', q.to, current);
    if (q.from > q.to) throw new RangeError(`"from" expected <= to ${q.to}, got ${q.from}`);
    const plan = consistencyPlan({ from: q.from, to: q.to });
    const node = await readAuditNodes({ db: deps.db, orgId, nodes: planNodes(plan) });
    return c.json({ from: q.from, to: q.to, proof: resolvePlan({ plan, node }).map(hex) });
  });

  routes.post('/audit/events', limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } }), async (c) => {
    const orgId = c.get('principal').orgId;
    const body = await readJson(c, AuditEventBody);
    if (canonicalJson(body.details).length > 4096) throw new RangeError('"details" expected at most 4096 bytes of JSON');
    const now = deps.now();
    const { leafIndex } = await deps.db.transaction((tx) => appendAudit({ db: tx, orgId, actor: actorOf(c), action: body.action, target: body.target, details: body.details, now }));
    return c.json({ index: leafIndex }, 201);
  });

  routes.get('/dp/ledger', requireAuth({ deps, person: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const fleetId = idParam.parse(c.req.query('fleet'));
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
    return c.json({ entries, totals: [...totals.values()] });
  });

  return routes;
}
